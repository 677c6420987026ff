"""experiments.runner: divergence retries, the compile schedulers and the compile clock."""

import threading

import jax
import numpy as np
import pytest

from experiments import results, runner
from helpers import FIRST_ORDER, by_cell, tiny_config


def test_divergence_is_retried_with_a_smaller_learning_rate(tmp_path):
  config = tiny_config(train__optimizer='sgd', train__learning_rate=200.0, train__retry_lr_factor=1e-3,
                       train__max_retries=1, students__widths=(4,), data__online=False, **FIRST_ORDER)
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
  config = tiny_config(students__widths=(4, 32), data__online=False, **FIRST_ORDER)
  summary = runner.run(config, tmp_path / 'overlapped', progress=False)
  assert 0.0 < summary['compile_seconds'] <= summary['wall_seconds']
  # Waiting also covers drawing the teachers (running, not only compiling, sampling programs).
  assert 0.0 < summary['compile_wait_seconds'] <= summary['wall_seconds']

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
