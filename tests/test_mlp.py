"""teacher_student.mlp: the zero-padding embedding (the R(m) = 0 certificate) and the feature-major form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import GAUSS4
from teacher_student import data, mlp, students, teachers


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

