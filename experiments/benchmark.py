r"""Benchmarks the training engine against the naive loop and the machine's matmul throughput.

  python -m experiments.benchmark --out=bench.json

In one run, for three fixed cell classes (tiny, medium, large), times
  - the engine: the class's students (replicates × n) in one compiled program (`train_grid`),
  - the naive loop: the same students one at a time, each with its own jitted training loop
    (`train_sequential`; its compilation is timed apart from its run),
  - the machine's dense matmul (float32, jnp.dot) in the same process,
and reports student-steps/s, achieved FLOP/s (6 · n · weights per student-step, padding not
counted), their ratios, compile time apart from run time and the compiled program's memory.

It checks that the engine's results are the loop's: the timed float32 runs agree up to the
chaotic amplification of rounding differences (reported: the share of students within 1%, and
the largest relative difference — a ReLU unit flipping on a last-bit difference can fork a
trajectory), and the same cells rerun in float64 must agree to 1e-9 (`results_match_loop`).
"""

from experiments import host

host.use_all_cpu_cores()  # before JAX is imported

import dataclasses
import json
import os
import pathlib
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from teacher_student import data, engine, inputs, students, teachers

MATCH_RTOL_FLOAT64 = 1e-9   # tests/conftest.py explains the values


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


def matmul_flops(size=2048, repeats=10) -> float:
  """The machine's dense float32 matmul throughput through XLA, FLOP/s (best of `repeats`)."""
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
  f = jax.jit(jnp.dot)
  f(a, b).block_until_ready()
  best = np.inf
  for _ in range(repeats):
    t = time.perf_counter()
    f(a, b).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * size**3 / best


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
  train = engine.TrainSpec(steps=cls.steps, tol=0.0, check_every=min(cls.steps, 250), learning_rate=1e-3,
                           dtype=dtype)
  return student, train, dict(seeds=list(range(cls.seeds)), ns=list(cls.ns), x_test=x_test, y_test=y_test)


def _relative_difference(a, b):
  return np.abs(a['test_error'] - b['test_error']) / np.abs(b['test_error'])


def float64_match(cls: CellClass) -> float:
  """The largest relative difference of test errors, engine vs loop, on the class's cells in float64."""
  with jax.enable_x64(True):
    student, train, kw = _cells(cls, 'float64')
    grid, loop = engine.train_grid(student, train, **kw), engine.train_sequential(student, train, **kw)
  return float(_relative_difference(grid, loop).max())


def run_class(name, cls: CellClass, peak: float, repeats: int = 3) -> dict:
  """Times a class: the engine's fastest of `repeats` runs of its compiled program, the loop's
  fastest of two passes after a first one that compiles it."""
  student, train, kw = _cells(cls, 'float32')
  grid = engine.train_grid(student, train, repeats=repeats, **kw)
  t0 = time.perf_counter()
  engine.train_sequential(student, train, **kw)          # compiles one program per n, and runs
  first = time.perf_counter() - t0
  loop = min((engine.train_sequential(student, train, **kw) for _ in range(2)), key=lambda r: r['run_seconds'])
  loop_compile = max(first - loop['run_seconds'], 0.0)
  students_n = cls.seeds * len(cls.ns)
  student_steps = students_n * cls.steps
  useful_flops = 6 * weights(cls) * cls.seeds * sum(cls.ns) * cls.steps
  rel32 = _relative_difference(grid, loop)
  rel64 = float64_match(cls)
  same = bool(rel64 <= MATCH_RTOL_FLOAT64 and np.array_equal(grid['steps'], loop['steps']))
  engine_sps, loop_sps = student_steps / grid['run_seconds'], student_steps / loop['run_seconds']
  out = {
      'cells': dataclasses.asdict(cls), 'students': students_n, 'weights_per_student': weights(cls),
      'engine_student_steps_per_s': engine_sps, 'loop_student_steps_per_s': loop_sps,
      'speedup_vs_loop': engine_sps / loop_sps,
      'engine_flops': useful_flops / grid['run_seconds'], 'loop_flops': useful_flops / loop['run_seconds'],
      'fraction_of_matmul_peak': useful_flops / grid['run_seconds'] / peak,
      'loop_fraction_of_matmul_peak': useful_flops / loop['run_seconds'] / peak,
      'engine_compile_seconds': grid['compile_seconds'], 'engine_run_seconds': grid['run_seconds'],
      'loop_compile_seconds': loop_compile, 'loop_run_seconds': loop['run_seconds'],
      'engine_memory_bytes': grid.get('memory_bytes'),
      'float32_share_within_1pct': float(np.mean(rel32 <= 0.01)),
      'float32_max_relative_difference': float(rel32.max()),
      'float64_max_relative_difference': rel64, 'results_match_loop': same,
  }
  print(f'{name:>6}: engine {engine_sps:10.0f} student-steps/s ({out["fraction_of_matmul_peak"]:.1%} of matmul), '
        f'loop {loop_sps:10.0f} ({out["loop_fraction_of_matmul_peak"]:.1%}); speedup {out["speedup_vs_loop"]:.2f}x; '
        f'compile {grid["compile_seconds"]:.1f}s; match {same}', file=sys.stderr)
  return out


def main(argv):
  del argv
  from experiments import cli
  cli.require('out')
  unknown = [c for c in flags.FLAGS.classes if c not in CLASSES]
  if unknown:
    cli.fail(f'unknown cell classes {unknown}; choose from {", ".join(CLASSES)}')
  peak = matmul_flops()
  report = {'machine': {'platform': platform.platform(), 'cpus': os.cpu_count(),
                        'devices': [str(d) for d in jax.devices()], 'jax': jax.__version__},
            'matmul_flops': peak}
  print(f'matmul: {peak / 1e9:.1f} GFLOP/s', file=sys.stderr)
  for name in flags.FLAGS.classes:
    report[name] = run_class(name, CLASSES[name], peak)
  pathlib.Path(flags.FLAGS.out).write_text(json.dumps(report, indent=1) + '\n')


if __name__ == '__main__':
  flags.DEFINE_string('out', None, 'Where to write the JSON report.')
  flags.DEFINE_list('classes', list(CLASSES), 'Cell classes to run.')
  app.run(main)
