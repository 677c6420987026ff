"""teacher_student.loop: the stopping rule (tolerance, divergence, plateau, budget) and online training."""

import numpy as np

from helpers import teacher_and_test_set
from teacher_student import engine, inputs, sequential, students, teachers
from teacher_student.train_spec import TrainSpec


def test_tolerance_stops_early():
  t, x, y = teacher_and_test_set('float32')
  train = TrainSpec(steps=5000, learning_rate=1e-2, tol=1e-2, check_every=50)
  r = engine.train_grid(students.make_student(students.StudentSpec(width=8), t), train,
                        seeds=[0], ns=[200], x_test=x, y_test=y)
  assert r['stop'][0, 0] == 'tolerance' and r['status'][0, 0] == 'ok'
  assert 0 < r['steps'][0, 0] < 5000
  assert r['train_error'][0, 0] <= 1e-2


def test_divergence_is_recorded_not_averaged():
  t, x, y = teacher_and_test_set('float32')
  train = TrainSpec(optimizer='sgd', learning_rate=50.0, steps=1000, check_every=50)
  r = engine.train_grid(students.make_student(students.StudentSpec(width=8), t), train,
                        seeds=[0, 1], ns=[100], x_test=x, y_test=y)
  assert np.all(r['status'] == 'diverged') and np.all(r['steps'] < 1000)


def test_budget_and_plateau():
  # A features student on a band-limited teacher with label noise converges to the least-squares
  # fit, whose training error stays at the noise level: the plateau rule stops it.
  ins = inputs.InputSpec('cube', 1)
  t, x, y = teacher_and_test_set('float32', teachers.TeacherSpec('bandlimited', cutoff=4), ins)
  st = students.make_student(students.StudentSpec('features', width=1, init='zero'), t)
  plateau = TrainSpec(learning_rate=0.05, steps=20000, check_every=200, plateau_rtol=1e-3,
                             patience=2, noise_std=0.3)
  r = engine.train_grid(st, plateau, seeds=[0], ns=[64], x_test=x, y_test=y)
  assert r['stop'][0, 0] == 'plateau' and r['steps'][0, 0] < 20000
  assert r['train_error'][0, 0] > 0.01
  budget = TrainSpec(learning_rate=1e-4, steps=300, check_every=100)
  r = engine.train_grid(st, budget, seeds=[0], ns=[64], x_test=x, y_test=y)
  assert r['stop'][0, 0] == 'budget' and r['status'][0, 0] == 'not_converged'
  assert r['steps'][0, 0] == 300


def test_online_mode():
  t, x, y = teacher_and_test_set('float32')
  train = TrainSpec(steps=1500, learning_rate=1e-2, schedule='cosine', check_every=500,
                           online_batch=128)
  st = students.make_student(students.StudentSpec(width=8), t)
  r = engine.train_grid(st, train, seeds=[0, 1], ns=None, x_test=x, y_test=y)
  assert r['test_error'].shape == (2, 1) and np.all(np.isnan(r['train_error']))
  assert np.all(r['test_error'] < 1e-2), r['test_error']
  alone = sequential.train_sequential(st, train, seeds=[0, 1], ns=None, x_test=x, y_test=y)
  np.testing.assert_allclose(r['test_error'], alone['test_error'], rtol=1e-3, atol=1e-6)
