r"""Benchmarks the training engine against one-at-a-time loops, PyTorch and the machine's matmul.

  python -m experiments.benchmark --out=bench.json     # runs, writes the JSON, prints the table
  python -m experiments.benchmark --table_from=bench.json   # the table of docs/performance.md again

In one run, for three fixed cell classes (tiny, medium, large), times in float32
  - the engine: the class's students (replicates × n) in one compiled program (`train_grid`),
  - the naive loop (`speedup_vs_loop`): the same students one at a time, a jitted Adam step
    called from Python once per step — how a first JAX script trains a student,
  - the fused loop (`speedup_vs_fused_loop`): the same students one at a time, each training
    compiled whole into one program (`sequential.train_sequential`) — a strong baseline with no
    per-step host round trip, which the engine can only beat by batching,
  - if PyTorch is importable, the same students in PyTorch (`benchmark_torch`: stacked, bmm),
  - the machine's dense matmul (float32, jnp.dot) in the same process,
  - the second phase's factorization against the float64 matmul (`benchmark_factor`),
and reports student-steps/s, achieved FLOP/s (6 · n · weights per student-step, padding not
counted), their ratios, compile time apart from run time (every loop's programs are compiled
ahead of time and not counted in its run time; nor are the loops' initial parameters and pools,
drawn before, as the engine's pools) and the compiled program's memory. Each method is
timed in three interleaved rounds and keeps its fastest: this machine's speed drifts by 10-20%
between seconds, which would otherwise decide ratios near 1. Every round's run time and ratio is
reported too (`*_per_round`): their spread shows how far a ratio near 1 is from noise.

It checks that they compute the same thing: the timed float32 runs of the engine and the fused
loop agree up to the chaotic amplification of rounding differences (reported: the share of
students within 1%, and the largest relative difference — a ReLU unit flipping on a last-bit
difference can fork a trajectory), and the same cells rerun in float64 must agree to 1e-9, the
engine and the naive loop with the fused loop (`results_match_loop`; PyTorch's is reported)."""

from experiments import host

host.use_all_cpu_cores()  # before JAX is imported

import dataclasses
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from experiments import benchmark_factor, benchmark_torch, cli, launch_cost, time_to_floor
from experiments.configs import quick
from teacher_student import data, engine, evaluation, inputs, sequential, students, teachers, train_spec

MATCH_RTOL_FLOAT64 = 1e-9   # tests/conftest.py explains the values
TIME_TO_FLOOR_CELL = (8, 256)   # (m, n) of the quick study: realizable, past n*, both ways reach the floor


@dataclasses.dataclass(frozen=True)
class CellClass:
  width: int
  depth: int
  ns: tuple
  seeds: int
  steps: int


CLASSES = {
    'tiny': CellClass(width=16, depth=2, ns=(32, 64, 128, 256), seeds=8, steps=1000),
    'medium': CellClass(width=64, depth=2, ns=(1024,), seeds=8, steps=200),
    'large': CellClass(width=256, depth=2, ns=(4096,), seeds=4, steps=30),
}
INPUT_DIM = 8


def weights(cls: CellClass) -> int:
  sizes = [INPUT_DIM] + [cls.width] * cls.depth + [1]
  return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _cells(cls: CellClass, dtype: str):
  """The class's student, training spec and grid arguments, in `dtype`."""
  ins = inputs.InputSpec('gaussian', INPUT_DIM)
  teacher = teachers.make_teacher(teachers.TeacherSpec('mlp', depth=1, width=8, activation='relu', gain=1.4,
                                                       bias_scale=0.3, n_normalize=4096), ins, jnp.dtype(dtype))
  student = students.make_student(students.StudentSpec(width=cls.width, depth=cls.depth), teacher)
  x_test, y_test = data.test_set(teacher, 1024, seed=1, dtype=jnp.dtype(dtype))
  train = train_spec.TrainSpec(steps=cls.steps, tol=0.0, check_every=min(cls.steps, 250), learning_rate=1e-3,
                           dtype=dtype)
  return student, train, dict(seeds=list(range(cls.seeds)), ns=list(cls.ns), x_test=x_test, y_test=y_test)


def _relative_difference(a, b):
  return np.abs(a['test_error'] - b['test_error']) / np.abs(b['test_error'])


def naive_loop(student, train, *, seeds, ns, x_test, y_test) -> dict:
  """The loop a first JAX script writes: one student at a time, a jitted full-batch Adam step
  called from Python once per step, then the engine's evaluation. The step is compiled ahead of
  time per n (compile_seconds) and not counted in run_seconds.

  Returns {'test_error': (S, N), 'compile_seconds', 'run_seconds'}.
  """
  opt = train_spec.optimizer(train)
  dtype = train.jnp_dtype
  x_test, y_test = jnp.asarray(x_test, dtype), jnp.asarray(y_test, dtype)
  y_var = evaluation.output_variance(y_test)

  def step(params, opt_state, x_nd, y_nk):
    loss_fn = lambda p: jnp.mean((student.apply(p, x_nd) - y_nk) ** 2) / y_var   # as loop.train_one
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  evaluate = jax.jit(lambda p: evaluation.normalized_error(
      *evaluation.squared_error_sums(student, p, x_test, y_test, jnp.ones(x_test.shape[0], dtype)),
      x_test.shape[0], y_var)[0])
  compiled, compile_s = {}, 0.0
  test_error = np.zeros((len(seeds), len(ns)))
  # Initial parameters and pools first, untimed (as train_sequential): the run time is training
  # and evaluation.
  replicates = jax.block_until_ready([(student.init(data.member_keys(seed, 0)[0], dtype),
                                       data.train_pool(student.teacher, seed, max(ns), train.noise_std, dtype))
                                      for seed in seeds])
  t0 = time.perf_counter()
  for i, (params0, (x_pool, y_pool)) in enumerate(replicates):
    for j, n in enumerate(ns):
      params, opt_state, x_nd, y_nk = params0, opt.init(params0), x_pool[:n], y_pool[:n]
      if n not in compiled:
        tc = time.perf_counter()
        compiled[n] = (jax.jit(step).lower(params, opt_state, x_nd, y_nk).compile(),
                       evaluate.lower(params).compile())
        compile_s += time.perf_counter() - tc
      step_n, evaluate_n = compiled[n]
      for _ in range(train.steps):
        params, opt_state = step_n(params, opt_state, x_nd, y_nk)
      test_error[i, j] = float(evaluate_n(params))
  return {'test_error': test_error, 'compile_seconds': compile_s,
          'run_seconds': time.perf_counter() - t0 - compile_s}


def float64_match(cls: CellClass) -> dict:
  """The largest relative differences of test errors from the fused loop's, in float64, on the
  class's cells: the engine's, the naive loop's and (if installed) PyTorch's; and whether the
  engine ran the same steps."""
  with jax.enable_x64(True):
    student, train, kw = _cells(cls, 'float64')
    fused = sequential.train_sequential(student, train, **kw)
    grid = engine.train_grid(student, train, **kw)
    out = {'float64_max_relative_difference': float(_relative_difference(grid, fused).max()),
           'naive_float64_max_relative_difference': float(_relative_difference(naive_loop(student, train, **kw),
                                                                               fused).max()),
           'same_steps': bool(np.array_equal(grid['steps'], fused['steps']))}
    if benchmark_torch.available():
      out['torch_float64_max_relative_difference'] = float(
          _relative_difference(benchmark_torch.train(student, train, **kw), fused).max())
  return out


def run_class(name, cls: CellClass, peak: float, rounds: int = 3) -> dict:
  """Times a class in float32: the engine, the naive loop, the fused loop and PyTorch, each
  timed once per round (compilation apart) in `rounds` interleaved rounds, so that a slow spell
  of the machine hits them alike; each keeps its fastest pass (and its first pass's compile
  time). Then checks in float64 that all of them compute the same errors."""
  student, train, kw = _cells(cls, 'float32')
  students_n = cls.seeds * len(cls.ns)
  student_steps = students_n * cls.steps
  useful_flops = 6 * weights(cls) * cls.seeds * sum(cls.ns) * cls.steps
  methods = {'engine': engine.train_grid, 'loop': naive_loop, 'fused_loop': sequential.train_sequential}
  if benchmark_torch.available():
    methods['torch'] = benchmark_torch.train
  runs, per_round = {}, {key: [] for key in methods}
  for _ in range(rounds):
    for key, method in methods.items():
      r = method(student, train, **kw)
      per_round[key].append(r['run_seconds'])
      if key not in runs:
        runs[key] = r
      elif r['run_seconds'] < runs[key]['run_seconds']:
        runs[key] = {**r, 'compile_seconds': runs[key].get('compile_seconds', 0.0)}
  out = {'cells': dataclasses.asdict(cls), 'students': students_n, 'weights_per_student': weights(cls),
         'torch': benchmark_torch.version()}
  for key, r in runs.items():
    out[f'{key}_student_steps_per_s'] = student_steps / r['run_seconds']
    out[f'{key}_flops'] = useful_flops / r['run_seconds']
    out[f'{key}_fraction_of_matmul_peak'] = useful_flops / r['run_seconds'] / peak
    out[f'{key}_run_seconds'] = r['run_seconds']
    out[f'{key}_compile_seconds'] = r.get('compile_seconds', 0.0)
    out[f'{key}_run_seconds_per_round'] = per_round[key]
    if key != 'engine':
      out[f'speedup_vs_{key}'] = r['run_seconds'] / runs['engine']['run_seconds']
      # Each round's ratio (passes run back to back): its spread is the machine's noise.
      out[f'speedup_vs_{key}_per_round'] = [t / e for t, e in zip(per_round[key], per_round['engine'])]
  out['fraction_of_matmul_peak'] = out.pop('engine_fraction_of_matmul_peak')
  out['engine_memory_bytes'] = runs['engine'].get('memory_bytes')
  rel32 = _relative_difference(runs['engine'], runs['fused_loop'])
  out['float32_share_within_1pct'] = float(np.mean(rel32 <= 0.01))
  out['float32_max_relative_difference'] = float(rel32.max())
  match = float64_match(cls)
  same_steps = match.pop('same_steps')
  out.update(match)
  out['results_match_loop'] = bool(same_steps and match['float64_max_relative_difference'] <= MATCH_RTOL_FLOAT64
                                   and match['naive_float64_max_relative_difference'] <= MATCH_RTOL_FLOAT64)
  print(f'{name:>6}: engine {out["engine_student_steps_per_s"]:9.0f} student-steps/s '
        f'({out["fraction_of_matmul_peak"]:.1%} of matmul); speedup vs naive loop '
        f'{out["speedup_vs_loop"]:.2f}x (rounds {min(out["speedup_vs_loop_per_round"]):.2f}-'
        f'{max(out["speedup_vs_loop_per_round"]):.2f}x), vs fused loop {out["speedup_vs_fused_loop"]:.2f}x'
        + (f', vs PyTorch {out["speedup_vs_torch"]:.2f}x' if 'torch' in runs else ' (PyTorch not installed)')
        + f'; engine compile {out["engine_compile_seconds"]:.1f}s; results match {out["results_match_loop"]}',
        file=sys.stderr)
  return out


def table(report: dict) -> str:
  """The markdown table of a benchmark report (what docs/performance.md shows): one row per class."""
  rows = ['| class | students | engine student-steps/s | of matmul peak | vs naive loop (rounds) | vs fused loop '
          '| vs PyTorch | engine compile (s) | float64 match |', '|' + '---|' * 9]
  for name in CLASSES:
    if name not in report:
      continue
    r = report[name]
    spread = lambda key: f'{r[key]:.2f}x ({min(r[key + "_per_round"]):.2f}–{max(r[key + "_per_round"]):.2f})'
    torch = spread('speedup_vs_torch') if 'speedup_vs_torch' in r else 'not installed'
    rows.append(f'| {name} | {r["students"]} | {r["engine_student_steps_per_s"]:.0f} | {r["fraction_of_matmul_peak"]:.1%} '
                f'| {spread("speedup_vs_loop")} | {spread("speedup_vs_fused_loop")} | {torch} '
                f'| {r["engine_compile_seconds"]:.1f} | {r["results_match_loop"]} |')
  m = report['machine']
  out = '\n'.join(rows) + (f'\n\nMachine: {m["platform"]}, {m["cpus"]} CPUs, {len(m["devices"])} JAX devices, '
                           f'jax {m["jax"]}, torch {m["torch"] or "absent"}; dense float32 matmul '
                           f'{report["matmul_flops"] / 1e9:.1f} GFLOP/s.\n')
  if 'factorization' in report:
    out += '\nThe second phase\'s factorization (float64, one device):\n\n' + benchmark_factor.table(report['factorization'])
  return out


def main(argv):
  del argv
  if flags.FLAGS.table_from:
    print(table(cli.or_fail(lambda: json.loads(open(flags.FLAGS.table_from).read()))), end='')
    return
  out = cli.output_file_or_fail('out')
  classes = cli.choices_or_fail('classes', CLASSES, 'cell classes')
  peak = launch_cost.matmul_flops()
  report = {'machine': {'platform': platform.platform(), 'cpus': os.cpu_count(),
                        'devices': [str(d) for d in jax.devices()], 'jax': jax.__version__,
                        'torch': benchmark_torch.version()},
            'matmul_flops': peak}
  print(f'matmul: {peak / 1e9:.1f} GFLOP/s', file=sys.stderr)
  for name in classes:
    report[name] = run_class(name, CLASSES[name], peak)
  if flags.FLAGS.time_to_floor:
    m, n = TIME_TO_FLOOR_CELL
    t = report['time_to_converged'] = time_to_floor.measure(quick.get_config(), m, n)
    print(f'time to converged (quick study, m={m}, n={n}, {t["cells"]} seeds): two phases {t["two_phase_seconds"]:.1f} s '
          f'({t["two_phase_at_floor"]} at the floor), first order alone {t["first_order_seconds"]:.1f} s '
          f'({t["first_order_at_floor"]} at the floor after {t["first_order_steps"]} steps): ratio '
          f'{"≥ " if t["ratio_is_lower_bound"] else ""}{t["ratio"]:.1f}x', file=sys.stderr)
  if flags.FLAGS.factorization:
    report['factorization'] = benchmark_factor.measure()
  out.write_text(json.dumps(report, indent=1) + '\n')
  print(table(report), end='')


if __name__ == '__main__':
  flags.DEFINE_string('out', None, 'Where to write the JSON report.')
  flags.DEFINE_list('classes', list(CLASSES), 'Cell classes to run.')
  flags.DEFINE_string('table_from', None, 'Print the markdown table of this JSON report and exit (no run).')
  flags.DEFINE_bool('factorization', True, 'Also time the second phase\'s blocked Cholesky factorization against '
                    'the float64 matmul rate and the column loop (experiments.benchmark_factor).')
  flags.DEFINE_bool('time_to_floor', True, 'Also time the quick study\'s realizable students to the training-error '
                    'floor, two phases vs first order alone (experiments.time_to_floor).')
  app.run(main, flags_parser=cli.parse_flags)
