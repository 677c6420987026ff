"""Training pools and test sets, reproducible from seeds (docs/design.md §3–§4).

A replicate is (seed, member). The seed fixes the training pool and its label noise; the
member (0 for ordinary students) picks the initialization and the mini-batches, so an ensemble
of members shares one sample S_n (docs/design.md §2, estimator (c)). Each comes from its own stream.
Students of the same seed and different n see nested samples: JAX's partitionable threefry
makes the first n points of a pool independent of the pool's size, so a cell's sample depends
on (seed, n) only, and a learning curve is measured with common random numbers (U(n) is then
monotone by construction). The test set has its own seed.
"""

import jax
import jax.numpy as jnp

from teacher_student import compilation
from teacher_student import inputs as inputs_lib

POOL, INIT, BATCH, NOISE, TEST = range(5)


def stream_key(seed, stream: int) -> jax.Array:
  """The key of one random stream of replicate `seed` (seed may be traced)."""
  return jax.random.fold_in(jax.random.key(seed), stream)


def member_keys(seed, member):
  """(initialization key, mini-batch key) of replicate (seed, member); both may be traced."""
  return (jax.random.fold_in(stream_key(seed, INIT), member),
          jax.random.fold_in(stream_key(seed, BATCH), member))


@compilation.sampling_jit
def member_key_data(seeds_s, members_s):
  """`member_keys` of replicates (seeds_s, members_s) (S,), as raw key data (S, ...) (unwrap
  with jax.random.wrap_key_data): a program of its own, which every training program of S rows
  shares, instead of four Threefry loops compiled into each."""
  init, batch = jax.vmap(member_keys)(seeds_s, members_s)
  return jax.random.key_data(init), jax.random.key_data(batch)


def train_pool(teacher, seed, n: int, noise_std: float = 0.0, dtype=jnp.float32):
  """The n_max-point training pool of replicate `seed`: x_nd (n, D), y_nk (n, k).

  Labels are f*(x) plus N(0, noise_std²) label noise (0 in the noiseless study).
  """
  x_nd = inputs_lib.sample(teacher.inputs, stream_key(seed, POOL), n, dtype)
  y_nk = teacher(x_nd).astype(dtype)
  if noise_std:
    y_nk = y_nk + noise_std * jax.random.normal(stream_key(seed, NOISE), y_nk.shape, dtype)
  return x_nd, y_nk


@compilation.sampling_jit(static_argnames=('n', 'dtype'))
def test_set(teacher, n: int, seed: int, dtype=jnp.float32):
  """The held-out sample (x_nd, clean f*(x)_nk), drawn with its own seed (one compiled program,
  not one per operation)."""
  x_nd = inputs_lib.sample(teacher.inputs, stream_key(seed, TEST), n, dtype)
  return x_nd, teacher(x_nd).astype(dtype)
