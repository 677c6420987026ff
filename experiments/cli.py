"""What the absl entry points share: one-line errors and the config-file check."""

import logging
import os
import pathlib
import sys

from absl import flags
from ml_collections import config_flags

CONFIGS = pathlib.Path(__file__).parent / 'configs'
INPUT_ERRORS = (ValueError, KeyError, AttributeError, TypeError, OSError)


def presets() -> list[str]:
  return sorted(p.stem for p in CONFIGS.glob('*.py') if p.stem not in ('__init__', 'base'))


def fail(message: str):
  """Exits with status 2 and one line on stderr."""
  prog = pathlib.Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else 'experiments'
  print(f'{prog}: error: {message}', file=sys.stderr)
  sys.exit(2)


def first_line(e: BaseException) -> str:
  return str(e).splitlines()[0] if str(e) else repr(e)


def require(*names) -> None:
  """Fails with one line unless every named flag was given a value."""
  for name in names:
    if flags.FLAGS[name].value in (None, ''):
      fail(f'--{name} is required')


def choices_or_fail(name: str, allowed, what: str) -> list[str]:
  """The values of list flag `name`, each one of `allowed`: one line and exit status 2 if one
  is not, or if the list is empty ("unknown {what} [...]; choose from ...")."""
  given = flags.FLAGS[name].value
  unknown = [v for v in given if v not in allowed]
  if unknown or not given:
    fail(f'unknown {what} {unknown or "(none given)"}; choose from {", ".join(allowed)}')
  return given


def output_file_or_fail(name: str) -> pathlib.Path:
  """The path an output-file flag names, checked before any work is done: one line and exit
  status 2 if the flag is missing, names a directory, or its folder is not one."""
  require(name)
  path = pathlib.Path(flags.FLAGS[name].value)
  if path.is_dir():
    fail(f'--{name}={path} is a directory; give a file path')
  if not path.parent.is_dir():
    fail(f'--{name}={path}: {path.parent} is not a folder')
  return path


def or_fail(fn, *args, **kwargs):
  """fn(*args, **kwargs), with bad input (INPUT_ERRORS) reported as one line and exit status 2."""
  try:
    return fn(*args, **kwargs)
  except INPUT_ERRORS as e:
    fail(first_line(e))


# Loggers that report which platforms exist at INFO (e.g. "Unable to initialize backend 'tpu'"),
# which a user cannot act on: entry points show their warnings only.
PLATFORM_LOGGERS = ('jax._src.xla_bridge', 'jax._src.distributed', 'jax._src.compiler')


def parse_flags(argv):
  """absl flag parsing, but any bad flag or config field is one line and exit code 2. Also
  quiets JAX's platform-probing loggers (PLATFORM_LOGGERS): every entry point passes here."""
  for name in PLATFORM_LOGGERS:
    logging.getLogger(name).setLevel(logging.WARNING)
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # flags.Error, and AttributeError/KeyError from config overrides
    what = first_line(e)
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    if 'Traceback (most recent call last):' in lines:   # raised inside a config file: say what
      what = f'{what} {lines[-1]}'
    elif 'get_config' in what:
      what = f'the config file defines no get_config() ({what})'
    elif isinstance(e, (AttributeError, KeyError)):
      what = f'unknown config field {what} in a --config.* override'
    fail(f'bad flag: {what}')


def config_or_fail(flag_name: str = 'config'):
  """The parsed ConfigDict of a DEFINE_config_file flag; a missing file is one clear line."""
  holder = flags.FLAGS[flag_name]
  path = config_flags.get_config_filename(holder) if holder.present else None
  if not path:
    fail(f'--{flag_name} is required')
  if not os.path.isfile(path.split(':')[0]):
    fail(f'config file {path} not found; presets in {CONFIGS}: {", ".join(presets())}')
  return holder.value
