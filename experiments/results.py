"""A sweep's workdir: its config and its append-only results (docs/design.md §4).

  DIR/config.json                  the config, its hash, and the grid fields that may grow
  DIR/results/shard-I-of-K.jsonl   one JSON object per finished cell, written by shard I
  DIR/sweeps/shard-I-of-K.jsonl    one JSON object per sweep run of shard I: its summary (cells
                                   trained, wall and compilation seconds)
  DIR/sweeps/shard-I-of-K.lock     held (flock) by the sweep running shard I; says its pid and host

Every line is flushed and fsynced as soon as its cell is done. A torn last line (a process
killed mid-write) is ignored by readers and cut off before the next append, so its cell is
redone. A workdir whose config differs (outside the grid-sizing fields) is refused.
"""

import contextlib
import fcntl
import glob
import json
import os
import pathlib
import socket

from experiments import study

CELL_KEY = ('kind', 'variant', 'm', 'n', 'seed', 'member')


def cell_key(record: dict) -> tuple:
  return (record['kind'], json.dumps(record['variant'], sort_keys=True), record['m'], record['n'],
          record['seed'], record['member'])


def read_jsonl(path) -> list[dict]:
  """Complete JSON lines of a file; a torn last line (no newline, or unparsable) is skipped."""
  out = []
  with open(path, 'rb') as f:
    for line in f:
      if not line.endswith(b'\n'):
        break
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return out


def load(workdir, config_hash: str | None = None) -> list[dict]:
  """All cells of a workdir, merged over shards; one record per cell (the first written).

  config_hash: keep only records of this config (default: the workdir's config.json).
  """
  workdir = pathlib.Path(workdir)
  if config_hash is None:
    config_hash = read_config(workdir)['hash']
  seen, out = set(), []
  for path in sorted(glob.glob(str(workdir / 'results' / '*.jsonl'))):
    for rec in read_jsonl(path):
      key = cell_key(rec)
      if rec.get('config_hash') == config_hash and key not in seen:
        seen.add(key)
        out.append(rec)
  return out


def append_summary(workdir, config, shard, summary: dict) -> None:
  """Appends a sweep run's summary to this shard's sweep log (fsynced)."""
  path = pathlib.Path(workdir) / 'sweeps' / f'shard-{shard[0]}-of-{shard[1]}.jsonl'
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'a') as f:
    f.write(json.dumps({'config_hash': study.config_hash(config), **summary}, sort_keys=True) + '\n')
    f.flush()
    os.fsync(f.fileno())


def load_summaries(workdir, config_hash: str) -> list[dict]:
  """The sweep runs of a workdir's config, over all shards (torn lines skipped)."""
  paths = sorted(glob.glob(str(pathlib.Path(workdir) / 'sweeps' / '*.jsonl')))
  return [r for p in paths for r in read_jsonl(p) if r.get('config_hash') == config_hash]


def read_config(workdir) -> dict:
  path = pathlib.Path(workdir) / 'config.json'
  if not path.exists():
    raise FileNotFoundError(f'{workdir} holds no sweep (no config.json)')
  return json.loads(path.read_text())


def _atomic_write(path: pathlib.Path, text: str) -> None:
  tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
  with open(tmp, 'w') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _differences(old: dict, new: dict, prefix='') -> list[str]:
  out = []
  for k in sorted(set(old) | set(new)):
    a, b = old.get(k), new.get(k)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _differences(a, b, f'{prefix}{k}.')
    elif a != b:
      out.append(f'{prefix}{k}: {a!r} -> {b!r}')
  return out


def free_workdir(workdir) -> pathlib.Path:
  """The first of DIR.1, DIR.2, ... that does not exist yet."""
  workdir = pathlib.Path(workdir)
  i = 1
  while workdir.with_name(f'{workdir.name}.{i}').exists():
    i += 1
  return workdir.with_name(f'{workdir.name}.{i}')


def check_workdir(workdir, config) -> None:
  """Raises NotADirectoryError (one line) if `workdir` cannot be a directory (it, or a parent,
  is a file), or ValueError (one line) if it holds results of a different config."""
  workdir = pathlib.Path(workdir)
  existing = next(p for p in (workdir, *workdir.absolute().parents) if p.exists())
  if not existing.is_dir():
    raise NotADirectoryError(f'workdir {workdir} cannot be a directory: {existing} is a file')
  path = workdir / 'config.json'
  if not path.exists():
    return
  old = json.loads(path.read_text())
  if old.get('hash') != study.config_hash(config):
    diff = _differences(old.get('science', {}), study.science(config))
    raise ValueError(f'{workdir} holds results of a different config ({"; ".join(diff[:3]) or "hash differs"}); '
                     'rerun with the same config, or pass --new_workdir to start a fresh one')


class WorkdirBusy(RuntimeError):
  """Another process is sweeping this shard of the workdir."""


@contextlib.contextmanager
def shard_lock(workdir, shard):
  """Holds this shard's lock for the `with` block, or raises WorkdirBusy (one line, naming the
  holder) without writing anything. An flock: the OS releases it when its process dies, so a
  killed sweep never leaves the shard locked."""
  path = pathlib.Path(workdir) / 'sweeps' / f'shard-{shard[0]}-of-{shard[1]}.lock'
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'a+') as f:
    try:
      fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or 'another process'
      raise WorkdirBusy(f'{workdir} shard {shard[0]}/{shard[1]} is being swept by {holder}; '
                        'wait for it or pick another --workdir') from None
    f.truncate(0)
    f.write(f'pid {os.getpid()} on {socket.gethostname()}\n')
    f.flush()
    try:
      yield
    finally:
      fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class Writer:
  """Appends one fsynced JSON line per cell to this shard's file."""

  def __init__(self, workdir, config, shard=(0, 1)):
    workdir = pathlib.Path(workdir)
    check_workdir(workdir, config)
    (workdir / 'results').mkdir(parents=True, exist_ok=True)
    if shard[0] == 0:
      _atomic_write(workdir / 'config.json', json.dumps(
          {'hash': study.config_hash(config), 'grid_fields': list(study.GRID_FIELDS),
           'config': json.loads(config.to_json()), 'science': study.science(config)},
          indent=2, sort_keys=True) + '\n')
    self.path = workdir / 'results' / f'shard-{shard[0]}-of-{shard[1]}.jsonl'
    self._cut_torn_tail()
    self._file = open(self.path, 'a')

  def _cut_torn_tail(self):
    if not self.path.exists():
      return
    with open(self.path, 'rb+') as f:
      data = f.read()
      keep = data.rfind(b'\n') + 1
      if keep != len(data):
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())

  def write(self, records) -> None:
    for rec in records:
      self._file.write(json.dumps(rec, sort_keys=True) + '\n')
      self._file.flush()
      os.fsync(self._file.fileno())

  def close(self):
    self._file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
