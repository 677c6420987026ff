"""Process set-up that must happen before JAX is imported.

On a CPU, XLA runs one program on one device; a single vmapped program of small students then
uses little of the machine. One host device per core lets the engine shard its replicate axis
across cores (experiments/benchmark.py measures what it gains). On GPU and TPU hosts this only
shapes the unused CPU platform.
"""

import functools
import importlib.metadata
import os
import platform
import sys

FLAG = 'xla_force_host_platform_device_count'
# The packages whose versions decide the records' numerics (XLA's kernels, the solvers, the fits).
PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'numpy', 'scipy')


def use_all_cpu_cores() -> None:
  """Asks XLA for one CPU device per available core, unless XLA_FLAGS already sets a count."""
  if 'jax' in sys.modules or FLAG in os.environ.get('XLA_FLAGS', ''):
    return
  os.environ['XLA_FLAGS'] = f'{os.environ.get("XLA_FLAGS", "")} --{FLAG}={cores()}'.strip()


def cores() -> int:
  """The CPU cores this process may run on."""
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


@functools.cache
def software() -> dict:
  """{'python': ..., 'platform': ..., and each of PACKAGES: its installed version}."""
  def version(name):
    try:
      return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      return 'not installed'
  return {'python': platform.python_version(), 'platform': platform.platform(),
          **{name: version(name) for name in PACKAGES}}
