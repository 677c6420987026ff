import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from teacher_student import data, inputs, teachers

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


def test_bandlimited_basis(x64):
  ins = inputs.InputSpec('cube', 2)
  t = teachers.make_teacher(teachers.TeacherSpec('bandlimited', cutoff=3), ins, dtype=x64)
  assert t.num_basis == 7**2 - 1 == 48
  phi = np.asarray(t.features(inputs.sample(ins, jax.random.key(5), 1 << 16, x64)))
  # Orthogonal under the uniform cube, each with mean square 1/2: E φφᵀ = I/2 (Monte Carlo).
  np.testing.assert_allclose(phi.T @ phi / len(phi), np.eye(48) / 2, atol=6 / np.sqrt(len(phi)))


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
