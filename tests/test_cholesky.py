"""The blocked Cholesky solve against known solutions and LAPACK's factor (float64: 1e-10)."""

import jax
import numpy as np
import pytest

from teacher_student import cholesky


@pytest.mark.parametrize('size', [40, 300])     # one block; three blocks of 128, 128 and 44
def test_solve_matches_a_known_solution_and_the_factor_lapacks(size, x64):
  rng = np.random.default_rng(size)
  a = rng.normal(size=(size + 20, size))
  spd = a.T @ a + 1e-3 * np.eye(size)
  x_true = rng.normal(size=size)
  np.testing.assert_allclose(jax.jit(cholesky.solve)(spd, spd @ x_true), x_true, rtol=1e-9, atol=1e-9)
  low, inverses = jax.jit(cholesky.factor)(spd)
  np.testing.assert_allclose(low, np.linalg.cholesky(spd), rtol=1e-10, atol=1e-10)
  assert len(inverses) == -(-size // cholesky.block_size(size))
  assert cholesky.block_size(size) == min(size, cholesky.BLOCK)


def test_block_width_grows_so_the_program_stays_short():
  assert cholesky.block_size(4096) == 128 and cholesky.block_size(8192) == 256   # 32 blocks each
  assert -(-10_000 // cholesky.block_size(10_000)) <= cholesky.MAX_BLOCKS


def test_a_matrix_that_is_not_positive_definite_gives_nan(x64):
  m = np.diag([1.0, -1.0, 2.0])
  assert np.isnan(np.asarray(cholesky.solve(m, np.ones(3)))).any()
