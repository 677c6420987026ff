"""teacher_student.engine: the grid program equals each student trained alone (sequential), whatever its loops and batches."""

import jax
import numpy as np
import pytest

from conftest import REORDER_TOL
from helpers import teacher_and_test_set
from teacher_student import batch_budget, batching, engine, loop, sequential, students, teachers
from teacher_student.train_spec import TrainSpec


ADAM = dict(optimizer='adam', learning_rate=1e-2)


# Adam in both dtypes; the other optimizers in float64 only, whose tolerance (1e-9) is the one
# that tells an optimizer's state handled alike from one handled differently.
@pytest.mark.parametrize('opt,dtype', [(ADAM, 'float32'), (ADAM, 'float64'),
                                       (dict(ADAM, batch_size=16), 'float64'),
                                       (dict(optimizer='sgd', learning_rate=0.1, momentum=0.9), 'float64')],
                         indirect=['dtype'])
def test_grid_matches_one_at_a_time(opt, dtype):
  """The vmapped, padded and masked grid equals each student trained alone on its n points."""
  t, x, y = teacher_and_test_set(dtype, teachers.TeacherSpec('mlp', depth=2, width=4, activation='relu',
                                               gain=1.4, bias_scale=0.3))
  train = TrainSpec(steps=400, check_every=100, dtype=dtype, **opt)
  st = students.make_student(students.StudentSpec(width=6), t)
  kw = dict(seeds=[0, 1], ns=[10, 40, 100], x_test=x, y_test=y)   # one loop, cut to 100 points, masked
  grid, alone = engine.train_grid(st, train, **kw), sequential.train_sequential(st, train, **kw)
  rtol, atol = REORDER_TOL[dtype]
  assert grid['test_error'].shape == (2, 3)
  np.testing.assert_array_equal(grid['steps'], alone['steps'])
  np.testing.assert_array_equal(grid['stop'], alone['stop'])
  for key in ('test_error', 'test_se', 'train_error'):
    np.testing.assert_allclose(grid[key], alone[key], rtol=rtol, atol=atol, err_msg=key)
  # Different n really are different students (the mask is not a no-op).
  assert len(np.unique(grid['test_error'][0])) == 3


def test_realizable_student_beats_width_one_by_100x():
  t, x, y = teacher_and_test_set('float32')
  train = TrainSpec(steps=3000, learning_rate=1e-2, schedule='cosine', check_every=500)
  err = {m: engine.train_grid(students.make_student(students.StudentSpec(width=m), t), train,
                              seeds=[0, 1], ns=[1024], x_test=x, y_test=y)['test_error'].mean()
         for m in (1, 8)}
  assert err[1] > 100 * err[8], err


def test_every_n_and_the_online_column_in_one_program(dtype, monkeypatch):
  """With two n's or more above a small block, every n trains in one loop, its gradient summed
  over blocks of 512 then 128 points (`batching.BLOCK_POINTS`): n = 700 is one big block and two
  small ones, the last masked beyond n; the online column (256 fresh points a step) is two
  small blocks of the same loop. Each student's result is the one it gets alone on exactly its
  n points (the online one: on the same fresh samples), in one batch."""
  assert batching.BLOCK_POINTS == (512, 128)
  t, x, y = teacher_and_test_set(dtype)
  train = TrainSpec(steps=300, check_every=100, dtype=dtype)
  st = students.make_student(students.StudentSpec(width=6), t)
  kw = dict(seeds=[0, 1], ns=[8, 700, None, 40, 200], x_test=x, y_test=y)
  blocks, train_one = [], loop.train_one
  monkeypatch.setattr(loop, 'train_one', lambda *a, **k: blocks.append(k.get('blocks')) or train_one(*a, **k))
  grid = engine.train_grid(st, train, **kw)
  assert blocks == [(512, 128)]   # traced once: one loop for every n and the online column
  alone = sequential.train_sequential(st, train, **kw)
  rtol, atol = REORDER_TOL[dtype]
  np.testing.assert_array_equal(grid['steps'], alone['steps'])
  for key in ('test_error', 'train_error'):
    np.testing.assert_allclose(grid[key], alone[key], rtol=rtol, atol=atol, err_msg=key)
  assert np.all(np.isnan(grid['train_error'][:, 2])) and np.all(np.isfinite(grid['train_error'][:, [0, 1, 3, 4]]))


def test_narrow_students_padded_into_one_program_match_students_trained_alone(dtype):
  """Widths 1, 3 and 8 in one width-8 program (padded with inert units) equal each student
  trained alone at its own width, and the padding stays exactly zero."""
  t, x, y = teacher_and_test_set(dtype, teachers.TeacherSpec('mlp', depth=2, width=4, activation='tanh', gain=1.4,
                                               bias_scale=0.3))
  train = TrainSpec(steps=300, check_every=100, learning_rate=1e-2, dtype=dtype)
  st = students.make_student(students.StudentSpec(width=8), t)
  kw = dict(seeds=[0, 0, 1, 1], widths=[1, 3, 8, 3], ns=[20, 60], x_test=x, y_test=y)
  grid, alone = engine.train_grid(st, train, **kw), sequential.train_sequential(st, train, **kw)
  rtol, atol = REORDER_TOL[dtype]
  np.testing.assert_array_equal(grid['steps'], alone['steps'])
  np.testing.assert_allclose(grid['test_error'], alone['test_error'], rtol=rtol, atol=atol)
  assert len(np.unique(grid['test_error'][:, 0])) == 4       # different widths, different students


def test_replicates_trained_in_batches_match_one_vmap(dtype, monkeypatch):
  """Replicates too big to vmap together train in batches, one batch after another
  (`batch_budget.replicate_batch`): batches of 2 and of 1 (where the online column, one student a
  batch, trains on the parameter tree instead of the flat vector) give the errors of one vmap
  over all replicates, and of each student trained alone."""
  t, x, y = teacher_and_test_set(dtype)
  train = TrainSpec(steps=300, check_every=100, dtype=dtype)
  st = students.make_student(students.StudentSpec(width=6), t)
  kw = dict(seeds=list(range(8)), ns=[10, 40, None], x_test=x, y_test=y)
  one_vmap = engine.train_grid(st, train, **kw)
  per_replicate = 2 * batch_budget.step_bytes(st, train, 40)   # the loop of n = 10 and 40, cut to 40 points
  rtol, atol = REORDER_TOL[dtype]
  for b in (2, 1):
    monkeypatch.setattr(batch_budget, 'CPU_BATCH_BYTES', b * per_replicate)
    assert batch_budget.replicate_batch(st, train, [40, 40], jax.devices()[0]) == b
    batched = engine.train_grid(st, train, **kw)
    np.testing.assert_array_equal(batched['steps'], one_vmap['steps'])
    for key in ('test_error', 'train_error'):
      np.testing.assert_allclose(batched[key], one_vmap[key], rtol=rtol, atol=atol, err_msg=f'{key}, batch {b}')
  alone = sequential.train_sequential(st, train, **{**kw, 'seeds': [0, 5]})
  np.testing.assert_allclose(batched['test_error'][[0, 5]], alone['test_error'], rtol=rtol, atol=atol)
