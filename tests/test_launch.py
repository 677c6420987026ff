"""What a launch does before it trains: its cost (--dry_run), one sweep per workdir shard (the
lock), and quiet output."""

import os
import signal
import subprocess
import sys

import pytest

from experiments import launch_cost, results
from helpers import FIRST_ORDER, QUICK, ROOT, cli, tiny_config, tiny_flags
from teacher_student import second_order


def test_the_cost_is_the_hand_count_of_the_tiny_study(x64):
  """Tiny study: one program (widths 2, 4 padded to P(4) = 4·4 + 4 + 4 + 1 = 25), 2 seeds, n = 8,
  32 and the online column (256 points a step), 300 Adam steps and <= 1000 LM steps each."""
  config = tiny_config(train__dtype='float64')
  (program,), done = launch_cost.launch_cost(config, '/nonexistent/workdir')
  p, rows = 25, 2 * 2
  first = 6 * p * (8 + 32 + 256) * 300
  second = sum(6 * n * p + 2 * n * p * p + p**3 / 3 for n in (8, 32, second_order.ONLINE_POINTS)) * 1000
  assert done == 0 and (program.params, program.rows, program.cells) == (p, rows, 12)
  assert program.flops == pytest.approx(rows * (first + second), rel=1e-12)
  assert program.solves == ((p, 3 * 1000 * rows),)   # one P × P solve per LM step, 3 phases a row


def test_smooth_students_add_the_optimality_gaps_hessians_to_the_hand_count(x64):
  """The tiny study with a tanh teacher (tanh students): each LM step also pays 1/GAP_EVERY of a
  Hessian, P Hessian–vector products of 24 · N · P FLOPs."""
  relu, = launch_cost.launch_cost(tiny_config(train__dtype='float64'), '/nonexistent/workdir')[0]
  tanh, = launch_cost.launch_cost(tiny_config(train__dtype='float64', teacher__activation='tanh'), '/nonexistent/workdir')[0]
  p, rows = 25, 2 * 2
  gap = sum(24 * n * p * p / second_order.GAP_EVERY for n in (8, 32, second_order.ONLINE_POINTS)) * 1000
  assert tanh.flops - relu.flops == pytest.approx(rows * gap, rel=1e-12)


def test_the_cost_beyond_the_lm_size_is_the_hand_count(x64):
  """The tiny study with LM capped at 24 parameters (P = 25). n = 8: the dual form (8 · 25 <= 24²),
  6·N·P + 2·N²·P + N³/3 per step, 1000 steps; n = 32 and online (256 points a step, 2048 in the
  second phase): L-BFGS, 2 gradients of 6·N·P and a two-loop recursion over 50 pairs (4·50·P) per
  iteration, 700 iterations."""
  config = tiny_config(train__dtype='float64', train__second_order_max_params=24, train__lbfgs_steps=700)
  (program,), _ = launch_cost.launch_cost(config, '/nonexistent/workdir')
  p, rows = 25, 2 * 2
  first = 6 * p * (8 + 32 + 256) * 300
  dual = (6 * 8 * p + 2 * 8 * 8 * p + 8**3 / 3) * 1000
  lbfgs = sum(12 * n * p + 200 * p for n in (32, second_order.ONLINE_POINTS)) * 700
  assert program.flops == pytest.approx(rows * (first + dual + lbfgs), rel=1e-12)
  assert program.solves == ((8, 1000 * rows),)   # the dual form solves N × N; L-BFGS solves nothing


def test_the_time_charges_solves_their_own_seconds_and_the_rest_at_the_matmul_rate(x64):
  """The tiny study: 12000 solves of 25 × 25 (25³/3 FLOPs each, in `flops`) at 1 ms each, the other
  FLOPs at 1 GFLOP/s, on 2 devices."""
  (program,), _ = launch_cost.launch_cost(tiny_config(train__dtype='float64'), '/nonexistent/workdir')
  seconds = launch_cost.estimated_seconds([program, program], 1e9, lambda size: 1e-3 * (size == 25), devices=2)
  assert seconds == pytest.approx(2 * ((program.flops - 12000 * 25**3 / 3) / 1e9 + 12000 * 1e-3) / 2, rel=1e-12)


def test_an_accelerator_is_priced_by_the_roofline_of_each_program():
  """A compute-bound program (1e15 FLOPs, 1e9 bytes) and a memory-bound one (1e9 FLOPs, 1e13
  bytes) on 2 devices of 1e14 FLOP/s and 1e12 B/s: (10 s + 10 s) / 2."""
  cost = lambda flops, traffic: launch_cost.ProgramCost('student', {}, (1,), 1, (8,), 1, 1, flops, 0.0, (), traffic)
  acc = launch_cost.Accelerator('X', 1e14, 1e12, 2**30, count=2)
  assert launch_cost.accelerator_seconds([cost(1e15, 1e9), cost(1e9, 1e13)], acc) == pytest.approx(10.0, rel=1e-12)


def test_solves_are_timed_once_per_power_of_two_and_scaled_by_the_cube(monkeypatch):
  timed = []
  monkeypatch.setattr(launch_cost, 'solve_seconds', lambda size, dtype: timed.append(size) or 1e-9 * size**3)
  solve_time = launch_cost.solve_timer()
  assert solve_time(1000) == pytest.approx(1e-9 * 1000**3) and solve_time(600) == pytest.approx(1e-9 * 600**3)
  assert solve_time(5000) == pytest.approx(1e-9 * 5000**3)   # timed at the cap, 2048, and scaled
  assert timed == [1024, launch_cost.SOLVE_TIMED_UP_TO]


def test_dry_run_prints_the_plan_writes_nothing_and_sees_finished_cells(tmp_path):
  workdir = tmp_path / 'w'
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={workdir}', '--dry_run', '--accelerator=H100',
            *tiny_flags(**FIRST_ORDER))
  assert out.returncode == 0, out.stderr
  assert 'cells to train: 12 in 1 programs (0 already done)' in out.stdout, out.stdout
  assert 'on 1 x H100 at 67 TFLOP/s and 3350 GB/s' in out.stdout and 'fits in its 80 GiB' in out.stdout
  assert 'GFLOP/s' in out.stdout and 'MiB' in out.stdout and 'estimated time' in out.stdout
  assert 'Cholesky solves (timed here' not in out.stdout   # FIRST_ORDER: no second phase, nothing to solve
  assert not workdir.exists()
  assert cli('experiments.sweep', f'--config={QUICK}', f'--workdir={workdir}', *tiny_flags(**FIRST_ORDER)).returncode == 0
  again = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={workdir}', '--dry_run', *tiny_flags(**FIRST_ORDER))
  assert 'cells to train: 0 in 0 programs (12 already done)' in again.stdout, again.stdout


def test_a_second_launch_on_a_busy_shard_exits_2_in_one_line_and_writes_nothing(tmp_path):
  with results.shard_lock(tmp_path, (0, 1)):
    before = sorted((p.relative_to(tmp_path), p.stat().st_size) for p in tmp_path.rglob('*'))
    out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', *tiny_flags())
    after = sorted((p.relative_to(tmp_path), p.stat().st_size) for p in tmp_path.rglob('*'))
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert out.returncode == 2 and len(lines) == 1, out.stderr
  assert f'pid {os.getpid()}' in lines[0] and 'is being swept' in lines[0]
  assert before == after


def test_a_killed_holder_leaves_the_shard_free(tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', (
      'import sys, time; from experiments import results\n'
      f'with results.shard_lock({str(tmp_path)!r}, (0, 1)):\n'
      '  print("held", flush=True); time.sleep(60)')], cwd=ROOT, stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == 'held'
  with pytest.raises(results.WorkdirBusy, match=f'pid {holder.pid}'):
    with results.shard_lock(tmp_path, (0, 1)):
      pass
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  with results.shard_lock(tmp_path, (0, 1)):   # free again, without anyone cleaning up
    pass
  with results.shard_lock(tmp_path, (1, 2)):   # another shard is never blocked by this one
    pass


def test_entry_points_print_no_platform_probing_lines(tmp_path):
  out = cli('experiments.sweep', f'--config={QUICK}', f'--workdir={tmp_path}', '--dry_run', *tiny_flags())
  assert out.returncode == 0 and 'Unable to initialize backend' not in out.stderr + out.stdout, out.stderr
  assert 'Cholesky solves (timed here' in out.stdout   # the second phase is on: its solves are timed
