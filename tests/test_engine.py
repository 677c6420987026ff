import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REORDER_TOL
from teacher_student import data, engine, inputs, students, teachers

GAUSS4 = inputs.InputSpec('gaussian', 4)
RELU_TEACHER = teachers.TeacherSpec('mlp', depth=1, width=4, activation='relu', gain=1.4,
                                    bias_scale=0.3, seed=1)


def _setup(dtype, teacher_spec=RELU_TEACHER, ins=GAUSS4, n_test=2048):
  t = teachers.make_teacher(teacher_spec, ins, dtype=jnp.dtype(dtype))
  x, y = data.test_set(t, n_test, seed=7, dtype=jnp.dtype(dtype))
  return t, x, y


@pytest.mark.parametrize('opt', [dict(optimizer='adam', learning_rate=1e-2),
                                 dict(optimizer='adam', learning_rate=1e-2, batch_size=16),
                                 dict(optimizer='sgd', learning_rate=0.1, momentum=0.9)])
def test_grid_matches_one_at_a_time(opt, dtype):
  """The vmapped, padded and masked grid equals each student trained alone on its n points."""
  t, x, y = _setup(dtype, teachers.TeacherSpec('mlp', depth=2, width=4, activation='relu',
                                               gain=1.4, bias_scale=0.3))
  train = engine.TrainSpec(steps=400, check_every=100, dtype=dtype, **opt)
  st = students.make_student(students.StudentSpec(width=6), t)
  kw = dict(seeds=[0, 1], ns=[10, 40, 100], x_test=x, y_test=y)   # one loop, cut to 100 points, masked
  grid, alone = engine.train_grid(st, train, **kw), engine.train_sequential(st, train, **kw)
  rtol, atol = REORDER_TOL[dtype]
  assert grid['test_error'].shape == (2, 3)
  np.testing.assert_array_equal(grid['steps'], alone['steps'])
  np.testing.assert_array_equal(grid['stop'], alone['stop'])
  for key in ('test_error', 'test_se', 'train_error'):
    np.testing.assert_allclose(grid[key], alone[key], rtol=rtol, atol=atol, err_msg=key)
  # Different n really are different students (the mask is not a no-op).
  assert len(np.unique(grid['test_error'][0])) == 3


def test_realizable_student_beats_width_one_by_100x():
  t, x, y = _setup('float32')
  train = engine.TrainSpec(steps=3000, learning_rate=1e-2, schedule='cosine', check_every=500)
  err = {m: engine.train_grid(students.make_student(students.StudentSpec(width=m), t), train,
                              seeds=[0, 1], ns=[1024], x_test=x, y_test=y)['test_error'].mean()
         for m in (1, 8)}
  assert err[1] > 100 * err[8], err


def test_tolerance_stops_early():
  t, x, y = _setup('float32')
  train = engine.TrainSpec(steps=5000, learning_rate=1e-2, tol=1e-2, check_every=50)
  r = engine.train_grid(students.make_student(students.StudentSpec(width=8), t), train,
                        seeds=[0], ns=[200], x_test=x, y_test=y)
  assert r['stop'][0, 0] == 'tolerance' and r['status'][0, 0] == 'ok'
  assert 0 < r['steps'][0, 0] < 5000
  assert r['train_error'][0, 0] <= 1e-2


def test_divergence_is_recorded_not_averaged():
  t, x, y = _setup('float32')
  train = engine.TrainSpec(optimizer='sgd', learning_rate=50.0, steps=1000, check_every=50)
  r = engine.train_grid(students.make_student(students.StudentSpec(width=8), t), train,
                        seeds=[0, 1], ns=[100], x_test=x, y_test=y)
  assert np.all(r['status'] == 'diverged') and np.all(r['steps'] < 1000)


def test_budget_and_plateau():
  # A features student on a band-limited teacher with label noise converges to the least-squares
  # fit, whose training error stays at the noise level: the plateau rule stops it.
  ins = inputs.InputSpec('cube', 1)
  t, x, y = _setup('float32', teachers.TeacherSpec('bandlimited', cutoff=4), ins)
  st = students.make_student(students.StudentSpec('features', width=1, init='zero'), t)
  plateau = engine.TrainSpec(learning_rate=0.05, steps=20000, check_every=200, plateau_rtol=1e-3,
                             patience=2, noise_std=0.3)
  r = engine.train_grid(st, plateau, seeds=[0], ns=[64], x_test=x, y_test=y)
  assert r['stop'][0, 0] == 'plateau' and r['steps'][0, 0] < 20000
  assert r['train_error'][0, 0] > 0.01
  budget = engine.TrainSpec(learning_rate=1e-4, steps=300, check_every=100)
  r = engine.train_grid(st, budget, seeds=[0], ns=[64], x_test=x, y_test=y)
  assert r['stop'][0, 0] == 'budget' and r['status'][0, 0] == 'not_converged'
  assert r['steps'][0, 0] == 300


def test_online_mode():
  t, x, y = _setup('float32')
  train = engine.TrainSpec(steps=1500, learning_rate=1e-2, schedule='cosine', check_every=500,
                           online_batch=128)
  st = students.make_student(students.StudentSpec(width=8), t)
  r = engine.train_grid(st, train, seeds=[0, 1], ns=None, x_test=x, y_test=y)
  assert r['test_error'].shape == (2, 1) and np.all(np.isnan(r['train_error']))
  assert np.all(r['test_error'] < 1e-2), r['test_error']
  alone = engine.train_sequential(st, train, seeds=[0, 1], ns=None, x_test=x, y_test=y)
  np.testing.assert_allclose(r['test_error'], alone['test_error'], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize('make,match', [
    (lambda: students.StudentSpec(width=0), 'width must be a positive integer'),
    (lambda: students.StudentSpec(width=-3), 'width must be a positive integer'),
    (lambda: students.StudentSpec(family='cnn'), 'unknown student family'),
    (lambda: students.StudentSpec(activation='sigmoid'), 'unknown activation'),
    (lambda: engine.check_ns([10, 0]), 'positive integers'),
    (lambda: engine.check_ns([-5]), 'positive integers'),
    (lambda: engine.TrainSpec(dtype='float16'), 'invalid dtype'),
    (lambda: engine.TrainSpec(optimizer='lbfgs'), 'unknown optimizer'),
    (lambda: engine.TrainSpec(learning_rate=0.0), 'learning rate'),
    (lambda: inputs.InputSpec(dim=3, intrinsic_dim=4), 'd_int'),
])
def test_bad_input_raises_one_clear_error(make, match):
  with pytest.raises(ValueError, match=match) as err:
    make()
  assert '\n' not in str(err.value)


def test_float64_without_x64_is_refused_before_compute():
  t, x, y = _setup('float32')
  st = students.make_student(students.StudentSpec(width=2), t)
  with jax.enable_x64(False), pytest.raises(ValueError, match='jax_enable_x64'):
    engine.train_grid(st, engine.TrainSpec(dtype='float64'), seeds=[0], ns=[8], x_test=x, y_test=y)


def test_benchmark_checks_the_engine_against_the_loop():
  """The benchmark's own equality check and bookkeeping, on a miniature cell class."""
  from experiments import benchmark
  out = benchmark.run_class('mini', benchmark.CellClass(width=4, depth=1, ns=(16, 32), seeds=2, steps=20),
                            peak=1e10, rounds=2)
  assert out['results_match_loop'] and out['students'] == 4
  assert out['float64_max_relative_difference'] < 1e-9 and out['float32_share_within_1pct'] > 0.5
  assert out['naive_float64_max_relative_difference'] < 1e-9
  for loop in ('loop', 'fused_loop'):
    assert out[f'speedup_vs_{loop}'] == pytest.approx(out['engine_student_steps_per_s'] / out[f'{loop}_student_steps_per_s'])
    assert out[f'{loop}_compile_seconds'] > 0 and out[f'{loop}_run_seconds'] > 0
    assert out[f'{loop}_run_seconds'] == min(out[f'{loop}_run_seconds_per_round'])
    assert out[f'speedup_vs_{loop}_per_round'] == pytest.approx(
        np.divide(out[f'{loop}_run_seconds_per_round'], out['engine_run_seconds_per_round']))
    assert len(out[f'speedup_vs_{loop}_per_round']) == 2
  flops = 6 * benchmark.weights(benchmark.CellClass(4, 1, (16, 32), 2, 20)) * 2 * 48 * 20
  assert out['engine_flops'] == pytest.approx(flops / out['engine_run_seconds'])
  # The PyTorch reference (when torch is installed) trains the same students from the same arrays:
  # in float64 it must land on the JAX loop's errors.
  if benchmark.benchmark_torch.available():
    assert out['torch_float64_max_relative_difference'] < benchmark.MATCH_RTOL_FLOAT64
  else:
    assert out['torch'] is None and 'speedup_vs_torch' not in out


def test_every_n_and_the_online_column_in_one_program(dtype, monkeypatch):
  """With two n's or more above a small block, every n trains in one loop, its gradient summed
  over blocks of 512 then 128 points (`engine.BLOCK_POINTS`): n = 700 is one big block and two
  small ones, the last masked beyond n; the online column (256 fresh points a step) is two
  small blocks of the same loop. Each student's result is the one it gets alone on exactly its
  n points (the online one: on the same fresh samples), in one batch."""
  assert engine.BLOCK_POINTS == (512, 128)
  t, x, y = _setup(dtype)
  train = engine.TrainSpec(steps=300, check_every=100, dtype=dtype)
  st = students.make_student(students.StudentSpec(width=6), t)
  kw = dict(seeds=[0, 1], ns=[8, 700, None, 40, 200], x_test=x, y_test=y)
  blocks, train_one = [], engine.train_one
  monkeypatch.setattr(engine, 'train_one', lambda *a, **k: blocks.append(k.get('blocks')) or train_one(*a, **k))
  grid = engine.train_grid(st, train, **kw)
  assert blocks == [(512, 128)]   # traced once: one loop for every n and the online column
  alone = engine.train_sequential(st, train, **kw)
  rtol, atol = REORDER_TOL[dtype]
  np.testing.assert_array_equal(grid['steps'], alone['steps'])
  for key in ('test_error', 'train_error'):
    np.testing.assert_allclose(grid[key], alone[key], rtol=rtol, atol=atol, err_msg=key)
  assert np.all(np.isnan(grid['train_error'][:, 2])) and np.all(np.isfinite(grid['train_error'][:, [0, 1, 3, 4]]))


def test_narrow_students_padded_into_one_program_match_students_trained_alone(dtype):
  """Widths 1, 3 and 8 in one width-8 program (padded with inert units) equal each student
  trained alone at its own width, and the padding stays exactly zero."""
  t, x, y = _setup(dtype, teachers.TeacherSpec('mlp', depth=2, width=4, activation='tanh', gain=1.4,
                                               bias_scale=0.3))
  train = engine.TrainSpec(steps=300, check_every=100, learning_rate=1e-2, dtype=dtype)
  st = students.make_student(students.StudentSpec(width=8), t)
  kw = dict(seeds=[0, 0, 1, 1], widths=[1, 3, 8, 3], ns=[20, 60], x_test=x, y_test=y)
  grid, alone = engine.train_grid(st, train, **kw), engine.train_sequential(st, train, **kw)
  rtol, atol = REORDER_TOL[dtype]
  np.testing.assert_array_equal(grid['steps'], alone['steps'])
  np.testing.assert_allclose(grid['test_error'], alone['test_error'], rtol=rtol, atol=atol)
  assert len(np.unique(grid['test_error'][:, 0])) == 4       # different widths, different students


def test_padded_initialization_is_the_narrow_students_own(x64):
  from teacher_student import mlp
  t = teachers.make_teacher(teachers.TeacherSpec('mlp', depth=3, width=4), GAUSS4, x64)
  key = jax.random.key(7)
  for w in (1, 5, 16):
    narrow = students.make_student(students.StudentSpec(width=w, bias_scale=0.2), t).init(key, x64)
    padded = students.make_student(students.StudentSpec(width=16, bias_scale=0.2), t).init(key, x64, width=w)
    for a, b in zip(jax.tree.leaves(mlp.embed(narrow, 16)), jax.tree.leaves(padded)):
      np.testing.assert_array_equal(a, b)
  # The draws are standard normal: 2^18 hidden weights, rescaled by sqrt(fan_in).
  z = np.asarray(students.make_student(students.StudentSpec(width=512), t).init(key, x64)['params']['Dense_1']['kernel'])
  z = z * np.sqrt(512)
  import scipy.stats
  assert scipy.stats.kstest(z.ravel(), 'norm').pvalue > 1e-3 and abs(z.std() - 1) < 0.01


@pytest.mark.parametrize('activation', ['relu', 'tanh', 'gelu', 'erf'])
def test_feature_major_forward_is_the_same_function(activation, x64):
  """The training loop's transposed forward pass computes the flax MLP's outputs, and its
  hand-written backward pass the same gradients (float64: 1e-12)."""
  t = teachers.make_teacher(teachers.TeacherSpec('mlp', depth=2, width=4, out_dim=3), GAUSS4, x64)
  x, y = data.test_set(t, 256, seed=3, dtype=x64)
  st = students.make_student(students.StudentSpec(width=12, bias_scale=0.5, activation=activation), t)
  params = st.init(jax.random.key(0), x64)
  np.testing.assert_allclose(st.apply_feature_major(params, x.T).T, st.apply(params, x), rtol=0, atol=1e-12)
  grads = [jax.grad(lambda p, f=f: jnp.sum(jnp.sin(f(p)) * y))(params)
           for f in (lambda p: st.apply_feature_major(p, x.T).T, lambda p: st.apply(p, x))]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-12), *grads)
  features = students.make_student(students.StudentSpec(family='features'),
                                   teachers.make_teacher(teachers.TeacherSpec('random_features', width=32), GAUSS4, x64))
  theta = {'theta': jax.random.normal(jax.random.key(1), (32, 1), x64)}
  np.testing.assert_allclose(features.apply_feature_major(theta, x.T).T, features.apply(theta, x), rtol=0, atol=1e-12)


def test_replicates_trained_in_batches_match_one_vmap(dtype, monkeypatch):
  """Replicates too big to vmap together train in batches, one batch after another
  (`engine.replicate_batch`): batches of 2 and of 1 (where the online column, one student a
  batch, trains on the parameter tree instead of the flat vector) give the errors of one vmap
  over all replicates, and of each student trained alone."""
  t, x, y = _setup(dtype)
  train = engine.TrainSpec(steps=300, check_every=100, dtype=dtype)
  st = students.make_student(students.StudentSpec(width=6), t)
  kw = dict(seeds=list(range(8)), ns=[10, 40, None], x_test=x, y_test=y)
  one_vmap = engine.train_grid(st, train, **kw)
  per_replicate = 2 * engine.step_bytes(st, train, 40)   # the loop of n = 10 and 40, cut to 40 points
  rtol, atol = REORDER_TOL[dtype]
  for b in (2, 1):
    monkeypatch.setattr(engine, 'CPU_BATCH_BYTES', b * per_replicate)
    assert engine.replicate_batch(st, train, [40, 40], jax.devices()[0]) == b
    batched = engine.train_grid(st, train, **kw)
    np.testing.assert_array_equal(batched['steps'], one_vmap['steps'])
    for key in ('test_error', 'train_error'):
      np.testing.assert_allclose(batched[key], one_vmap[key], rtol=rtol, atol=atol, err_msg=f'{key}, batch {b}')
  alone = engine.train_sequential(st, train, **{**kw, 'seeds': [0, 5]})
  np.testing.assert_allclose(batched['test_error'][[0, 5]], alone['test_error'], rtol=rtol, atol=atol)


def test_benchmark_cells_get_their_batches_on_cpu():
  """The large benchmark students (width 256 on 4096 points) train one at a time on CPU; the
  tiny ones (width 16 on 256 points) all in one vmap."""
  from experiments import benchmark
  cpu = jax.devices('cpu')[0]
  for name, expect in (('large', lambda b: b == 1), ('tiny', lambda b: b >= 32)):
    cls = benchmark.CLASSES[name]
    student, train, _ = benchmark._cells(cls, 'float32')
    assert expect(engine.replicate_batch(student, train, [max(cls.ns)], cpu)), name
