"""teacher_student.second_order: the Levenberg–Marquardt phase reaches the floor on realizable
students, certifies stationary points on under-parameterized ones, and takes online students to
R = 0; students beyond its size get its dual form or L-BFGS, which reach the floor too."""

import dataclasses

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import teacher_and_test_set
from teacher_student import data, engine, inputs, second_order, sequential, students, teachers
from teacher_student.train_spec import TrainSpec

TANH_TEACHER = teachers.TeacherSpec('mlp', depth=1, width=4, activation='tanh', gain=1.4, bias_scale=0.3, seed=1)
# Adam first (cosine schedule), then LM: the quick preset's recipe at a smaller budget.
TRAIN = TrainSpec(steps=2000, check_every=500, schedule='cosine', tol=1e-20, dtype='float64', second_order=True)


@pytest.fixture(scope='module')
def relu_teacher():
  with jax.enable_x64(True):
    yield teacher_and_test_set('float64', n_test=4096)


def test_realizable_students_reach_the_float64_floor(relu_teacher):
  """Width 8 >= the teacher's 4, n = 256 > P = 49: every seed interpolates to <= 1e-20."""
  t, x, y = relu_teacher
  with jax.enable_x64(True):
    r = engine.train_grid(students.make_student(students.StudentSpec(width=8), t), TRAIN, seeds=[0, 1, 2], ns=[256],
                          x_test=x, y_test=y)
  assert np.all(r['stop'] == 'tolerance') and np.all(r['status'] == 'ok'), r['stop']
  assert np.all(r['train_error'] <= 1e-20) and np.all(r['second_order_steps'] > 0)


def test_under_parameterized_students_stop_at_certified_local_minima():
  """Width 2 cannot fit a width-4 tanh teacher: the phase stops 'stationary' far above the floor,
  and no random perturbation of the parameters (relative size 1e-7) lowers the training error."""
  with jax.enable_x64(True):
    t, x, y = teacher_and_test_set('float64', TANH_TEACHER, n_test=4096)
    st = students.make_student(students.StudentSpec(width=2), t)
    x_pool, y_pool = data.train_pool(t, 0, 256, 0.0, jnp.float64)
    params = st.init(data.member_keys(0, 0)[0], jnp.float64)
    got = second_order.train_to_floor(st, TRAIN, params, x_pool, y_pool, 256, data.member_keys(0, 0)[1], jnp.var(y))
    assert int(got.reason) == second_order.loop.STATIONARY
    prob = second_order.problem(st, TRAIN, got.params, x_pool, y_pool, 256, jnp.var(y), None, False)
    residuals, theta = prob.residuals, prob.theta0
    loss = float(jnp.sum(residuals(theta) ** 2))
    assert loss > 1e-3
    noise = jax.random.normal(jax.random.key(5), (200, theta.size), jnp.float64) * 1e-7 * jnp.linalg.norm(theta)
    perturbed = jax.vmap(lambda d: jnp.sum(residuals(theta + d) ** 2))(noise)
    assert float(jnp.min(perturbed)) >= loss * (1 - 1e-12)


def test_online_students_at_realizable_widths_reach_r_zero(relu_teacher):
  """n = ∞ (fresh samples, then a fixed sample of 2048 for the second phase): test error <= 1e-6."""
  t, x, y = relu_teacher
  with jax.enable_x64(True):
    r = engine.train_grid(students.make_student(students.StudentSpec(width=8), t), TRAIN, seeds=[0, 1], ns=None,
                          x_test=x, y_test=y)
  assert np.all(r['status'] == 'ok') and np.all(r['test_error'] <= 1e-6), r['test_error']


def test_the_phase_picks_lm_its_dual_form_or_lbfgs_by_size():
  small, wide = TrainSpec(second_order=True), TrainSpec(second_order=True, second_order_max_params=48)
  assert second_order.method(49, 10_000, small) == 'lm'
  assert second_order.method(49, 47, wide) == 'dual_lm'       # 47 · 49 <= 48²
  assert second_order.method(49, 48, wide) == 'lbfgs'
  assert second_order.applies(small) and not second_order.applies(TrainSpec())


@pytest.mark.parametrize('max_params, how, most_steps', [(160, 'dual_lm', 100), (48, 'lbfgs', 10_000)])
def test_over_parameterized_students_past_the_lm_size_reach_the_floor(relu_teacher, max_params, how, most_steps):
  """Width 32 (P = 193) on n = 32 (refined on at most 128 rows). Past an LM size of 160 the dual
  form fits (128 · 193 <= 160²) and takes every seed to <= 1e-20 in LM's tens of steps; past 48
  L-BFGS does, within its budget."""
  t, x, y = relu_teacher
  train = dataclasses.replace(TRAIN, second_order_max_params=max_params)
  assert second_order.method(193, second_order.SMALL_ROWS, train) == how
  with jax.enable_x64(True):
    r = engine.train_grid(students.make_student(students.StudentSpec(width=32), t), train, seeds=[0, 1], ns=[32],
                          x_test=x, y_test=y)
  assert np.all(r['stop'] == 'tolerance') and np.all(r['train_error'] <= 1e-20), r['train_error']
  assert np.all((r['second_order_steps'] > 0) & (r['second_order_steps'] < most_steps))


def test_lbfgs_certifies_the_under_parameterized_students_minimum():
  """Width 2 on a width-4 tanh teacher, L-BFGS forced (max params 1): 'stationary' with ‖∇L‖ <= the
  tolerance, far above the floor."""
  with jax.enable_x64(True):
    t, _, y = teacher_and_test_set('float64', TANH_TEACHER, n_test=4096)
    st = students.make_student(students.StudentSpec(width=2), t)
    x_pool, y_pool = data.train_pool(t, 0, 256, 0.0, jnp.float64)
    train = dataclasses.replace(TRAIN, second_order_max_params=1)
    params = st.init(data.member_keys(0, 0)[0], jnp.float64)
    got = second_order.train_to_floor(st, train, params, x_pool, y_pool, 256, data.member_keys(0, 0)[1], jnp.var(y))
    assert int(got.reason) == second_order.loop.STATIONARY and float(got.grad_norm) <= train.stationary_tol
    prob = second_order.problem(st, train, got.params, x_pool, y_pool, 256, jnp.var(y), None, False)
    assert float(jnp.sum(prob.residuals(prob.theta0) ** 2)) > 1e-3


def test_kink_rows_find_a_point_on_a_kink_and_its_hand_derived_gradient(x64):
  """Width 2, D = 4: unit 0's bias is set so that point 3 sits on its kink (z = 0). The hold's
  row is ∂z/∂θ = (x_3 on unit 0's weights, 1 on its bias, 0 elsewhere); no other pair is held."""
  t, _, _ = teacher_and_test_set('float64')
  st = students.make_student(students.StudentSpec(width=2), t)
  params = st.init(jax.random.key(0), jnp.float64)
  x = jax.random.normal(jax.random.key(1), (8, 4), jnp.float64)
  layer = params['params']['Dense_0']
  layer['bias'] = layer['bias'].at[0].set(-(x[3] @ layer['kernel'][:, 0]))
  prob = second_order.problem(st, TRAIN, params, x, jnp.zeros((8, 1)), 8, 1.0, None, False)
  c_kp, z_k = second_order.kink_rows(st, prob, prob.theta0)
  held = np.flatnonzero(np.any(np.asarray(c_kp) != 0, axis=1))
  assert len(held) == 1 and abs(float(z_k[held[0]])) < 1e-15
  want = jax.tree.map(jnp.zeros_like, params)
  want['params']['Dense_0']['kernel'] = want['params']['Dense_0']['kernel'].at[:, 0].set(x[3])
  want['params']['Dense_0']['bias'] = want['params']['Dense_0']['bias'].at[0].set(1.0)
  np.testing.assert_allclose(c_kp[held[0]], jax.flatten_util.ravel_pytree(want)[0], atol=1e-12)


@pytest.mark.parametrize('width', [8, 2])   # reaches the floor; stops at stationary points
def test_second_phase_grid_matches_one_at_a_time_over_shuffled_columns(relu_teacher, width):
  """Both phases, the grid program against each student trained alone (`sequential`), on sample
  counts in shuffled order with the online column among them: the same stop and step counts, and
  the same errors up to reduction order (amplified near the floor, hence an absolute 1e-12). At a
  stationary point the certificate's last step may come one step apart: whether a step lowers L by
  just under or over loop.STALL_RTOL is decided by the last bits."""
  t, x, y = relu_teacher
  with jax.enable_x64(True):
    st = students.make_student(students.StudentSpec(width=width), t)
    train = dataclasses.replace(TRAIN, steps=300, check_every=100, second_order_steps=200)
    kw = dict(seeds=[0, 1], ns=[200, 8, None, 40], x_test=x, y_test=y)
    grid, alone = engine.train_grid(st, train, **kw), sequential.train_sequential(st, train, **kw)
  np.testing.assert_array_equal(grid['stop'], alone['stop'])
  np.testing.assert_array_equal(grid['steps'], alone['steps'])
  floor = grid['stop'] == 'tolerance'
  np.testing.assert_array_equal(grid['second_order_steps'][floor], alone['second_order_steps'][floor])
  assert np.all(np.abs(grid['second_order_steps'] - alone['second_order_steps']) <= 1)
  assert np.all(grid['second_order_steps'] > 0)
  for key in ('test_error', 'train_error'):
    np.testing.assert_allclose(grid[key], alone[key], rtol=1e-6, atol=1e-12, err_msg=key)
  assert len(np.unique(grid['test_error'][0])) == 4     # four different students per replicate


def test_the_optimality_gap_is_the_exact_excess_loss_of_a_linear_least_squares_problem(x64):
  """For r(θ) = Aθ − b, ½L is quadratic: gᵀH⁻¹g = L(θ) − min L exactly (up to the 1e-12 ridge);
  at a saddle (H indefinite) the gap is infinite, so nothing is certified there."""
  a_np = np.random.default_rng(0).normal(size=(40, 6))
  b_n = jnp.asarray(np.random.default_rng(1).normal(size=40))
  a_np = jnp.asarray(a_np)
  half = lambda th: 0.5 * jnp.sum((a_np @ th - b_n) ** 2)
  theta = jnp.asarray(np.random.default_rng(2).normal(size=6))
  best = jnp.linalg.lstsq(a_np, b_n)[0]
  excess = 2 * (half(theta) - half(best))
  gap = second_order.optimality_gap(half, theta, jax.grad(half)(theta), jnp.ones(6, bool))
  assert abs(float(gap) - float(excess)) <= 1e-9 * float(excess)
  saddle = lambda th: th[0] ** 2 - th[1] ** 2 + 0.1 * th[0]
  at = jnp.asarray([0.3, 0.2])
  assert float(second_order.optimality_gap(saddle, at, jax.grad(saddle)(at), jnp.ones(2, bool))) == np.inf


def test_the_lm_model_decrease_is_exact_for_linear_residuals_and_the_gain_ratio_sets_the_damping(x64):
  """For linear r the Gauss–Newton model is exact: the predicted decrease of an LM step equals the
  actual one (ρ = 1), and Nielsen's rule then shrinks λ threefold; ρ = 1/2 keeps it, a refused
  step multiplies it by 4."""
  rng = np.random.default_rng(3)
  a_np, b_n, theta = (jnp.asarray(rng.normal(size=s)) for s in ((30, 5), (30,), (5,)))
  r = a_np @ theta - b_n
  grad, mu = a_np.T @ r, 0.7
  delta = -jnp.linalg.solve(a_np.T @ a_np + mu * jnp.eye(5), grad)
  actual = jnp.sum(r**2) - jnp.sum((a_np @ (theta + delta) - b_n) ** 2)
  assert abs(float(second_order.model_decrease(grad, delta, mu)) - float(actual)) <= 1e-10 * float(actual)
  damp = lambda new, predicted: second_order.loop.gain_ratio_damping(jnp.float64(1.0), jnp.float64(new), predicted, 1e-3)
  assert np.isclose(float(damp(0.5, 0.5)[2]), 1e-3 / 3)      # ρ = 1
  assert np.isclose(float(damp(0.5, 1.0)[2]), 1e-3)          # ρ = 1/2: 1 − 0³
  assert np.isclose(float(damp(1.5, 1.0)[2]), 4e-3) and not bool(damp(1.5, 1.0)[0])


def test_a_smooth_student_certified_by_its_optimality_gap_keeps_its_test_error_when_trained_10x_longer():
  """A tanh student of a band-limited teacher (cannot represent it) stops 'stationary' by the gap
  certificate (‖∇L‖ above stationary_tol); the same run without that certificate and 10× the
  steps moves its test error by less than 1% (docs/design.md §2.6)."""
  teacher = teachers.TeacherSpec('bandlimited', cutoff=4, seed=0)
  with jax.enable_x64(True):
    t, x, y = teacher_and_test_set('float64', teacher, inputs.InputSpec('cube', 2), n_test=4096)
    st = students.make_student(students.StudentSpec(width=8), t)
    x_pool, y_pool = data.train_pool(t, 2, 1024, 0.0, jnp.float64)
    init_key, batch_key = data.member_keys(2, 0)
    train = dataclasses.replace(TRAIN, steps=4000)
    first = second_order.loop.train_one(st, train, st.init(init_key, jnp.float64), x_pool, y_pool, 1024, batch_key, jnp.var(y))
    test_error = lambda p: float(jnp.mean((st.apply(p, x) - y) ** 2) / jnp.var(y))
    done = second_order.refine(st, train, first.params, x_pool, y_pool, 1024, jnp.var(y), batch_key)
    assert int(done.reason) == second_order.loop.STATIONARY and float(done.grad_norm) > train.stationary_tol
    longer = second_order.refine(st, dataclasses.replace(train, second_order_steps=10 * int(done.steps)), first.params,
                                 x_pool, y_pool, 1024, jnp.var(y), batch_key, gap_rtol=0.0)
    assert int(longer.steps) > 2 * int(done.steps) and float(longer.loss) <= float(done.loss)
    assert abs(test_error(longer.params) - test_error(done.params)) < 0.01 * test_error(done.params)
