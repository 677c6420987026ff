"""experiments.slurm: the submitit path gives the one-process results; bad flags are one line."""

import pytest

from conftest import ONE_DEVICE
from experiments import results
from helpers import QUICK, assert_same_cells, cli, tiny_flags


@ONE_DEVICE
def test_slurm_path_with_submitit_local_executor(tmp_path, one_device_float64):
  arr = tmp_path / 'array'
  out = cli('experiments.slurm', f'--config={QUICK}', f'--workdir={arr}', *tiny_flags('float64'),
            '--executor=local', '--num_shards=2', '--timeout_min=10')
  assert out.returncode == 0, out.stderr[-3000:]
  assert len(list((arr / 'results').glob('shard-*-of-2.jsonl'))) == 2
  assert_same_cells(one_device_float64, results.load(arr), 'float64')


@pytest.mark.parametrize('flag,match', [('--num_shards=0', 'number of shards must be >= 1'),
                                        ('--timeout_min=0', 'bad flag'), ('--cpus_per_task=0', 'bad flag')])
def test_slurm_refuses_bad_flags_in_one_line_and_writes_nothing(tmp_path, flag, match):
  out = cli('experiments.slurm', f'--config={QUICK}', f'--workdir={tmp_path / "w"}', '--executor=local', flag)
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert out.returncode == 2 and len(lines) == 1 and match in lines[0], out.stderr
  assert not (tmp_path / 'w').exists()
