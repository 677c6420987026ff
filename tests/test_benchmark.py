"""experiments.benchmark: its own equality check and bookkeeping, and the batches its cells get."""

import jax
import numpy as np
import pytest

from helpers import tiny_config
from teacher_student import batch_budget


def test_benchmark_checks_the_engine_against_the_loop():
  """The benchmark's own equality check and bookkeeping, on a miniature cell class."""
  from experiments import benchmark
  out = benchmark.run_class('mini', benchmark.CellClass(width=4, depth=1, ns=(16, 32), seeds=2, steps=20),
                            peak=1e10, rounds=2)
  assert out['results_match_loop'] and out['students'] == 4
  assert out['float64_max_relative_difference'] < 1e-9 and out['float32_share_within_1pct'] > 0.5
  assert out['naive_float64_max_relative_difference'] < 1e-9
  for loop in ('loop', 'fused_loop'):
    assert out[f'speedup_vs_{loop}'] == pytest.approx(out['engine_student_steps_per_s'] / out[f'{loop}_student_steps_per_s'])
    assert out[f'{loop}_compile_seconds'] > 0 and out[f'{loop}_run_seconds'] > 0
    assert out[f'{loop}_run_seconds'] == min(out[f'{loop}_run_seconds_per_round'])
    assert out[f'speedup_vs_{loop}_per_round'] == pytest.approx(
        np.divide(out[f'{loop}_run_seconds_per_round'], out['engine_run_seconds_per_round']))
    assert len(out[f'speedup_vs_{loop}_per_round']) == 2
  flops = 6 * benchmark.weights(benchmark.CellClass(4, 1, (16, 32), 2, 20)) * 2 * 48 * 20
  assert out['engine_flops'] == pytest.approx(flops / out['engine_run_seconds'])
  # The PyTorch reference (when torch is installed) trains the same students from the same arrays:
  # in float64 it must land on the JAX loop's errors.
  if benchmark.benchmark_torch.available():
    assert out['torch_float64_max_relative_difference'] < benchmark.MATCH_RTOL_FLOAT64
  else:
    assert out['torch'] is None and 'speedup_vs_torch' not in out


def test_benchmark_cells_get_their_batches_on_cpu():
  """The large benchmark students (width 256 on 4096 points) train one at a time on CPU; the
  tiny ones (width 16 on 256 points) all in one vmap."""
  from experiments import benchmark
  cpu = jax.devices('cpu')[0]
  for name, expect in (('large', lambda b: b == 1), ('tiny', lambda b: b >= 32)):
    cls = benchmark.CLASSES[name]
    student, train, _ = benchmark._cells(cls, 'float32')
    assert expect(batch_budget.replicate_batch(student, train, [max(cls.ns)], cpu)), name


def test_time_to_floor_counts_interpolating_students_at_the_floor():
  # Width 4 holds the tiny study's teacher (width 4) with P = 25 > n = 8 parameters: both phases
  # interpolate every seed (training error <= 1e-20); first order alone is timed and counted too.
  from experiments import time_to_floor
  out = time_to_floor.measure(tiny_config(train__dtype='float64'), m=4, n=8)
  assert out['cells'] == 2 and out['two_phase_at_floor'] == 2 and out['two_phase_stops'] == {'tolerance': 2}
  assert out['first_order_steps'] == time_to_floor.FIRST_ORDER_CAP * 300
  with pytest.raises(ValueError, match='does not contain the teacher'):
    time_to_floor.measure(tiny_config(train__dtype='float64'), m=2, n=8)


def test_factorization_benchmark_rows():
  """Its bookkeeping on two small sizes: the fraction is (P³/3) / seconds / matmul rate, the
  factor matches LAPACK's, and the column loop is timed up to its cap."""
  from experiments import benchmark_factor
  rows = benchmark_factor.measure(sizes=(64, 1100), rounds=1)
  for r in rows:
    assert r['fraction_of_matmul'] == pytest.approx(r['size'] ** 3 / 3 / r['seconds'] / r['matmul_flops'])
    assert r['max_error_vs_lapack'] < 1e-8
  assert 'speedup_vs_column_loop' in rows[0] and 'speedup_vs_column_loop' not in rows[1]
  assert '| 64 |' in benchmark_factor.table(rows)
