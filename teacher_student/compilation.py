"""XLA compiler options for the three kinds of program the study compiles, per platform.

Training programs (`engine.compile_grid`'s training, `sequential.train_sequential`) run for seconds
to hours; evaluation programs (the trained students on their pools and the test set) run once
per grid, for milliseconds to seconds; sampling programs (a teacher's draw, its test set, the
training pools, the replicates' keys and initial parameters: `sampling_jit`) run once per teacher
or grid, for milliseconds. On XLA:CPU each kind gets the options that suit it; other platforms
keep XLA's defaults for all three.
"""

import functools

import jax

CPU_OPTIONS = {
    # LLVM level 1 instead of XLA:CPU's default: the same results, less compilation, and
    # training loops no slower.
    'training': {'xla_backend_optimization_level': 1},
    # The older fusion emitter (LLVM IR straight from HLO): compiles faster and runs as fast for
    # a program that runs once; training loops would run slower with it.
    'evaluation': {'xla_backend_optimization_level': 1, 'xla_cpu_use_fusion_emitters': False},
    # Level 0 and the older emitter: sampling programs run for milliseconds, so compiling them
    # fast is what counts. Their draws differ from other options' in the last bits.
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
