import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from teacher_student import data, inputs, mlp, teachers

GAUSS4 = inputs.InputSpec('gaussian', 4)


def _tree_equal(a, b):
  return all(jax.tree.leaves(jax.tree.map(lambda u, v: bool(jnp.array_equal(u, v)), a, b)))


@pytest.mark.parametrize('activation', ['relu', 'tanh', 'gelu', 'erf'])
@pytest.mark.parametrize('depth,out_dim', [(1, 1), (3, 2)])
def test_mlp_teacher_unit_variance(activation, depth, out_dim):
  spec = teachers.TeacherSpec('mlp', depth=depth, width=6, activation=activation, gain=1.5,
                              bias_scale=0.2, out_dim=out_dim, seed=3)
  t = teachers.make_teacher(spec, GAUSS4)
  _, y = data.test_set(t, spec.n_normalize, seed=99)   # a sample independent of the normalization
  y = np.asarray(y, np.float64)
  var, mean = y.var(0), y.mean(0)
  se_var = np.sqrt(((y - mean) ** 4).mean(0) - var**2) / np.sqrt(len(y))
  # Both samples carry sampling error of about se_var: allow 5 standard errors of the difference.
  assert np.all(np.abs(var - 1) < 5 * np.sqrt(2) * se_var), (var, se_var)
  assert np.all(np.abs(mean) < 5 * np.sqrt(2 * var / len(y)))


@pytest.mark.parametrize('family,ins', [
    ('random_features', GAUSS4),
    ('bandlimited', inputs.InputSpec('cube', 2)),
])
def test_linear_teacher_unit_variance_over_the_prior(family, ins):
  # The prior, not each draw, is scaled: E_θ Var_μ f_θ = 1 (module docstring).
  spec = teachers.TeacherSpec(family, width=40, cutoff=3, activation='relu')
  v = []
  for seed in range(30):
    t = teachers.make_teacher(dataclasses.replace(spec, seed=seed), ins)
    v.append(float(jnp.var(data.test_set(t, 1 << 14, seed=1000 + seed)[1])))
  v = np.asarray(v)
  assert abs(v.mean() - 1) < 4 * v.std() / np.sqrt(len(v)) + 0.02, (v.mean(), v.std())


@pytest.mark.parametrize('family', teachers.FAMILIES)
def test_teacher_bit_reproducible_from_seed(family):
  ins = inputs.InputSpec('cube', 2)
  spec = teachers.TeacherSpec(family, width=5, cutoff=2, seed=11)
  a, b = teachers.make_teacher(spec, ins), teachers.make_teacher(spec, ins)
  c = teachers.make_teacher(teachers.TeacherSpec(family, width=5, cutoff=2, seed=12), ins)
  x = inputs.sample(ins, jax.random.key(0), 64)
  assert _tree_equal(a.params, b.params) and jnp.array_equal(a(x), b(x))
  assert not jnp.array_equal(a(x), c(x))


# Sampling programs compile with other XLA options than op-by-op execution (compilation.py):
# the same draws up to float rounding. (rtol, atol) by dtype.
SAMPLING_TOL = {'float32': (1e-5, 1e-6), 'float64': (1e-12, 1e-14)}


@pytest.mark.parametrize('spec,ins', [(teachers.TeacherSpec('mlp', depth=2, width=6, bias_scale=0.3, n_normalize=4096), GAUSS4),
                                      (teachers.TeacherSpec('bandlimited', cutoff=2, n_normalize=4096), inputs.InputSpec('cube', 2))])
def test_sampling_programs_draw_what_op_by_op_draws(spec, ins, dtype):
  """The compiled teacher draw, test set, pools and initial parameters (`compilation.sampling_jit`)
  equal the same functions run op by op, within the dtype's rounding."""
  from teacher_student import engine, students
  rtol, atol = SAMPLING_TOL[dtype]
  close = lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
  draw = lambda: teachers.make_teacher(spec, ins, jnp.dtype(dtype))
  t = draw()
  with jax.disable_jit():
    t_ref = draw()
    test_ref = data.test_set(t_ref, 512, seed=3, dtype=jnp.dtype(dtype))
    pool_ref = [data.train_pool(t_ref, s, 300, 0.1, jnp.dtype(dtype)) for s in (4, 9)]
  jax.tree.map(close, t.params, t_ref.params)
  jax.tree.map(close, data.test_set(t, 512, seed=3, dtype=jnp.dtype(dtype)), test_ref)
  x_su, y_su = engine.pools(t, jnp.asarray([4, 9], jnp.int32), 300, 0.1, dtype)
  for s, (x, y) in enumerate(pool_ref):
    close(x_su[s], x)
    close(y_su[s], y)
  st = students.make_student(students.StudentSpec(width=6, depth=2, activation='relu', bias_scale=0.2), t)
  keys, widths = [jax.random.key(1), jax.random.key(2)], [3, 6]   # width 3 padded to 6
  init_s = engine.initial_params(st, jnp.stack([jax.random.key_data(k) for k in keys]), jnp.asarray(widths, jnp.int32),
                                 dtype, True)
  with jax.disable_jit():
    init_ref = [st.init(k, jnp.dtype(dtype), w) for k, w in zip(keys, widths)]
  for s, ref in enumerate(init_ref):
    jax.tree.map(lambda a, b, s=s: close(a[s], b), init_s, ref)


def test_bandlimited_basis(x64):
  ins = inputs.InputSpec('cube', 2)
  t = teachers.make_teacher(teachers.TeacherSpec('bandlimited', cutoff=3), ins, dtype=x64)
  assert t.num_basis == 7**2 - 1 == 48
  phi = np.asarray(t.features(inputs.sample(ins, jax.random.key(5), 1 << 16, x64)))
  # Orthogonal under the uniform cube, each with mean square 1/2: E φφᵀ = I/2 (Monte Carlo).
  np.testing.assert_allclose(phi.T @ phi / len(phi), np.eye(48) / 2, atol=6 / np.sqrt(len(phi)))


@pytest.mark.parametrize('activation', ['relu', 'tanh', 'gelu', 'erf'])
@pytest.mark.parametrize('depth', [1, 2, 3])
def test_realizability_certificate(activation, depth, x64):
  """A width-w teacher zero-padded into a width-m >= w student computes the same function."""
  spec = teachers.TeacherSpec('mlp', depth=depth, width=5, activation=activation, gain=1.3,
                              bias_scale=0.4, out_dim=2, seed=depth)
  t = teachers.make_teacher(spec, GAUSS4, dtype=x64)
  x, y = data.test_set(t, 4096, seed=0, dtype=x64)
  for m in (5, 6, 17):
    student_params = mlp.embed(t.params, m)
    module = mlp.MLP(width=m, depth=depth, out_dim=2, activation=activation, dtype=x64)
    f = module.apply(student_params, x)
    assert f.shape == y.shape
    assert float(jnp.max(jnp.abs(f - y))) < 1e-12
    assert float(jnp.mean((f - y) ** 2) / jnp.var(y)) < 1e-24  # R(m) = 0
    assert mlp.param_count(4, m, depth, 2) == sum(v.size for v in jax.tree.leaves(student_params))
  with pytest.raises(ValueError, match='narrower'):
    mlp.embed(t.params, 4)


@pytest.mark.parametrize('kwargs,match', [
    (dict(family='transformer'), 'unknown teacher family'),
    (dict(activation='swish'), 'unknown activation'),
    (dict(width=0), 'width must be >= 1'),
    (dict(depth=-1), 'depth must be >= 1'),
    (dict(family='bandlimited', cutoff=0), 'cutoff'),
    (dict(gain=0.0), 'gain'),
])
def test_bad_teacher_spec(kwargs, match):
  with pytest.raises(ValueError, match=match):
    teachers.TeacherSpec(**kwargs)


def test_too_many_basis_functions_is_refused_before_compute():
  with pytest.raises(ValueError, match='basis functions'):
    teachers.check(teachers.TeacherSpec('bandlimited', cutoff=4), inputs.InputSpec('cube', 8))
