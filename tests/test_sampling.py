"""teacher_student.sampling and data: the compiled sampling programs draw what op-by-op execution draws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import GAUSS4
from teacher_student import data, inputs, sampling, students, teachers

# Sampling programs compile with other XLA options than op-by-op execution (compilation.py):
# the same draws up to float rounding. (rtol, atol) by dtype.
SAMPLING_TOL = {'float32': (1e-5, 1e-6), 'float64': (1e-12, 1e-14)}


@pytest.mark.parametrize('spec,ins', [(teachers.TeacherSpec('mlp', depth=2, width=6, bias_scale=0.3, n_normalize=4096), GAUSS4),
                                      (teachers.TeacherSpec('bandlimited', cutoff=2, n_normalize=4096), inputs.InputSpec('cube', 2))])
def test_sampling_programs_draw_what_op_by_op_draws(spec, ins, dtype):
  """The compiled teacher draw, test set, pools and initial parameters (`compilation.sampling_jit`)
  equal the same functions run op by op, within the dtype's rounding."""
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
  x_su, y_su = sampling.pools(t, jnp.asarray([4, 9], jnp.int32), 300, 0.1, dtype)
  for s, (x, y) in enumerate(pool_ref):
    close(x_su[s], x)
    close(y_su[s], y)
  st = students.make_student(students.StudentSpec(width=6, depth=2, activation='relu', bias_scale=0.2), t)
  keys, widths = [jax.random.key(1), jax.random.key(2)], [3, 6]   # width 3 padded to 6
  init_s = sampling.initial_params(st, jnp.stack([jax.random.key_data(k) for k in keys]),
                                   jnp.asarray(widths, jnp.int32), dtype, True)
  with jax.disable_jit():
    init_ref = [st.init(k, jnp.dtype(dtype), w) for k, w in zip(keys, widths)]
  for s, ref in enumerate(init_ref):
    jax.tree.map(lambda a, b, s=s: close(a[s], b), init_s, ref)

