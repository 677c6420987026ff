"""XLA compiler options for the two kinds of program the study compiles, per platform.

Training programs (`engine.compile_grid`, `engine.train_sequential`) run for seconds to hours;
sampling programs (a teacher's draw, its test set, the training pools: `sampling_jit`) run once
per teacher and take milliseconds. On XLA:CPU each kind gets the LLVM optimization level that
suits it; other platforms keep XLA's defaults for both.
"""

import functools

import jax

# Training on XLA:CPU at optimization level 1 instead of its default: the same results bit for
# bit, 17-27% less compilation of a training program and up to 2.6x faster training loops here
# (the quick study's band-limited companion; measured on 2 cores).
TRAINING_CPU_OPTIONS = {'xla_backend_optimization_level': 1}
# Sampling on XLA:CPU at level 0: measured on 2 cores, one program at a time, the quick study's
# teachers, test sets and pools take 0.14-0.51 s each to compile and run the first time instead
# of 0.25-0.73 s, and then run 3-10x slower, in milliseconds (the thesis grid's pools of
# 8 x 131072 points: 0.9 s instead of 0.3 s). The draws differ from level 1's in the last bits.
SAMPLING_CPU_OPTIONS = {'xla_backend_optimization_level': 0}


def training_options(platform: str) -> dict:
  """Compiler options for a training program on `platform` ('cpu', 'gpu', 'tpu')."""
  return dict(TRAINING_CPU_OPTIONS) if platform == 'cpu' else {}


def sampling_jit(fn=None, **jit_kwargs):
  """`jax.jit` for a sampling program: compiled with SAMPLING_CPU_OPTIONS when the default
  backend is the CPU. Use as `@sampling_jit(static_argnums=...)` or `@sampling_jit`. The
  wrapper's `cache_size()` counts the programs compiled so far (over every platform)."""
  if fn is None:
    return functools.partial(sampling_jit, **jit_kwargs)
  jitted = {}   # platform -> jax.jit of fn with that platform's options

  @functools.wraps(fn)
  def call(*args, **kwargs):
    platform = jax.default_backend()
    if platform not in jitted:
      options = dict(SAMPLING_CPU_OPTIONS) if platform == 'cpu' else None
      jitted.setdefault(platform, jax.jit(fn, compiler_options=options, **jit_kwargs))
    return jitted[platform](*args, **kwargs)

  call.cache_size = lambda: sum(j._cache_size() for j in list(jitted.values()))  # pylint: disable=protected-access
  return call
