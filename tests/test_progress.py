"""Progress from inside a program: the engine's callbacks, counted by hand, and the bar's text."""

import collections

import jax
import numpy as np

from experiments import progress
from helpers import teacher_and_test_set
from teacher_student import engine, students
from teacher_student.train_spec import TrainSpec


def test_the_programs_call_back_once_per_chunk_every_50_lm_steps_and_once_per_finished_student(x64):
  """2 seeds × n = 8, 32 (one loop, the replicates and n's in one batch: 300 steps = 3 chunks of
  100), 2 × 2 = 4 second phases and one call per 50 of their LM steps; every count is the hand
  count, on however many devices."""
  t, x, y = teacher_and_test_set('float64')
  calls = collections.Counter()
  train = TrainSpec(steps=300, check_every=100, tol=0.0, dtype='float64', second_order=True, second_order_steps=120)
  out = engine.train_grid(students.make_student(students.StudentSpec(width=2), t), train, seeds=[0, 1], ns=[8, 32],
                          x_test=x, y_test=y, progress=lambda phase: calls.update([phase]))
  assert 4 % len(jax.local_devices()) == 0   # no padding replicates: 4 students on 1, 2 or 4 devices
  assert calls['second'] == 4
  assert calls['first'] >= 3 and calls['first'] % 3 == 0, calls
  assert np.all(out['steps'] == 300)
  steps = out['second_order_steps']
  assert np.any(steps >= 50) and calls['second_steps'] == np.sum(steps // 50)


class _Bar:
  def __init__(self):
    self.text = []

  def set_postfix_str(self, text):
    self.text.append(text)


def test_the_bar_shows_the_phase_at_most_once_a_second(monkeypatch):
  clock = iter([10.0, 10.5, 11.2, 11.3, 12.5])
  monkeypatch.setattr(progress.time, 'monotonic', lambda: next(clock))
  bar = _Bar()
  phases = progress.Phases(bar, 'student m=2', students=4, check_every=100)
  for phase in ('first', 'first', 'first', 'second', 'second'):
    phases(phase)
  assert bar.text == ['student m=2 · first order 100 steps', 'student m=2 · first order 300 steps',
                      'student m=2 · second phase 2/4 students, 0 LM steps']
