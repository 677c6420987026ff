"""experiments.results: a torn line is redone, a different config refused, a grown grid trains only new cells."""

import pytest

from experiments import results, runner
from helpers import FIRST_ORDER, QUICK, by_cell, cli, tiny_config, tiny_flags


def test_torn_last_line_is_ignored_and_redone(tmp_path):
  config = tiny_config(**FIRST_ORDER)
  runner.run(config, tmp_path, progress=False)
  path = tmp_path / 'results' / 'shard-0-of-1.jsonl'
  lines = path.read_bytes().splitlines(keepends=True)
  torn = lines[-1][: len(lines[-1]) // 2]
  path.write_bytes(b''.join(lines[:-1]) + torn)
  assert len(results.load(tmp_path)) == 11
  summary = runner.run(config, tmp_path, progress=False)
  assert summary['cells_trained'] == 1
  recs = results.read_jsonl(path)
  assert len(recs) == len(by_cell(recs)) == 12
  assert torn not in path.read_bytes().splitlines(keepends=True)


def test_different_config_is_refused_and_new_workdir_forks(tmp_path):
  runner.run(tiny_config(**FIRST_ORDER), tmp_path, progress=False)
  with pytest.raises(ValueError, match=r'different config \(train.steps: 300 -> 200\)'):
    runner.run(tiny_config(train__steps=200, **FIRST_ORDER), tmp_path, progress=False)
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}',
            *tiny_flags(train__steps=200, **FIRST_ORDER))
  assert out.returncode == 2 and 'different config' in out.stderr
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', '--new_workdir',
            *tiny_flags(train__steps=200, students__widths='2', data__online='false', **FIRST_ORDER))
  assert out.returncode == 0, out.stderr
  assert len(results.load(tmp_path.with_name(tmp_path.name + '.1'))) == 4
  # Growing the grid is not a different config: only the new cells are trained.
  summary = runner.run(tiny_config(students__widths=(2, 4, 8), **FIRST_ORDER), tmp_path, progress=False)
  assert summary['cells_trained'] == 6 and len(results.load(tmp_path)) == 18
