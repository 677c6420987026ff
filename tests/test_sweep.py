"""Sweeps: the CLI, resumable results, divergence retries, and scale-out (devices, processes, Slurm)."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from conftest import REORDER_TOL
from experiments import results, runner, study
from experiments.configs import base

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = 'experiments/configs/quick.py'
TINY = {'students.widths': '2,4', 'data.ns': '8,32', 'seeds': 2, 'train.steps': 300,
        'train.check_every': 100, 'data.n_test': 512, 'teacher.n_normalize': 4096,
        'decomposition.ensemble_members': 0, 'nyquist.cutoff': 0}


def tiny_config(**changes):
  c = base.get_config()
  c.students.widths, c.data.ns, c.seeds = (2, 4), (8, 32), 2
  c.train.steps, c.train.check_every = 300, 100
  c.data.n_test, c.teacher.n_normalize = 512, 4096
  c.decomposition.ensemble_members, c.nyquist.cutoff = 0, 0
  for field, value in changes.items():
    section, leaf = field.split('__')
    c[section][leaf] = value
  return c


def tiny_flags(dtype='float32', **changes):
  """Flags for the tiny study; `changes` override config fields (dots as '__').

  A tuple flag must not be given twice: config_flags appends the second to the first.
  """
  fields = {**TINY, 'train.dtype': dtype, **{k.replace('__', '.'): v for k, v in changes.items()}}
  return [f'--config.{k}={v}' for k, v in fields.items()]


def cli(module, *args, env=None, **kw):
  if module == 'experiments.sweep':
    args = (*args, '--progress=false')
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True,
                        text=True, env={**os.environ, **(env or {})}, **kw)


def by_cell(records):
  return {results.cell_key(r): r for r in records}


def assert_same_cells(a, b, dtype):
  a, b = by_cell(a), by_cell(b)
  assert a.keys() == b.keys()
  rtol, atol = REORDER_TOL[dtype]
  for k in a:
    assert a[k]['steps'] == b[k]['steps'] and a[k]['status'] == b[k]['status'], k
    np.testing.assert_allclose(a[k]['test_error'], b[k]['test_error'], rtol=rtol, atol=atol, err_msg=str(k))


def test_cli_writes_config_and_one_line_per_cell(tmp_path):
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', *tiny_flags())
  assert out.returncode == 0, out.stderr
  summary = json.loads(out.stdout.strip().splitlines()[-1])
  saved = json.loads((tmp_path / 'config.json').read_text())
  assert saved['config']['students']['widths'] == [2, 4]
  recs = results.load(tmp_path)
  # 2 widths × (2 n + online) × 2 seeds
  assert summary['cells_trained'] == len(recs) == 12
  assert len(by_cell(recs)) == 12
  fields = {'config_hash', 'teacher', 'm', 'n', 'seed', 'P', 'steps', 'train_error', 'test_error',
            'test_se', 'status', 'wall_seconds', 'device'}
  assert all(fields <= r.keys() for r in recs)
  assert {r['n'] for r in recs} == {8, 32, None}
  assert all(r['P'] == 4 * r['m'] + r['m'] + r['m'] + 1 for r in recs)
  again = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', *tiny_flags())
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


@pytest.mark.parametrize('module,args,match', [
    ('experiments.benchmark', ['--out={tmp}'], 'is a directory'),
    ('experiments.benchmark', ['--out={tmp}/nosuch/b.json'], 'is not a folder'),
    ('experiments.benchmark', ['--out={tmp}/b.json', '--nosuch'], 'bad flag'),
    ('experiments.benchmark', ['--out={tmp}/b.json', '--classes='], 'unknown cell classes (none given)'),
    ('experiments.benchmark', ['--out={tmp}/b.json', '--classes=huge'], "unknown cell classes ['huge']"),
    ('analysis.curves_benchmark', ['--out={tmp}'], 'is a directory'),
    ('analysis.curves_benchmark', ['--out={tmp}/c.json', '--estimators='], 'unknown estimators (none given)'),
    ('analysis.report', ['--workdir={tmp}', '--nosuch'], 'bad flag'),
    ('analysis.fit', ['--workdir={tmp}', '--nosuch'], 'bad flag'),
    ('analysis.fit', ['--workdir={tmp}', '--n_boot=-5'], 'bad flag'),
    ('analysis.decompose', ['--workdir={tmp}', '--nosuch'], 'bad flag'),
    ('analysis.ablation', ['--workdir={tmp}', '--nosuch'], 'bad flag'),
])
def test_entry_points_refuse_bad_flags_and_outputs_in_one_line(tmp_path, module, args, match):
  out = cli(module, *[a.format(tmp=tmp_path) for a in args])
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert out.returncode == 2 and len(lines) == 1 and match in lines[0], out.stderr
  assert not any(tmp_path.iterdir())   # nothing written


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
  flags = tiny_flags(students__widths='20,24,28', train__steps=600)   # > 16: a program each
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


def test_torn_last_line_is_ignored_and_redone(tmp_path):
  config = tiny_config()
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
  runner.run(tiny_config(), tmp_path, progress=False)
  with pytest.raises(ValueError, match=r'different config \(train.steps: 300 -> 200\)'):
    runner.run(tiny_config(train__steps=200), tmp_path, progress=False)
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}',
            *tiny_flags(train__steps=200))
  assert out.returncode == 2 and 'different config' in out.stderr
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', '--new_workdir',
            *tiny_flags(train__steps=200, students__widths='2', data__online='false'))
  assert out.returncode == 0, out.stderr
  assert len(results.load(tmp_path.with_name(tmp_path.name + '.1'))) == 4
  # Growing the grid is not a different config: only the new cells are trained.
  summary = runner.run(tiny_config(students__widths=(2, 4, 8)), tmp_path, progress=False)
  assert summary['cells_trained'] == 6 and len(results.load(tmp_path)) == 18


def test_divergence_is_retried_with_a_smaller_learning_rate(tmp_path):
  config = tiny_config(train__optimizer='sgd', train__learning_rate=200.0, train__retry_lr_factor=1e-3,
                       train__max_retries=1, students__widths=(4,), data__online=False)
  runner.run(config, tmp_path, progress=False)
  recs = results.load(tmp_path)
  assert len(recs) == 4 and all(r['retries'] == 1 for r in recs)
  assert all(r['status'] != 'diverged' and abs(r['learning_rate'] - 0.2) < 1e-12 for r in recs)
  config.train.max_retries = 0
  runner.run(config, tmp_path / 'no_retry', progress=False)
  assert all(r['status'] == 'diverged' and r['retries'] == 0 for r in results.load(tmp_path / 'no_retry'))


def test_ahead_runs_the_next_item_while_the_caller_holds_this_one():
  started = {i: threading.Event() for i in range(3)}

  def fn(i):
    started[i].set()
    if i == 2:
      raise ValueError('item 2 failed')
    return i * 10

  got = []
  with pytest.raises(ValueError, match='item 2 failed'):
    for item, result, waited in runner.ahead(fn, [0, 1, 2]):
      # fn of the next item starts before the caller is done with this one.
      assert item + 1 not in started or started[item + 1].wait(timeout=30)
      got.append((item, result))
      assert waited >= 0
  assert got == [(0, 0), (1, 10)]
  assert list(runner.ahead(fn, [])) == []


def test_compile_clock_counts_overlapping_spans_once():
  assert runner._union_seconds([(0.0, 2.0), (1.0, 3.0), (2.5, 2.7), (5.0, 6.0)]) == pytest.approx(4.0)
  assert runner._union_seconds([]) == 0.0
  with runner.compile_clock() as compiling:
    before = compiling()
    jax.jit(lambda x: x * 3.0 + 1.0).lower(np.ones(7, np.float32)).compile()
    after = compiling()
  assert before == 0.0 and after > 0.0


@pytest.mark.parametrize('first', [True, False], ids=['all_first', 'ahead'])
def test_compiling_first_or_ahead_gives_the_sequential_results(tmp_path, monkeypatch, first):
  # Two programs (widths <= 16 share one): compiled both before training (CPU's default), or
  # the second while the first trains.
  if not first:
    monkeypatch.setattr(runner, 'COMPILE_FIRST_PLATFORMS', ())
  config = tiny_config(students__widths=(4, 32), data__online=False)
  summary = runner.run(config, tmp_path / 'overlapped', progress=False)
  assert 0.0 < summary['compile_seconds'] <= summary['wall_seconds']
  assert 0.0 < summary['compile_wait_seconds'] <= summary['wall_seconds']
  if not first:
    assert summary['compile_wait_seconds'] <= summary['compile_seconds']

  def one_by_one(fn, items, threads=1):
    for item in items:
      yield item, fn(item), 0.0

  monkeypatch.setattr(runner, 'ahead', one_by_one)
  monkeypatch.setattr(runner, 'all_first', one_by_one)
  runner.run(config, tmp_path / 'sequential', progress=False)
  overlapped, sequential = (by_cell(results.load(tmp_path / d)) for d in ('overlapped', 'sequential'))
  assert len(overlapped) == 8 and overlapped.keys() == sequential.keys()
  for k in overlapped:   # the same programs on the same data: equal to the last bit
    assert {f: overlapped[k][f] for f in ('test_error', 'train_error', 'steps')} == \
           {f: sequential[k][f] for f in ('test_error', 'train_error', 'steps')}, k


def test_all_first_computes_every_item_before_yielding_in_order():
  computed = []

  def fn(i):
    computed.append(i)
    return i * 10

  for item, result, waited in runner.all_first(fn, [0, 1, 2, 3], threads=2):
    assert sorted(computed) == [0, 1, 2, 3] and result == item * 10
    assert waited > 0 if item == 0 else waited == 0.0
  with pytest.raises(ValueError, match='item 2 failed'):
    list(runner.all_first(_fails_on_2, [0, 1, 2], threads=2))
  assert list(runner.all_first(fn, [], threads=2)) == []


def _fails_on_2(i):
  if i == 2:
    raise ValueError('item 2 failed')
  return i


@pytest.fixture(scope='module')
def one_device_float64(tmp_path_factory):
  """The tiny study in float64, on one device in this process: the reference of scale-out."""
  workdir = tmp_path_factory.mktemp('one')
  runner.run(tiny_config(train__dtype='float64'), workdir, progress=False, devices=jax.local_devices()[:1])
  return results.load(workdir)


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


def test_plan_partitions_cells_across_shards():
  config = tiny_config(decomposition__ensemble_members=2)
  full = study.plan(config)
  keys = lambda p: [p.cell_key(g, m, n, r) for g in p.groups for m, n, r in p.cells(g)]
  all_keys = keys(full)
  parts = [keys(study.plan(config, (i, 3))) for i in range(3)]
  assert len(set(all_keys)) == len(all_keys) == sum(len(p) for p in parts)
  assert set(sum(parts, [])) == set(all_keys)
  assert all(parts)
  # 2 widths × 3 columns × 2 seeds students + 2 seeds × 2 n ensemble cells (2 members each)
  assert len(all_keys) == 12 + 4
  assert {g.members for g in full.groups if g.kind == 'ensemble'} == {2}
  # Widths 2 and 4 share one program (both <= study.MERGE_WIDTHS_UP_TO).
  assert [g.cell_widths for g in full.groups if g.kind == 'student'] == [(2, 4)]
