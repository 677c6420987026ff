import jax
import numpy as np
import pytest

from analysis import intrinsic_dim
from teacher_student import inputs


@pytest.mark.parametrize('distribution', ['gaussian', 'cube', 'sphere'])
@pytest.mark.parametrize('d_int', [2, 4, 6, 8])
@pytest.mark.parametrize('estimator', [intrinsic_dim.two_nn, intrinsic_dim.mle])
def test_estimators_recover_the_intrinsic_dimension_within_15pct(distribution, d_int, estimator):
  """4000 points on a d_int-dimensional subspace of R^16 (random embedding). Points uniform on
  a sphere in R^d_int lie on a manifold of dimension d_int − 1."""
  spec = inputs.InputSpec(distribution, 16, intrinsic_dim=d_int, seed=d_int)
  x = np.asarray(inputs.sample(spec, jax.random.key(0), 4000))
  truth = d_int - 1 if distribution == 'sphere' else d_int
  assert estimator(x) == pytest.approx(truth, rel=0.15)


def test_ambient_dimension_does_not_fool_the_estimator():
  x = np.asarray(inputs.sample(inputs.InputSpec('gaussian', 64, intrinsic_dim=3, embedding='pad'), jax.random.key(1), 3000))
  assert intrinsic_dim.two_nn(x) == pytest.approx(3, rel=0.15)
  x = np.asarray(inputs.sample(inputs.InputSpec('gaussian', 5), jax.random.key(1), 3000))
  assert intrinsic_dim.two_nn(x) == pytest.approx(5, rel=0.15)
