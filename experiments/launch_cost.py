"""What a launch costs before it runs (`--dry_run`): cells, programs, FLOPs, memory, time.

Training FLOPs are counted at the step budget, the most a cell can cost (docs/design.md §3):
  first order   6 · P · points per step · steps          (forward and backward, per student)
  second order  Levenberg–Marquardt (P <= second_order_max_params):
                (6 · N · P + 2 · N · P² + P³ / 3) · second_order_steps   (the Jacobian row by
                row in reverse mode, JᵀJ on N rows, Cholesky);
                plus, for smooth students, the optimality gap's Hessian every GAP_EVERY steps
                (P Hessian–vector products of about 4 gradients each: 24 · N · P² / GAP_EVERY);
                its dual form beyond, where N · P <= second_order_max_params²:
                (6 · N · P + 2 · N² · P + N³ / 3) · second_order_steps   (JJᵀ, Cholesky);
                L-BFGS beyond that: (2 · 6 · N · P + 4 · MEMORY · P) · lbfgs_steps   (the gradient
                at the iterate and at the line search's point, the two-loop recursion)
with P the program's student (narrower students train padded to it). Memory per device is the
vmapped training steps' (`batch_budget.step_bytes`), the pools and test set, and the second
phase's Jacobian and matrix (LM, its dual) or curvature pairs (L-BFGS), with the replicates a
device trains together (`batch_budget.replicate_batch`). The time: the FLOPs at the devices'
measured matmul rate, except the second phase's Cholesky solves (`cholesky.solve`: blocked
products, but a column loop on each diagonal block whose fixed cost per column the FLOPs miss),
which are timed here with every device solving at once.
Compilation and each step's fixed overhead are not counted: where students are big the time is high
when cells stop early, where they are small (overhead-bound steps) it can be low all the same.
"""

import dataclasses
import math
import pathlib
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from experiments import results, study
from teacher_student import batch_budget, cholesky, lbfgs, second_order, sharding, students, teachers

SOLVE_TIMED_UP_TO = 2048   # larger solves are timed at this size and scaled by size³ (memory-bound)
SolveTime = Callable[[int], float]   # size -> seconds for one Cholesky solve of a size × size system


@dataclasses.dataclass(frozen=True)
class ProgramCost:
  """One compiled program (a group's missing cells) and its cost at the step budget."""
  kind: str
  variant: dict
  widths: tuple
  rows: int           # students trained side by side: widths × replicates × members
  ns: tuple           # None: the online column
  params: int         # P of the program's student
  cells: int          # missing cells
  flops: float
  bytes_per_device: float
  solves: tuple = ()  # ((size, count), ...): Cholesky solves of size × size systems at the budget
  traffic: float = 0.0   # bytes the steps read and write at the budget (each step's arrays once)


def matmul_flops(dtype=jnp.float32, size=2048, repeats=10) -> float:
  """One device's dense matmul throughput through XLA in `dtype`, FLOP/s (best of `repeats`)."""
  a = jax.random.normal(jax.random.key(0), (size, size), dtype)
  b = jax.random.normal(jax.random.key(1), (size, size), dtype)
  f = jax.jit(jnp.dot)
  f(a, b).block_until_ready()
  best = np.inf
  for _ in range(repeats):
    t = time.perf_counter()
    f(a, b).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * size**3 / best


def solve_seconds(size: int, dtype=jnp.float32) -> float:
  """Seconds for one `cholesky.solve` of a size × size system on one device while every
  local device solves one at once, as in a sweep (CPU devices share the memory bandwidth and the
  cores)."""
  devices = jax.local_devices()
  solve = jax.jit(sharding.shard_program(jax.vmap(cholesky.solve), devices,
                                         (sharding.BY_REPLICATE,) * 2, sharding.BY_REPLICATE))
  a, b = sharding.place_by_replicate(devices, np.broadcast_to(2 * np.eye(size, dtype=dtype), (len(devices), size, size)),
                                     np.ones((len(devices), size), dtype))
  solve(a, b).block_until_ready()
  start = time.perf_counter()
  solve(a, b).block_until_ready()
  return time.perf_counter() - start


def solve_timer(dtype=jnp.float32) -> SolveTime:
  """size -> seconds per solve (`solve_seconds`), timed once per power of two up to
  SOLVE_TIMED_UP_TO and scaled by (size / timed size)³ (size columns of size² work each)."""
  timed = {}

  def solve_time(size: int) -> float:
    at = min(1 << max(size - 1, 1).bit_length(), SOLVE_TIMED_UP_TO)
    if at not in timed:
      timed[at] = solve_seconds(at, dtype)
    return timed[at] * (size / at) ** 3
  return solve_time


def cholesky_flops(size: int) -> float:
  """A Cholesky factorization of a size × size matrix, in FLOPs (its substitutions are O(size²))."""
  return size**3 / 3


def estimated_seconds(programs: list[ProgramCost], matmul_rate: float, solve_time: SolveTime, devices: int) -> float:
  """The programs' time at the budget on `devices` devices: their FLOPs at matmul_rate (FLOP/s per
  device), but for the Cholesky solves (`cholesky_flops` each), which take solve_time(size) seconds."""
  solve_flops = sum(count * cholesky_flops(size) for c in programs for size, count in c.solves)
  return ((sum(c.flops for c in programs) - solve_flops) / matmul_rate + solving_seconds(programs, solve_time)) / devices


@dataclasses.dataclass(frozen=True)
class Accelerator:
  """A device priced before it is booked: its name, float64 (or the study's dtype) FLOP/s, memory
  bandwidth in bytes/s and memory in bytes, and how many of them the study's replicates shard over."""
  name: str
  flops: float
  bandwidth: float
  memory: float
  count: int = 1


def accelerator_seconds(programs: list[ProgramCost], acc: Accelerator) -> float:
  """The programs' time at the budget on `acc` by a roofline: each program takes the longer of its
  FLOPs at acc.flops and its traffic at acc.bandwidth, split over acc.count devices."""
  return sum(max(c.flops / acc.flops, c.traffic / acc.bandwidth) for c in programs) / acc.count


def solving_seconds(programs: list[ProgramCost], solve_time: SolveTime) -> float:
  """The programs' Cholesky solves at the budget, in device-seconds (solve_time(size) each)."""
  return sum(count * solve_time(size) for c in programs for size, count in c.solves)


def _points(train, n) -> int:
  if n is None:
    return train.online_batch
  return min(train.batch_size, n) if train.batch_size else n


def _second_flops(how, rows: int, p: int, train, smooth: bool = False) -> float:
  """One student's second phase at its budget (module docstring)."""
  if how == 'lm':
    gap = 24 * rows * p * p / second_order.GAP_EVERY if smooth else 0.0
    return (6 * rows * p + 2 * rows * p * p + cholesky_flops(p) + gap) * train.second_order_steps
  if how == 'dual_lm':
    return (6 * rows * p + 2 * rows * rows * p + cholesky_flops(rows)) * train.second_order_steps
  if how == 'lbfgs':
    return (2 * 6 * rows * p + 4 * lbfgs.MEMORY * p) * train.lbfgs_steps
  return 0.0


def _solve_size(how, rows: int, p: int) -> int:
  """The side of the system one second-phase step solves (LM: P; its dual: N; L-BFGS: none)."""
  return {'lm': p, 'dual_lm': rows}.get(how, 0)


def _second_bytes(how, rows: int, p: int) -> int:
  """Its largest arrays, in elements: the Jacobian and the normal (or dual) matrix, or the pairs."""
  return {'lm': rows * (p + 1) + p * p, 'dual_lm': rows * (p + 1) + rows * rows,
          'lbfgs': 2 * lbfgs.MEMORY * p}.get(how, 0)


def program_cost(plan: study.Plan, group: study.Group, student, missing: list, devices: int) -> ProgramCost:
  """The cost of training `missing` cells ((m, n, replicate)) of `group` in one program."""
  train = group.train
  ns = tuple(n for n in group.ns if any(c[1] == n for c in missing))
  reps = {c[2] for c in missing}
  widths = tuple(m for m in group.cell_widths if any(c[0] == m for c in missing))
  rows = len(widths) * len(reps) * group.members
  p = student.num_params
  first = sum(6 * p * _points(train, n) * train.steps for n in ns)
  lm_rows = [second_order.ONLINE_POINTS if n is None else n for n in ns]
  k = student.teacher.spec.out_dim
  methods = [second_order.method(p, r * k, train) if second_order.applies(train) else None for r in lm_rows]
  second = sum(_second_flops(how, r * k, p, train, not student.kinked) for how, r in zip(methods, lm_rows))
  itemsize = train.jnp_dtype.itemsize
  per_device = math.ceil(rows / devices)
  points = [_points(train, n) for n in ns]
  together = min(per_device, batch_budget.replicate_batch(student, train, points, jax.local_devices()[0]))
  step_bytes = sum(batch_budget.step_bytes(student, train, p_n) for p_n in points)   # one student, every n
  steps = step_bytes * together
  pool = max(n or 0 for n in ns) * (student.teacher.inputs.dim + student.teacher.spec.out_dim) * itemsize * per_device
  test = plan.variants[group.variant].config.data.n_test * (student.teacher.inputs.dim + 2) * itemsize
  second_bytes = [_second_bytes(how, r * k, p) * itemsize for how, r in zip(methods, lm_rows)]
  jacobian = max(second_bytes)
  traffic = rows * (step_bytes * train.steps + sum(second_bytes) * train.second_order_steps)
  solves = {}
  for how, r in zip(methods, lm_rows):
    if size := _solve_size(how, r * k, p):
      solves[size] = solves.get(size, 0) + rows * train.second_order_steps
  return ProgramCost(group.kind, plan.variants[group.variant].label, widths, rows, ns, p, len(missing),
                     rows * (first + second), steps + pool + test + jacobian, tuple(sorted(solves.items())),
                     traffic)


def launch_cost(config, workdir, shard=(0, 1)) -> tuple[list[ProgramCost], int]:
  """(the programs of `shard`'s missing cells, the cells already done in `workdir`). No training."""
  plan = study.plan(config, shard)
  results.check_workdir(workdir, config)
  done = set()
  if (pathlib.Path(workdir) / 'config.json').exists():
    done = {results.cell_key(r) for r in results.load(workdir, plan.config_hash)}
  devices = len(jax.local_devices())
  made, out, done_here = {}, [], 0
  for group in plan.groups:
    cells = plan.cells(group)
    missing = [c for c in cells if plan.cell_key(group, *c) not in done]
    done_here += len(cells) - len(missing)
    if not missing:
      continue
    variant = plan.variants[group.variant]
    if group.variant not in made:
      made[group.variant] = teachers.make_teacher(variant.teacher, variant.inputs, group.train.jnp_dtype)
    out.append(program_cost(plan, group, students.make_student(group.student, made[group.variant]), missing, devices))
  return out, done_here


def describe(programs: list[ProgramCost], done: int, rate: float, solve_time: SolveTime,
             accelerator: Accelerator | None = None) -> str:
  """The dry run's printout: one line per program, then the totals and the time estimate
  (`estimated_seconds` at the matmul `rate`, with solve_time(size) seconds per Cholesky solve),
  and on `accelerator` if one is named (`accelerator_seconds`)."""
  devices = jax.local_devices()
  lines = [f'{"kind":9s} {"variant":18s} {"widths":14s} {"rows":>5s} {"P":>7s} {"ns":24s} {"cells":>6s} '
           f'{"TFLOP":>9s} {"MiB/dev":>8s}']
  for c in programs:
    ns = ','.join('inf' if n is None else str(n) for n in c.ns)
    ns = ns if len(ns) <= 24 else f'{c.ns[0]}..{"inf" if c.ns[-1] is None else c.ns[-1]} ({len(c.ns)})'
    widths = ','.join(map(str, c.widths))
    widths = widths if len(widths) <= 14 else f'{c.widths[0]}..{c.widths[-1]} ({len(c.widths)})'
    variant = ','.join(str(v) for v in c.variant.values()) or '-'
    lines.append(f'{c.kind:9s} {variant[:18]:18s} {widths:14s} {c.rows:5d} {c.params:7d} {ns:24s} '
                 f'{c.cells:6d} {c.flops / 1e12:9.3f} {c.bytes_per_device / 2**20:8.1f}')
  flops = sum(c.flops for c in programs)
  peak = max((c.bytes_per_device for c in programs), default=0)
  seconds = estimated_seconds(programs, rate, solve_time, len(devices))
  solving = solving_seconds(programs, solve_time) / len(devices)
  lines.append(f'cells to train: {sum(c.cells for c in programs)} in {len(programs)} programs '
               f'({done} already done); training at the step budget: {flops / 1e12:.3f} TFLOP; '
               f'peak memory per device: {peak / 2**20:.1f} MiB')
  lines.append(f'devices: {len(devices)} x {devices[0].platform}:{devices[0].device_kind} at '
               f'{rate / 1e9:.1f} GFLOP/s each (measured matmul); estimated time at the budget, '
               'compilation and per-step overhead not counted: '
               f'{_duration(seconds)}' + (f', of which {_duration(solving)} in the second phase\'s Cholesky '
                                          'solves (timed here, every device solving at once)' if solving else ''))
  if accelerator:
    acc = accelerator
    fits = 'fits' if peak * math.ceil(len(devices) / acc.count) <= acc.memory else 'does NOT fit'
    lines.append(f'on {acc.count} x {acc.name} at {acc.flops / 1e12:g} TFLOP/s and {acc.bandwidth / 1e9:g} GB/s '
                 f'(roofline at the budget, per-step overhead not counted): '
                 f'{_duration(accelerator_seconds(programs, acc))}; peak memory {fits} in its '
                 f'{acc.memory / 2**30:g} GiB')
  return '\n'.join(lines)


def _duration(seconds: float) -> str:
  if seconds < 120:
    return f'{seconds:.0f} s'
  return f'{seconds / 60:.0f} min' if seconds < 7200 else f'{seconds / 3600:.1f} h'


def print_dry_run(config, workdir, shard=(0, 1), accelerator: Accelerator | None = None) -> None:
  """What `--dry_run` prints (`describe`), measured in the study's JAX settings. Writes nothing."""
  from experiments import runner
  with runner.jax_settings(config):
    programs, done = launch_cost(config, workdir, shard)
    dtype = config.train.dtype
    print(describe(programs, done, matmul_flops(dtype, size=1024, repeats=5), solve_timer(dtype), accelerator))
