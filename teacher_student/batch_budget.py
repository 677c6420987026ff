"""How many students a device trains vmapped together, from the memory their steps touch.

On CPU, students whose steps together touch more than CPU_BATCH_BYTES train one batch after
another: each batch's arrays then stay nearer the cache and its matmuls fill the cores. On
accelerators a batch may use ACCELERATOR_MEMORY_SHARE of the device's memory.
"""

from typing import Sequence

import numpy as np

from teacher_student.train_spec import TrainSpec

CPU_BATCH_BYTES = 8 << 20
ACCELERATOR_MEMORY_SHARE = 0.25


def step_bytes(student, train: TrainSpec, n: int) -> int:
  """Bytes one training step of one student on n points touches: its batch of points (inputs,
  labels, outputs), the pre-activation, activation and back-propagated error of every hidden
  unit on each point, and the parameters, gradients and two optimizer moments."""
  batch = train.batch_size or n
  k = student.teacher.spec.out_dim
  return train.jnp_dtype.itemsize * (batch * (student.teacher.inputs.dim + 2 * k + 3 * student.hidden_units)
                                     + 4 * student.num_params)


def device_budget(device) -> float:
  """Bytes of training steps `device` runs vmapped together (inf if it does not say)."""
  if device.platform == 'cpu':
    return CPU_BATCH_BYTES
  stats = device.memory_stats() or {}
  return ACCELERATOR_MEMORY_SHARE * stats.get('bytes_limit', np.inf)


def replicate_batch(student, train: TrainSpec, sizes: Sequence[int], device) -> int:
  """How many replicates a device trains vmapped together (the rest wait for the next batch)
  when each replicate trains one student per entry of `sizes` (points per step). At least 1."""
  per_replicate = sum(step_bytes(student, train, size) for size in sizes)
  budget = device_budget(device)
  if not np.isfinite(budget):   # (inf // x is NaN in Python)
    return int(np.iinfo(np.int32).max)
  return int(max(1, min(budget // per_replicate, np.iinfo(np.int32).max)))


def uses_flat_params(student, train: TrainSpec, points: int, device) -> bool:
  """Whether a student training on `points` points a step optimizes a flat parameter vector:
  yes if at least two such students fit one batch, else it keeps the parameter tree."""
  return replicate_batch(student, train, [points], device) > 1
