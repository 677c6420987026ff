"""The sampling programs a grid needs before training: training pools and initial parameters.

Each is a program of its own (`compilation.sampling_jit`): random sampling is costly to compile
into a training program, and these shapes recur across grids, so they compile once and are
reused. `dispatch` calls one without waiting for the device and says how long it compiled.
"""

import time
from typing import Callable

import jax
import jax.numpy as jnp

from teacher_student import compilation
from teacher_student import data as data_lib


def dispatch(sampling_fn: Callable, *args) -> tuple:
  """(sampling_fn(*args), seconds spent compiling it: 0 if its program was cached). The call
  is only dispatched, so its time is its compilation."""
  t, cached = time.perf_counter(), sampling_fn.cache_size()
  out = sampling_fn(*args)
  return out, (time.perf_counter() - t if sampling_fn.cache_size() > cached else 0.0)


@compilation.sampling_jit(static_argnums=(2, 3, 4))
def pools(teacher, seeds_s: jax.Array, n: int, noise_std: float, dtype: str):
  """The training pools of replicate seeds (S,): x (S, n, D), y (S, n, k)."""
  return jax.vmap(lambda s: data_lib.train_pool(teacher, s, n, noise_std, jnp.dtype(dtype)))(seeds_s)


@compilation.sampling_jit(static_argnums=(3, 4))
def initial_params(student, init_kd_s: jax.Array, widths_s: jax.Array, dtype: str, narrow: bool):
  """The initial parameters (`Student.init`) of replicates of widths widths_s (S,) from their
  init keys' data init_kd_s (S, ...): a tree of (S, ...) arrays. narrow: the replicates may be
  narrower than the student (padded with inert units); else widths_s is ignored."""
  init = lambda key_data, width: student.init(jax.random.wrap_key_data(key_data), jnp.dtype(dtype),
                                              width if narrow else None)
  return jax.vmap(init)(init_kd_s, widths_s)
