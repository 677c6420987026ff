"""Solves with a symmetric positive definite matrix by a blocked Cholesky factorization whose work
is matrix products (the second phase's step, `second_order`, `dual_lm`).

Written in XLA operations, not LAPACK: LAPACK custom calls inside the per-device while-loops of a
sharded program deadlocked XLA:CPU's thread pool. The blocks are unrolled with static shapes, so
each block's update touches only the rows below it (the left-looking algorithm: P³/3 multiply-adds
in all, as LAPACK's), and only the factorization of each small diagonal block runs column by column.
"""

import math

import jax
import jax.numpy as jnp

BLOCK = 128        # columns per block: small enough that the column loop on a block is cheap
MAX_BLOCKS = 32    # larger matrices get wider blocks: the unrolled program stays this long


def block_size(size: int) -> int:
  """The block width for a size × size matrix."""
  return min(size, max(BLOCK, math.ceil(size / MAX_BLOCKS)))


def _column_factor(a_bb: jax.Array) -> jax.Array:
  """The lower Cholesky factor of a small SPD block, column by column (NaN if not positive definite)."""
  size = a_bb.shape[0]
  idx = jnp.arange(size)

  def column(j, low):   # column j of the factor, from the columns before it
    col = a_bb[:, j] - low @ low[j]
    return low.at[:, j].set(jnp.where(idx >= j, col / jnp.sqrt(col[j]), 0.0))
  return jax.lax.fori_loop(0, size, column, jnp.zeros_like(a_bb))


def _lower_inverse(low_bb: jax.Array) -> jax.Array:
  """The inverse of a small lower-triangular block, row by row (forward substitution on I)."""
  size = low_bb.shape[0]
  eye = jnp.eye(size, dtype=low_bb.dtype)

  def row(i, inv):
    return inv.at[i].set((eye[i] - low_bb[i] @ inv) / low_bb[i, i])
  return jax.lax.fori_loop(0, size, row, jnp.zeros_like(low_bb))


def factor(a_pp: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
  """The lower Cholesky factor L of a (L Lᵀ = a) and the inverses of its diagonal blocks."""
  size = a_pp.shape[0]
  b = block_size(size)
  low = jnp.zeros_like(a_pp)
  inverses = []
  for s in range(0, size, b):
    e = min(s + b, size)
    # Columns s:e of the factor from the columns before them: one product over the rows below.
    col = a_pp[s:, s:e] - low[s:, :s] @ low[s:e, :s].T
    l_kk = _column_factor(col[:e - s])
    inv_kk = _lower_inverse(l_kk)
    low = low.at[s:e, s:e].set(l_kk).at[e:, s:e].set(col[e - s:] @ inv_kk.T)
    inverses.append(inv_kk)
  return low, inverses


def solve(a_pp: jax.Array, b_p: jax.Array) -> jax.Array:
  """x = a⁻¹ b for a symmetric positive definite a (P × P); NaN where a is not positive definite."""
  low, inverses = factor(a_pp)
  size, b = a_pp.shape[0], block_size(a_pp.shape[0])
  starts = list(range(0, size, b))
  y = jnp.zeros_like(b_p)
  for k, s in enumerate(starts):          # L y = b, block by block
    e = min(s + b, size)
    y = y.at[s:e].set(inverses[k] @ (b_p[s:e] - low[s:e, :s] @ y[:s]))
  x = jnp.zeros_like(b_p)
  for k, s in reversed(list(enumerate(starts))):   # Lᵀ x = y, from the last block up
    e = min(s + b, size)
    x = x.at[s:e].set(inverses[k].T @ (y[s:e] - low[e:, s:e].T @ x[e:]))
  return x
