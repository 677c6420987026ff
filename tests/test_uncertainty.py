"""The facts of docs/design.md §2 on teachers with known answers (float64)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from analysis import uncertainty
from experiments import runner
from teacher_student import data, engine, evaluation, inputs, students, teachers
from teacher_student.train_spec import TrainSpec

# 64 outputs = 64 independent draws θ ~ N(0, σ0² I) sharing the fixed random features: averaging
# the normalized error over outputs averages over teacher draws, in one training program.
# D = 64 keeps the 100 features nearly independent (Φ_n's condition number ~5e3 at n = 90,
# against ~5e5 on D = 8), so gradient descent converges in a few thousand steps.
B = 100
RF = teachers.TeacherSpec('random_features', width=B, activation='tanh', gain=1.0, out_dim=64, seed=3)
RF_INPUTS = inputs.InputSpec('gaussian', 64)
NS = [10, 30, 50, 70, 90]          # 0.1 B .. 0.9 B
SEEDS = [0, 1]


@pytest.fixture(scope='module')
def rf():
  """A random-feature teacher, its test set, the U(n) of estimator (a) per seed, and pools."""
  with jax.enable_x64(True):
    t = teachers.make_teacher(RF, RF_INPUTS, jnp.float64)
    x_test, y_test = data.test_set(t, 4096, seed=1, dtype=jnp.float64)
    y_var = float(evaluation.output_variance(y_test))
    u = np.array([uncertainty.closed_form(t, data.train_pool(t, s, max(NS), dtype=jnp.float64)[0],
                                          x_test, NS, y_var) for s in SEEDS])
  return t, x_test, y_test, y_var, u


def _gd(init):
  # Full-batch gradient descent with heavy-ball momentum: its iterates stay in θ0 + row space of
  # Φ, so it converges to the interpolant closest to θ0 (the posterior mean from θ0 = 0, a
  # posterior sample from a prior draw). The loss averages over 64 outputs, hence the large
  # step: the curvature per output column is 1/64 of the single-output one (lr 40 diverges at
  # n = 10; lr 15 converges every n within ~1000 steps).
  return TrainSpec(optimizer='sgd', learning_rate=15.0, momentum=0.97, steps=10000, tol=1e-10,
                          check_every=250, dtype='float64'), students.StudentSpec('features', width=1, init=init)


def test_closed_form_equals_linearized_on_linear_teachers(x64):
  # One output: estimator (b) differentiates w.r.t. every parameter (B·k of them).
  for spec, ins in ((dataclasses.replace(RF, out_dim=1), inputs.InputSpec('gaussian', 8)),
                    (teachers.TeacherSpec('bandlimited', cutoff=3, out_dim=2), inputs.InputSpec('cube', 2))):
    t = teachers.make_teacher(spec, ins, x64)
    x_pool, _ = data.train_pool(t, 0, 120, dtype=x64)
    x_test, y_test = data.test_set(t, 2048, seed=1, dtype=x64)
    y_var = float(evaluation.output_variance(y_test))
    ns = [1, 5, 20, 47, 48, 100, 120]
    a = np.asarray(uncertainty.closed_form(t, x_pool, x_test, ns, y_var))
    b = np.asarray(uncertainty.linearized(t, x_pool, x_test, ns, y_var))
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_uncertainty_vanishes_past_the_basis_size_and_is_monotone(x64):
  ins = inputs.InputSpec('cube', 2)
  t = teachers.make_teacher(teachers.TeacherSpec('bandlimited', cutoff=3), ins, x64)
  assert t.num_basis == 48
  x_pool, _ = data.train_pool(t, 0, 64, dtype=x64)
  x_test, y_test = data.test_set(t, 4096, seed=1, dtype=x64)
  ns = list(range(1, 65))
  u = np.asarray(uncertainty.closed_form(t, x_pool, x_test, ns, float(evaluation.output_variance(y_test))))
  assert np.all(np.diff(u) <= 1e-12)                       # non-increasing in n
  assert np.all(u[47:] < 1e-10) and u[46] > 1e-3           # 0 from n = B = 48 on, not before
  assert 0.5 < u[0] < 1.5                                  # one point tells almost nothing


@pytest.mark.parametrize('activation,depth', [('tanh', 1), ('erf', 2), ('relu', 1)])
def test_linearized_uncertainty_vanishes_past_n_star(activation, depth, x64):
  ins = inputs.InputSpec('gaussian', 3)
  spec = teachers.TeacherSpec('mlp', depth=depth, width=4, activation=activation, gain=1.5, bias_scale=0.5)
  t = teachers.make_teacher(spec, ins, x64)
  x_test, y_test = data.test_set(t, 4096, seed=1, dtype=x64)
  rank = uncertainty.identifiability_threshold(t, x_test)
  p = sum(v.size for v in jax.tree.leaves(t.params))
  assert 0 < rank <= p
  x_pool, _ = data.train_pool(t, 0, 3 * p, dtype=x64)
  ns = list(range(1, 3 * p + 1))
  u = np.asarray(uncertainty.linearized(t, x_pool, x_test, ns, float(evaluation.output_variance(y_test))))
  assert np.all(np.diff(u) <= 1e-12)                                 # non-increasing
  first_zero = int(np.argmax(u < 1e-10)) + 1
  assert u[-1] < 1e-10 and np.all(u[first_zero - 1:] < 1e-10)         # 0 from some n on ...
  assert first_zero >= rank and u[rank - 2] > 1e-8                    # ... never before the rank
  if activation == 'relu':
    # Each hidden unit's scale symmetry removes a direction; and ReLU Jacobian rows are affine
    # in x within an activation region, so a few points more than the rank may be needed.
    assert rank <= p - 4
  else:
    assert first_zero == rank      # analytic activation: points in general position


def test_gradient_descent_from_zero_is_the_posterior_mean_and_from_the_prior_a_sample(rf):
  """ε = U from θ0 = 0, ε = 2U from a prior draw, averaged over 64 teacher draws and 2 seeds,
  within 10% at every n from 0.1 B to 0.9 B."""
  t, x_test, y_test, _, u = rf
  with jax.enable_x64(True):
    for init, factor in (('zero', 1.0), ('prior', 2.0)):
      train, spec = _gd(init)
      r = engine.train_grid(students.make_student(spec, t), train, seeds=SEEDS, ns=NS,
                            x_test=x_test, y_test=y_test)
      assert np.all(r['stop'] == 'tolerance'), r['stop']     # interpolated
      eps, want = r['test_error'].mean(0), factor * u.mean(0)
      np.testing.assert_allclose(eps, want, rtol=0.10, err_msg=init)


def test_ensemble_estimator_agrees_with_closed_form(rf):
  """Estimator (c): K = 4 students from independent prior draws trained to interpolate the same
  S_n; half their mean pairwise squared disagreement matches (a) within 10%."""
  t, x_test, y_test, y_var, u = rf
  k = 4
  with jax.enable_x64(True):
    train, spec = _gd('prior')
    r = engine.train_grid(students.make_student(spec, t), train, seeds=[s for s in SEEDS for _ in range(k)],
                          members=[j for _ in SEEDS for j in range(k)], ns=NS, x_test=x_test,
                          y_test=y_test, predictions=True)
  pred = r['test_predictions'].reshape(len(SEEDS), k, len(NS), *r['test_predictions'].shape[2:])
  u_c = np.array([[runner.ensemble_variance(pred[s, :, j], np.ones(k, bool), y_var) for j in range(len(NS))]
                  for s in range(len(SEEDS))])
  np.testing.assert_allclose(u_c.mean(0), u.mean(0), rtol=0.10)


def test_nyquist_learner_is_exact_at_n_equals_b(x64):
  ins = inputs.InputSpec('cube', 2)
  t = teachers.make_teacher(teachers.TeacherSpec('bandlimited', cutoff=3, out_dim=64), ins, x64)
  x_pool, y_pool = data.train_pool(t, 0, 96, dtype=x64)
  x_test, y_test = data.test_set(t, 4096, seed=1, dtype=x64)
  y_var = float(evaluation.output_variance(y_test))
  ns = [12, 24, 36, 47, 48, 96]
  e = np.asarray(uncertainty.nyquist(t, x_pool, y_pool, x_test, y_test, ns, y_var))
  assert np.all(e[4:] < 1e-10) and e[3] > 1e-3, e
  # Below B the minimum-norm fit is the posterior mean: its error averages to U (64 draws).
  u = np.asarray(uncertainty.closed_form(t, x_pool, x_test, ns, y_var))
  np.testing.assert_allclose(e[:4], u[:4], rtol=0.10)


@pytest.mark.parametrize('activation,expected', [('relu', lambda p, w: p - w), ('tanh', lambda p, w: p)])
def test_whitened_jacobian_rank_is_the_hand_derived_count(activation, expected, x64):
  """One hidden layer of width w on D = 4 (P = 6w + 1 with biases): ReLU's positive rescaling
  (a unit's incoming weights and bias × c, its outgoing weight / c) leaves one direction per
  unit unidentifiable, so rank P − w; tanh has no continuous symmetry: rank P."""
  for width in (3, 5):
    spec = teachers.TeacherSpec('mlp', depth=1, width=width, activation=activation, bias_scale=0.3, seed=2)
    t = teachers.make_teacher(spec, inputs.InputSpec('gaussian', 4), x64)
    x, _ = data.test_set(t, 2048, seed=1, dtype=x64)
    p = 4 * width + width + width + 1
    assert uncertainty.identifiability_threshold(t, x) == expected(p, width)
