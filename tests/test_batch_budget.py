"""teacher_student.batch_budget: the bytes a step touches, and how many replicates a device
trains together — on CPU by CPU_BATCH_BYTES, on an accelerator by its share of the device's memory."""

import types

import numpy as np

from helpers import teacher_and_test_set
from teacher_student import batch_budget, students
from teacher_student.train_spec import TrainSpec


def _gpu(bytes_limit):
  """A stand-in accelerator that reports its memory as JAX devices do (memory_stats)."""
  return types.SimpleNamespace(platform='gpu', memory_stats=lambda: {'bytes_limit': bytes_limit})


def test_step_bytes_is_the_hand_count():
  """Width 8 on D = 4, k = 1, float32, n = 1000: per point 4 inputs + 2 labels/outputs + 3 · 8
  unit values = 30 numbers; parameters P = 49, with gradient and two Adam moments: 196."""
  t, _, _ = teacher_and_test_set('float32')
  st = students.make_student(students.StudentSpec(width=8), t)
  assert batch_budget.step_bytes(st, TrainSpec(), 1000) == 4 * (1000 * 30 + 4 * 49)
  assert batch_budget.step_bytes(st, TrainSpec(batch_size=100), 1000) == 4 * (100 * 30 + 4 * 49)


def test_an_accelerator_batches_replicates_into_its_memory_share():
  """A 16 GiB device gives a quarter to a batch: 4 GiB // 120,784 bytes a replicate = 35,559."""
  t, _, _ = teacher_and_test_set('float32')
  st = students.make_student(students.StudentSpec(width=8), t)
  assert batch_budget.replicate_batch(st, TrainSpec(), [1000], _gpu(16 << 30)) == (4 << 30) // 120_784 == 35_559
  # Two students a replicate (two n's) take twice the bytes: half as many replicates.
  assert batch_budget.replicate_batch(st, TrainSpec(), [1000, 1000], _gpu(16 << 30)) == (4 << 30) // (2 * 120_784)
  assert batch_budget.replicate_batch(st, TrainSpec(), [1000], _gpu(1 << 10)) == 1   # never below one
  no_stats = types.SimpleNamespace(platform='tpu', memory_stats=lambda: None)
  assert batch_budget.replicate_batch(st, TrainSpec(), [1000], no_stats) == np.iinfo(np.int32).max
