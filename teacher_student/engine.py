"""The grid program: the (replicate × n) students of one shape trained in one compiled program.

Each replicate has its own training pool; its student at sample count n sees the pool's first
n points, masked in the loss. The n's train in the loops `loop_plan` chooses; each replicate's
students start from the same initial parameters. The replicate axis is sharded over the local
devices (`sharding`), and each device vmaps its students in batches whose steps fit its memory
budget (`batch_budget`; a batch of one is a plain loop). Pools, keys and initial parameters
come from sampling programs of their own (`sampling`), and the trained students are evaluated
by a program of its own (`evaluation`). `sequential.train_sequential` is the one-at-a-time
reference the tests hold this program to.
"""

import functools
import time
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from teacher_student import batch_budget, compilation, loop, sampling, second_order, sharding
from teacher_student import data as data_lib
from teacher_student import evaluation as evaluation_lib
from teacher_student.loop_plan import Mode, plan_loops
from teacher_student.train_spec import TrainSpec, check_dtype, check_ns


class GridInputs(NamedTuple):
  """A grid's validated per-replicate and per-n arguments, and its test set in the train dtype."""
  members: list
  ns: list            # sample counts; None is the online column
  widths: list
  x_test: jax.Array
  y_test: jax.Array
  y_var: jax.Array    # Var f* on the test set


def prepare(student, train: TrainSpec, seeds, members, ns, widths, x_test, y_test) -> GridInputs:
  """Checks a grid's arguments (one-line ValueErrors) and fills their defaults."""
  check_dtype(train)
  if len(seeds) == 0:
    raise ValueError('need at least one seed')
  members = [0] * len(seeds) if members is None else list(members)
  if len(members) != len(seeds):
    raise ValueError(f'{len(members)} members for {len(seeds)} seeds')
  ns = [None] if ns is None else list(ns)
  finite = [n for n in ns if n is not None]
  if len(ns) == 0 or finite:
    check_ns(finite)
  dtype = train.jnp_dtype
  x_test, y_test = jnp.asarray(x_test, dtype), jnp.asarray(y_test, dtype)
  y_var = evaluation_lib.output_variance(y_test)
  return GridInputs(members, ns, _widths(student, widths, len(seeds)), x_test, y_test, y_var)


def _widths(student, widths, count) -> list:
  """Per-replicate widths (default: the student's own), checked against the program's width."""
  if widths is None:
    return [student.spec.width] * count
  widths = list(widths)
  if len(widths) != count:
    raise ValueError(f'{len(widths)} widths for {count} seeds')
  if any(w != student.spec.width for w in widths) and not student.can_pad_width:
    raise ValueError('narrower widths inside one program need MLP students with the standard init')
  if any(not 1 <= w <= student.spec.width for w in widths):
    raise ValueError(f'widths {widths} must be in 1..{student.spec.width} (the program width)')
  return widths


def results(trained: second_order.Converged, evaluated: evaluation_lib.Evaluation, compile_s: float,
            run_s: float) -> dict:
  """The dict a grid returns, from arrays of shape (S, N) (test predictions: (S, N, n_test, k));
  trained.params is not used."""
  reason = np.array(trained.reason)
  out = {
      'train_error': np.array(evaluated.train_error), 'test_error': np.array(evaluated.test_error),
      'test_se': np.array(evaluated.test_se), 'steps': np.array(trained.steps),
      'second_order_steps': np.array(trained.second_order_steps), 'grad_norm': np.array(trained.grad_norm),
      'stop': np.asarray(loop.STOP_REASONS)[reason], 'status': np.asarray(loop.STATUS)[reason],
      'compile_seconds': compile_s, 'run_seconds': run_s,
  }
  if evaluated.test_predictions is not None:
    out['test_predictions'] = np.asarray(evaluated.test_predictions)
  return out


def train_grid(student, train: TrainSpec, **grid) -> dict:
  """Trains the (replicate × n) grid of one student shape: compiles it (`compile_grid`, whose
  keyword arguments `grid` takes) and runs it."""
  return compile_grid(student, train, **grid)()


def compile_grid(student, train: TrainSpec, *, seeds: Sequence[int], ns: Sequence[int | None] | None,
                 x_test, y_test, members: Sequence[int] | None = None, widths: Sequence[int] | None = None,
                 devices=None, predictions: bool = False, progress: Callable[[str], None] | None = None
                 ) -> Callable[[], dict]:
  """Compiles the program that trains the (replicate × n) grid of one student shape; returns
  a function of no arguments that runs it (a sweep can compile the next grid while one runs).

  Args:
    student: a `students.Student` (its teacher labels the data).
    train: the TrainSpec.
    seeds: replicate seeds, length S (each its own training pool).
    ns: sample counts, length N; an entry None is the online column (n = ∞, fresh samples every
      step); ns=None means [None].
    x_test, y_test: the held-out sample (n_test, D), (n_test, k) of clean labels.
    members: replicate members, length S (default 0): replicates of one seed share the pool
      and differ in initialization and mini-batches.
    widths: replicate widths, length S (default: the student's width): a replicate of width
      w < student.spec.width is a width-w student padded with inert units (`Student.init`).
    devices: the devices to shard the replicate axis over (default: all local devices).
    predictions: also return every student's test-set outputs, 'test_predictions'
      (S, N, n_test, k) (what the ensemble estimator of U needs).
    progress: a host function the running programs call, 'first' after each chunk of
      train.check_every first-order steps (of each batch of students trained together, on each
      device), 'second' as each student's second phase ends and 'second_steps' every
      second_order.PROGRESS_STEPS of its LM steps. Programs with such callbacks are
      not kept in JAX's persistent compilation cache: for long programs only.

  Returns:
    run(): a dict of numpy arrays of shape (S, N): train_error (NaN online), test_error,
    test_se (normalized, docs/design.md §2), steps, stop (reason), status; compile_seconds (training,
    evaluation and sampling programs), run_seconds, and memory_bytes (the larger program's).
  """
  grid = prepare(student, train, seeds, members, ns, widths, x_test, y_test)
  ns = grid.ns
  n_max = max([n for n in ns if n is not None], default=1)
  plan = plan_loops(ns, train)
  has_online = None in ns
  devices = list(devices or jax.local_devices())
  # Per-replicate arguments, padded to a multiple of the device count; numpy until placed.
  pad = sharding.padding(len(seeds), devices)
  seeds_s = np.asarray(list(seeds) + [seeds[-1]] * pad, np.int32)
  members_s = np.asarray(grid.members + [grid.members[-1]] * pad, np.int32)
  widths_s = np.asarray(grid.widths + [grid.widths[-1]] * pad, np.int32)
  ns_n = np.asarray([0 if n is None else n for n in ns], np.int32)   # 0: no training points

  # Each distinct seed's pool is drawn once (a shape that compiles once per teacher); inside the
  # training program each replicate takes its seed's pool (pool_s).
  unique_u, pool_s = np.unique(seeds_s, return_inverse=True)
  pool_s = pool_s.astype(np.int32)
  (x_pool_u, y_pool_u), pools_compile = sampling.dispatch(
      sampling.pools, student.teacher, jnp.asarray(unique_u, jnp.int32), n_max, train.noise_std, train.dtype)
  (init_kd_s, batch_kd_s), keys_compile = sampling.dispatch(data_lib.member_key_data, seeds_s, members_s)
  # Replicates vmapped together per device, for each loop (`lax.map`'s batch_size): a divisor
  # of the device's count (a remainder would compile the loop twice); 0 = all of them; None = a
  # plain loop over single students (XLA:CPU then orients their matmuls as for one student).
  per_device = len(seeds_s) // len(devices)
  batch, flat = [], []
  for lp in plan.loops:
    k = lp.students_per_replicate
    most = batch_budget.replicate_batch(student, train, [lp.points] * k, devices[0])
    b = max(d for d in range(1, per_device + 1) if per_device % d == 0 and d <= most)
    batch.append(None if b * k == 1 else 0 if b == per_device else b * k)
    flat.append(batch_budget.uses_flat_params(student, train, lp.points, devices[0]))

  on_chunk = progress and (lambda: progress('first'))

  def program(teacher, params_s, batch_kd_s, pool_s, x_pool_u, y_pool_u, ns_n, y_var):
    # The teacher is an argument, not constants of the program: lowering need not wait for it.
    st = student.replace(teacher=teacher)
    x_pool, y_pool = x_pool_u[pool_s], y_pool_u[pool_s]   # (S, n_max, D), (S, n_max, k)
    if plan.has_each:
      pad_n = [(0, 0), (0, plan.pool_points - n_max), (0, 0)]   # zeros, masked: never a training point
      x_blocks, y_blocks = jnp.pad(x_pool, pad_n), jnp.pad(y_pool, pad_n)

    batch_key = jax.random.wrap_key_data(batch_kd_s)
    parts = []
    replicates = batch_key.shape[0]   # this device's
    for lp, b, flat_b in zip(plan.loops, batch, flat):
      columns = np.asarray(lp.columns)
      if lp.mode == Mode.EACH:
        def at_n(n_flag, flat_b=flat_b, b=b):   # n traced: the loop compiles once for all n's
          n, flag = n_flag
          is_online = flag if has_online else False   # traced only with an online column to draw
          def one(replicate):   # the replicate's parameters, pool and key
            p, x_nd, y_nk, key = replicate
            return loop.train_one(st, train, p, x_nd, y_nk, n, key, y_var, is_online, flat_params=flat_b,
                                  blocks=plan.blocks, on_chunk=on_chunk)
          return jax.lax.map(one, (params_s, x_blocks, y_blocks, batch_key), batch_size=b)
        flags = np.asarray([ns[i] is None for i in lp.columns])
        parts.append(jax.lax.map(at_n, (ns_n[columns], flags)))   # (n, replicate, ...)
        continue
      # (replicate, n) students, replicate-major, on one axis, each gathering its replicate's
      # key, pool (cut to the loop's largest n) and initial parameters.
      k = len(lp.columns)
      r_all = np.repeat(np.arange(replicates), k)
      n_all = jnp.tile(ns_n[columns], replicates)
      size = 1 if lp.mode == Mode.ONLINE else lp.points   # online: the pool is not used
      def one(r_n, is_online=lp.mode == Mode.ONLINE, flat_b=flat_b, size=size):
        r, n = r_n
        p = jax.tree.map(lambda a: a[r], params_s)
        return loop.train_one(st, train, p, x_pool[r, :size], y_pool[r, :size], n, batch_key[r], y_var, is_online,
                              flat_params=flat_b, on_chunk=on_chunk)
      out = jax.lax.map(one, (r_all, n_all), batch_size=b)
      parts.append(jax.tree.map(lambda o: jnp.swapaxes(o.reshape(replicates, k, *o.shape[1:]), 0, 1), out))
    # Every result (n, replicate, ...), n in the order of ns (`run` turns them around on the host).
    trained = parts[0] if len(parts) == 1 else jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
    if np.any(plan.restore_order != np.arange(len(plan.restore_order))):
      trained = jax.tree.map(lambda a: a[plan.restore_order], trained)
    return trained

  def evaluation(teacher, params_ns, pool_s, x_pool_u, y_pool_u, ns_n, x_test, y_test, y_var):
    st = student.replace(teacher=teacher)
    ev = functools.partial(evaluation_lib.evaluate, st, predictions=predictions)
    ev = jax.vmap(ev, in_axes=(0, 0, 0, None, None, None, None))      # over replicates
    ev = jax.vmap(ev, in_axes=(0, None, None, 0, None, None, None))   # over n
    return ev(params_ns, x_pool_u[pool_s], y_pool_u[pool_s], ns_n, x_test, y_test, y_var)

  refines = second_order.applies(train)
  refinement = second_order.grid_refinement(student, train, ns, progress) if refines else None

  if len(devices) > 1:
    rep, rows = sharding.REPLICATED, sharding.BY_REPLICATE
    # check_vma=False: the loops' scalar carries start replicated and become per-device.
    program = sharding.shard_program(program, devices, (rep,) + (rows,) * 3 + (rep,) * 4, sharding.BY_N_REPLICATE,
                                     check_vma=False)
    evaluation = sharding.shard_program(evaluation, devices, (rep, sharding.BY_N_REPLICATE, rows) + (rep,) * 6,
                                        sharding.BY_N_REPLICATE)
    if refines:
      refinement = sharding.shard_program(refinement, devices, (rep, sharding.BY_N_REPLICATE, rows, rows) + (rep,) * 3,
                                          sharding.BY_N_REPLICATE, check_vma=False)
    init_kd_s, batch_kd_s, widths_s, pool_s = sharding.place_by_replicate(devices, init_kd_s, batch_kd_s, widths_s,
                                                                          pool_s)
  narrow = any(w != student.spec.width for w in grid.widths)
  params_s, init_compile = sampling.dispatch(sampling.initial_params, student, init_kd_s, widths_s, train.dtype, narrow)
  args = (student.teacher, params_s, batch_kd_s, pool_s, x_pool_u, y_pool_u, ns_n, grid.y_var)
  platform = devices[0].platform
  t0 = time.perf_counter()
  compiled = jax.jit(program).lower(*args).compile(compilation.options('training', platform))
  programs = [compiled]
  if refines:   # the second phase: a program of its own
    refine_args = (student.teacher, compiled.out_info, batch_kd_s, pool_s, x_pool_u, y_pool_u, grid.y_var)
    programs.append(jax.jit(refinement).lower(*refine_args).compile(compilation.options('training', platform)))
    finish = lambda trained: programs[1](student.teacher, trained, *refine_args[2:])
  else:
    finish = lambda trained: second_order.skipped(trained, train.jnp_dtype)
  eval_args = (student.teacher, compiled.out_info.params, pool_s, x_pool_u, y_pool_u, ns_n, grid.x_test, grid.y_test,
               grid.y_var)
  compiled_eval = jax.jit(evaluation).lower(*eval_args).compile(compilation.options('evaluation', platform))
  programs.append(compiled_eval)
  compile_s = time.perf_counter() - t0 + pools_compile + keys_compile + init_compile

  def run() -> dict:
    t1 = time.perf_counter()
    trained = finish(compiled(*args))
    evaluated = compiled_eval(student.teacher, trained.params, *eval_args[2:])
    trained, evaluated = jax.block_until_ready((trained._replace(params=None), evaluated))
    run_s = time.perf_counter() - t1
    by_replicate = lambda a: None if a is None else np.swapaxes(np.asarray(a), 0, 1)[:len(seeds)]   # (S, N, ...)
    out = results(second_order.Converged(*(by_replicate(a) for a in trained)),
                  evaluation_lib.Evaluation(*(by_replicate(a) for a in evaluated)), compile_s, run_s)
    known = [m for m in map(_memory, programs) if m is not None]
    out['memory_bytes'] = max(known, default=None)   # the programs run one after the other
    return out

  return run


def _memory(compiled) -> int | None:
  """Bytes the compiled program needs (arguments, outputs and temporaries), if XLA says."""
  try:
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
  except (AttributeError, NotImplementedError, TypeError):
    return None
