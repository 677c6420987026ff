"""Normalized errors of trained students on their training points and the test set (docs/design.md §2).

E(f) = mean_x (f(x) − f*(x))² / Var f*, averaged over outputs; 1 is predicting the mean.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

EVAL_CHUNK = 4096   # points a student is evaluated on at once


class Evaluation(NamedTuple):
  """One student's normalized errors; test_predictions (n_test, k) only when asked for."""
  train_error: jax.Array
  test_error: jax.Array
  test_se: jax.Array
  test_predictions: jax.Array | None = None


def outputs(student, params, x_nd: jax.Array) -> jax.Array:
  """Student outputs (n, k) on x (n, D), computed in chunks of at most EVAL_CHUNK points."""
  # Equal chunks, as few as fit: 4096 + 1024 points in two of 2560, not two of 4096.
  chunks = -(-x_nd.shape[0] // EVAL_CHUNK)
  size = -(-x_nd.shape[0] // chunks)
  x_cnd = jnp.pad(x_nd, [(0, (-x_nd.shape[0]) % size), (0, 0)]).reshape(-1, size, x_nd.shape[1])
  f_cnk = jax.lax.map(lambda x: student.apply(params, x), x_cnd)
  return f_cnk.reshape(-1, f_cnk.shape[-1])[: x_nd.shape[0]]


def squared_error_sums(student, params, x_nd: jax.Array, y_nk: jax.Array, w_n: jax.Array) -> tuple:
  """(Σ w e, Σ w e²) over points, e_i = mean_k (f(x_i) − y_ik)²."""
  e_n = jnp.mean((outputs(student, params, x_nd) - y_nk) ** 2, axis=-1)
  return jnp.sum(w_n * e_n), jnp.sum(w_n * e_n**2)


def normalized_error(s1, s2, count, y_var) -> tuple:
  """E = mean e / Var f* and its standard error over the `count` points (docs/design.md §2)."""
  mean = s1 / count
  var_e = jnp.maximum(s2 / count - mean**2, 0.0)
  return mean / y_var, jnp.sqrt(var_e / count) / y_var


def output_variance(y_nk: jax.Array) -> jax.Array:
  """Var f*: the per-output variance over the sample, averaged over outputs."""
  return jnp.mean(jnp.var(y_nk, axis=0))


def evaluate(student, params, x_pool, y_pool, n, x_test, y_test, y_var, predictions: bool = False) -> Evaluation:
  """One student's errors: training error over the first n points of the pool (NaN for n = 0,
  the online column), test error and its standard error[, test predictions]."""
  # One pass over pool and test points together: fewer kernels to compile than two.
  n_pool, n_test = x_pool.shape[0], x_test.shape[0]
  f_nk = outputs(student, params, jnp.concatenate([x_pool, x_test]))
  e_n = jnp.mean((f_nk - jnp.concatenate([y_pool, y_test])) ** 2, axis=-1)
  e_pool, e_test = e_n[:n_pool], e_n[n_pool:]
  w_pool = (jnp.arange(n_pool) < n).astype(e_n.dtype)
  train_err, _ = normalized_error(jnp.sum(w_pool * e_pool), jnp.sum(w_pool * e_pool**2), n, y_var)
  test_err, test_se = normalized_error(jnp.sum(e_test), jnp.sum(e_test**2), n_test, y_var)
  return Evaluation(train_err, test_err, test_se, f_nk[n_pool:] if predictions else None)
