import jax
import jax.numpy as jnp
import numpy as np
import pytest

from teacher_student import inputs


@pytest.mark.parametrize('dist,coord_var', [('gaussian', 1.0), ('cube', 1 / 3), ('sphere', 1.0)])
def test_moments(dist, coord_var):
  n, d = 1 << 15, 5
  x = np.asarray(inputs.sample(inputs.InputSpec(dist, d), jax.random.key(0), n))
  assert x.shape == (n, d)
  # Sample mean and variance within 5 standard errors of the exact values.
  assert np.all(np.abs(x.mean(0)) < 5 * np.sqrt(coord_var / n))
  assert np.allclose(x.var(0), coord_var, rtol=5 * np.sqrt(2 / n) * 1.5)
  if dist == 'sphere':
    assert np.allclose(np.linalg.norm(x, axis=1), np.sqrt(d), rtol=1e-5)
  if dist == 'cube':
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize('embedding', ['random', 'pad'])
def test_intrinsic_dimension_embedding(embedding, x64):
  spec = inputs.InputSpec('gaussian', dim=10, intrinsic_dim=3, embedding=embedding, seed=4)
  a = np.asarray(inputs.embedding_matrix(spec, x64))
  np.testing.assert_allclose(a.T @ a, np.eye(3), atol=1e-12)  # an isometry of R^3 into R^10
  x = np.asarray(inputs.sample(spec, jax.random.key(1), 500, x64))
  assert x.shape == (500, 10)
  assert np.linalg.matrix_rank(x, tol=1e-8) == 3
  # Lengths are those of a 3-dimensional standard Gaussian: mean ‖x‖² = 3.
  assert abs(np.mean(np.sum(x**2, 1)) - 3) < 0.5
  if embedding == 'pad':
    assert np.all(x[:, 3:] == 0)


def test_reproducible_from_seed():
  spec = inputs.InputSpec('sphere', dim=6, intrinsic_dim=4)
  a = inputs.sample(spec, jax.random.key(3), 100)
  b = inputs.sample(spec, jax.random.key(3), 100)
  c = inputs.sample(spec, jax.random.key(4), 100)
  assert jnp.array_equal(a, b) and not jnp.array_equal(a, c)


@pytest.mark.parametrize('kwargs,match', [
    (dict(distribution='laplace'), 'unknown input distribution'),
    (dict(dim=0), 'D must be >= 1'),
    (dict(dim=4, intrinsic_dim=5), 'd_int=5'),
    (dict(embedding='spiral'), 'unknown embedding'),
])
def test_bad_input_spec(kwargs, match):
  with pytest.raises(ValueError, match=match):
    inputs.InputSpec(**kwargs)
