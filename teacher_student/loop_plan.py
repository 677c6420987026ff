"""Which training loops a grid program runs for its sample counts, one after another.

  EACH      every n (and the online column) in one loop, one n after another, n traced: the
            full-batch gradient is summed over fixed blocks of points (`batching`), so the loop
            compiles once for all n's. Chosen with at least two full-batch n's above a small
            block.
  TOGETHER  the (replicate, n) students of some n's on one vmapped axis, on the pools cut to
            the loop's largest n and masked beyond each n: the n's up to a small block (a step
            costs little more than its kernel launches), each larger n alone, or every n with
            mini-batches (whose steps touch batch_size points whatever n).
  ONLINE    the online column (n = ∞), when it is not part of an EACH loop.
"""

import dataclasses
import enum
from typing import Sequence

import numpy as np

from teacher_student.batching import BLOCK_POINTS
from teacher_student.train_spec import TrainSpec


class Mode(enum.Enum):
  EACH = 'each'
  TOGETHER = 'together'
  ONLINE = 'online'


@dataclasses.dataclass(frozen=True)
class Loop:
  """One training loop: the columns of `ns` it trains, the points a step touches, its mode."""
  columns: tuple[int, ...]
  points: int
  mode: Mode

  @property
  def students_per_replicate(self) -> int:
    """Students of one replicate vmapped together in this loop (EACH trains its n's in turn)."""
    return len(self.columns) if self.mode == Mode.TOGETHER else 1


@dataclasses.dataclass(frozen=True)
class LoopPlan:
  """The loops of a grid program, and the pool they read.

  loops: run in this order; their results concatenated come out in `order` (columns of ns).
  pool_points: points of the padded pool EACH reads (a whole number of small blocks).
  blocks: (big, small) block sizes of EACH's gradient sums.
  """
  loops: tuple[Loop, ...]
  pool_points: int
  blocks: tuple[int, int]
  restore_order: np.ndarray   # indices that put the concatenated results back in the order of ns

  @property
  def has_each(self) -> bool:
    return any(loop.mode == Mode.EACH for loop in self.loops)


def plan_loops(ns: Sequence[int | None], train: TrainSpec) -> LoopPlan:
  """The loops for sample counts `ns` (None: the online column)."""
  finite = [i for i, n in enumerate(ns) if n is not None]
  online = [i for i, n in enumerate(ns) if n is None]
  n_max = max([ns[i] for i in finite], default=1)
  large = sorted({ns[i] for i in finite if ns[i] > BLOCK_POINTS[1]})
  each = len(large) >= 2 and not train.batch_size
  pool_points = max(n_max, train.online_batch if each and online else 0)
  pool_points += (-pool_points) % BLOCK_POINTS[1]
  blocks = (min(BLOCK_POINTS[0], pool_points), BLOCK_POINTS[1])
  if each:
    loops = [Loop(tuple(finite + online), blocks[0], Mode.EACH)]
  else:
    groups = ([finite] if train.batch_size else
              [[i for i in finite if ns[i] <= BLOCK_POINTS[1]]] + [[i for i in finite if ns[i] == n] for n in large])
    loops = [Loop(tuple(g), max(ns[i] for i in g), Mode.TOGETHER) for g in groups if g]
    if online:
      loops.append(Loop(tuple(online), train.online_batch, Mode.ONLINE))
  restore_order = np.argsort(np.concatenate([loop.columns for loop in loops]))
  return LoopPlan(tuple(loops), pool_points, blocks, restore_order)
