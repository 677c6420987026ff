"""experiments.sweep, the entry point: flags, one-line errors, resuming, and scale-out over devices and processes."""

import importlib
import json
import platform
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ONE_DEVICE
from experiments import host, results
from helpers import FIRST_ORDER, QUICK, ROOT, assert_same_cells, by_cell, cli, tiny_flags


def test_cli_writes_config_and_one_line_per_cell(tmp_path):
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', *tiny_flags(**FIRST_ORDER))
  assert out.returncode == 0, out.stderr
  summary = json.loads(out.stdout.strip().splitlines()[-1])
  saved = json.loads((tmp_path / 'config.json').read_text())
  assert saved['config']['students']['widths'] == [2, 4]
  recs = results.load(tmp_path)
  # 2 widths × (2 n + online) × 2 seeds
  assert summary['cells_trained'] == len(recs) == 12
  assert len(by_cell(recs)) == 12
  fields = {'config_hash', 'teacher', 'm', 'n', 'seed', 'P', 'steps', 'train_error', 'test_error',
            'test_se', 'status', 'wall_seconds', 'device', 'software'}
  assert all(fields <= r.keys() for r in recs)
  # The versions that made the records, as the interpreter and the packages themselves report them.
  assert recs[0]['software'] == {'python': platform.python_version(), 'platform': platform.platform(),
                                 **{p: importlib.import_module(p).__version__ for p in host.PACKAGES}}
  assert {r['n'] for r in recs} == {8, 32, None}
  assert all(r['P'] == 4 * r['m'] + r['m'] + r['m'] + 1 for r in recs)
  again = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', *tiny_flags(**FIRST_ORDER))
  assert json.loads(again.stdout.strip().splitlines()[-1])['cells_trained'] == 0  # resumed: nothing to do


@pytest.mark.parametrize('flags,match', [
    (['--config.students.widths=-4,8'], 'positive integers'),
    (['--config.students.widths=4,8', '--config.students.widths=8'], 'duplicates'),
    (['--config.data.ns=16,5000000'], 'beyond the training pool'),
    (['--config.students.nosuchfield=3'], 'unknown config field'),
    (['--config.teacher.activation=swish'], 'unknown activation'),
    (['--config.train.dtype=float16'], 'invalid dtype'),
    (['--num_shards=0'], 'number of shards must be >= 1'),
    (['--shard_index=2', '--num_shards=2'], 'shard index 2 is not in 0..1'),
])
def test_invalid_flags_exit_nonzero_with_one_line_and_write_nothing(tmp_path, flags, match):
  workdir = tmp_path / 'w'
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={workdir}', *flags)
  assert out.returncode != 0
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and match in lines[0], out.stderr
  assert not workdir.exists()


@pytest.mark.parametrize('workdir', ['afile', 'afile/w'])
def test_workdir_that_cannot_be_a_directory_is_one_line(tmp_path, workdir):
  (tmp_path / 'afile').write_text('not a directory\n')
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path / workdir}', *tiny_flags())
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert out.returncode == 2 and len(lines) == 1 and 'is a file' in lines[0], out.stderr
  assert (tmp_path / 'afile').read_text() == 'not a directory\n'


@pytest.mark.parametrize('config,match', [
    ('{tmp}/noconf.py', 'defines no get_config()'),
    ('{tmp}/raises.py', 'ValueError: cannot build this study'),
    ('experiments/configs/ablation_teacher_width.py:huge', 'ablation size must be quick or full'),
])
def test_config_file_errors_are_one_line(tmp_path, config, match):
  (tmp_path / 'noconf.py').write_text('x = 1\n')
  (tmp_path / 'raises.py').write_text('def get_config():\n  raise ValueError("cannot build this study")\n')
  out = cli('experiments.sweep', f'--config={config.format(tmp=tmp_path)}', f'--workdir={tmp_path / "w"}')
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert out.returncode == 2 and len(lines) == 1 and match in lines[0], out.stderr
  assert not (tmp_path / 'w').exists()


def test_unknown_preset(tmp_path):
  out = cli('experiments.sweep', '--config=experiments/configs/nosuch.py', f'--workdir={tmp_path / "w"}')
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert out.returncode != 0 and len(lines) == 1 and 'not found' in lines[0] and 'quick' in lines[0]
  assert not (tmp_path / 'w').exists()


def test_sigkill_then_rerun_trains_each_cell_exactly_once(tmp_path):
  flags = tiny_flags(students__widths='20,24,28', train__steps=600, **FIRST_ORDER)   # > 16: a program each
  proc = subprocess.Popen([sys.executable, '-m', 'experiments.sweep', f'--config={QUICK}',
                           f'--workdir={tmp_path}', '--progress=false', *flags], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  shard_file = tmp_path / 'results' / 'shard-0-of-1.jsonl'
  deadline = time.time() + 120
  while time.time() < deadline and not (shard_file.exists() and shard_file.stat().st_size > 0):
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  first = shard_file.read_bytes()
  finished = results.read_jsonl(shard_file)
  assert 0 < len(finished) < 18, 'the kill should land mid-sweep'
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', *flags)
  assert out.returncode == 0, out.stderr
  summary = json.loads(out.stdout.strip().splitlines()[-1])
  assert summary['cells_done_before'] == len(finished)
  assert summary['cells_trained'] == 18 - len(finished)
  final = shard_file.read_bytes()
  assert final.startswith(first[:first.rfind(b'\n') + 1])  # finished cells kept, not retrained
  recs = results.read_jsonl(shard_file)
  assert len(recs) == len(by_cell(recs)) == 18


@ONE_DEVICE
def test_four_devices_give_the_one_device_results(tmp_path, one_device_float64):
  four = tmp_path / 'four'
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={four}', *tiny_flags('float64'),
            env={'XLA_FLAGS': '--xla_force_host_platform_device_count=4'})
  assert out.returncode == 0, out.stderr
  recs = results.load(four)
  assert {r['device'] for r in recs} == {'cpu:cpu x4'}
  assert_same_cells(one_device_float64, recs, 'float64')


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@ONE_DEVICE
def test_two_processes_give_the_one_process_results(tmp_path, one_device_float64):
  two = tmp_path / 'two'
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, '-m', 'experiments.sweep', f'--config={QUICK}',
                             f'--workdir={two}', *tiny_flags('float64'),
                             f'--coordinator_address=localhost:{port}', '--num_processes=2',
                             f'--process_id={i}', '--progress=false'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
  files = sorted(p.name for p in (two / 'results').iterdir())
  assert files == ['shard-0-of-2.jsonl', 'shard-1-of-2.jsonl']
  counts = [len(results.read_jsonl(two / 'results' / f)) for f in files]
  assert all(c > 0 for c in counts) and sum(counts) == 12
  assert_same_cells(one_device_float64, results.load(two), 'float64')
