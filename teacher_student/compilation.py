"""XLA compiler options for the three kinds of program the study compiles, per platform.

Training programs (`engine.compile_grid`'s training, `engine.train_sequential`) run for seconds
to hours; evaluation programs (the trained students on their pools and the test set) run once
per grid, for milliseconds to seconds; sampling programs (a teacher's draw, its test set, the
training pools, the replicates' keys and initial parameters: `sampling_jit`) run once per teacher
or grid, for milliseconds. On XLA:CPU each kind gets the options that suit it; other platforms
keep XLA's defaults for all three.
"""

import functools

import jax

CPU_OPTIONS = {
    # LLVM optimization level 1 instead of XLA:CPU's default: the same results bit for bit,
    # 17-27% less compilation of a training program and up to 2.6x faster training loops here
    # (the quick study's band-limited companion; measured on 2 cores).
    'training': {'xla_backend_optimization_level': 1},
    # XLA:CPU's older fusion emitter (LLVM IR straight from HLO, not through its MLIR fusion
    # pipeline): measured on 2 cores, the quick study's five evaluations compile in 1.0-1.3 s
    # instead of 1.5-2.3 s and run as fast (0.26-0.30 s all five, against 0.23-0.25 s). Training
    # loops run 2-3x slower with it; evaluations at level 0 compile in 0.6 s but run in 1.3-1.5 s.
    'evaluation': {'xla_backend_optimization_level': 1, 'xla_cpu_use_fusion_emitters': False},
    # Level 0: measured on 2 cores, one program at a time, the quick study's teachers, test sets
    # and pools took 0.14-0.51 s each to compile and run the first time instead of 0.25-0.73 s at
    # level 1, then run 3-10x slower, in milliseconds. With the older fusion emitter too: all of
    # the quick study's sampling programs compile and run the first time in 1.8-2.0 s instead of
    # 2.8-2.9 s; the thesis grid's pools of 8 x 131072 points draw in 0.43-0.56 s either way
    # (0.3 s at level 1 in an earlier measurement). The draws differ from level 1's or the other
    # emitter's in the last bits.
    'sampling': {'xla_backend_optimization_level': 0, 'xla_cpu_use_fusion_emitters': False},
}


def options(kind: str, platform: str) -> dict:
  """Compiler options for a program of `kind` (a key of CPU_OPTIONS: 'training', 'evaluation',
  'sampling') on `platform` ('cpu', 'gpu', 'tpu')."""
  if kind not in CPU_OPTIONS:
    raise ValueError(f'unknown kind of program {kind!r}; choose one of {", ".join(CPU_OPTIONS)}')
  return dict(CPU_OPTIONS[kind]) if platform == 'cpu' else {}


def sampling_jit(fn=None, **jit_kwargs):
  """`jax.jit` for a sampling program: compiled with the 'sampling' options of the default
  backend. Use as `@sampling_jit(static_argnums=...)` or `@sampling_jit`. The wrapper's
  `cache_size()` counts the programs compiled so far (over every platform)."""
  if fn is None:
    return functools.partial(sampling_jit, **jit_kwargs)
  jitted = {}   # platform -> jax.jit of fn with that platform's options

  @functools.wraps(fn)
  def call(*args, **kwargs):
    platform = jax.default_backend()
    if platform not in jitted:
      jitted.setdefault(platform, jax.jit(fn, compiler_options=options('sampling', platform) or None, **jit_kwargs))
    return jitted[platform](*args, **kwargs)

  call.cache_size = lambda: sum(j._cache_size() for j in list(jitted.values()))  # pylint: disable=protected-access
  return call
