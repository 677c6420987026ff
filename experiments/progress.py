"""Progress from inside a long program: the phase it is in and how far, on the sweep's bar.

One compiled program trains a whole group; without this the bar moves only when it ends (over
ten minutes for the medium preset's first group). The program calls back (`engine.compile_grid`'s
`progress`) after each chunk of first-order steps, every 50 LM steps and as each student's second
phase ends.
Programs with host callbacks are not kept in JAX's persistent compilation cache, so only those
whose cost at the budget (`launch_cost.program_cost`) is at least FROM_TFLOP get them: the quick
study's programs stay cached (their bar moves group by group, within a minute).
"""

import threading
import time

from experiments import launch_cost
from teacher_student import second_order

FROM_TFLOP = 10.0     # programs at least this costly at the step budget report from inside
SHOW_EVERY_S = 1.0    # the bar's text changes at most this often


def wanted(plan, group, student, missing, devices: int) -> bool:
  """Whether the program of `missing` cells of `group` is long enough to report from inside."""
  return launch_cost.program_cost(plan, group, student, missing, devices).flops >= FROM_TFLOP * 1e12


class Phases:
  """The callback of one program: counts 'first' (a chunk of first-order steps, per batch of
  students and device), 'second_steps' (second_order.PROGRESS_STEPS LM steps) and 'second' (a
  student's second phase done) calls and shows them as
  `label` + the phase on `bar` (a tqdm bar), at most every SHOW_EVERY_S seconds. Thread-safe:
  XLA calls it from its own threads."""

  def __init__(self, bar, label: str, students: int, check_every: int):
    self.bar, self.label, self.students, self.check_every = bar, label, students, check_every
    self.counts = {'first': 0, 'second': 0, 'second_steps': 0}
    self.shown = 0.0
    self.lock = threading.Lock()

  def text(self) -> str:
    if self.counts['second'] or self.counts['second_steps']:
      done = min(self.counts['second'], self.students)   # padding replicates refine too
      steps = self.counts['second_steps'] * second_order.PROGRESS_STEPS
      return f'{self.label} · second phase {done}/{self.students} students, {steps} LM steps'
    return f'{self.label} · first order {self.counts["first"] * self.check_every} steps'

  def __call__(self, phase: str) -> None:
    with self.lock:
      self.counts[phase] += 1
      now = time.monotonic()
      if now - self.shown < SHOW_EVERY_S:
        return
      self.shown = now
      self.bar.set_postfix_str(self.text())
