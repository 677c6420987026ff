"""Shared fixtures. Tests run with x64 off and on (as neural-tangents does); tolerances by dtype."""

from experiments import host

host.use_all_cpu_cores()  # as the entry points do: the engine shards over the CPU cores

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

# Tolerances for comparing two trainings that differ only in floating-point reduction order
# (e.g. a vmapped batch against one student at a time): (rtol, atol) on normalized errors.
# Hundreds of Adam steps amplify a last-bit difference by up to ~1e4 on under-determined
# students (measured: 2.5e-3 relative in float32 after 400 steps at n = 40 < P = 79), hence
# float32's 1e-2; float64 keeps the same amplification far below its 1e-9.
REORDER_TOL = {'float32': (1e-2, 1e-5), 'float64': (1e-9, 1e-12)}


ONE_DEVICE = pytest.mark.xdist_group('one_device_float64')


@pytest.fixture(params=['float32', 'float64'])
def dtype(request):
  """Runs the test once in float32 and once in float64 (with jax_enable_x64 on)."""
  with jax.enable_x64(request.param == 'float64'):
    yield request.param


@pytest.fixture
def x64():
  """Runs the test with 64-bit JAX."""
  with jax.enable_x64(True):
    yield jnp.float64


@pytest.fixture(scope='session')
def one_device_float64(tmp_path_factory):
  """The tiny study in float64, on one device in this process: the reference of scale-out. Its
  tests are marked ONE_DEVICE so that one pytest worker builds it, not each."""
  from experiments import results, runner
  from helpers import tiny_config
  workdir = tmp_path_factory.mktemp('one')
  runner.run(tiny_config(train__dtype='float64'), workdir, progress=False, devices=jax.local_devices()[:1])
  return results.load(workdir)
