"""Runs a study's cells into its workdir: validate, skip what is done, train, record (docs/design.md §4)."""

import concurrent.futures
import contextlib
import dataclasses
import datetime
import time
from typing import NamedTuple

import jax
import numpy as np
import tqdm

from experiments import host
from experiments import progress as progress_lib
from experiments import results
from experiments import study
from teacher_student import data, engine, evaluation, students, teachers

# The prefix of JAX's events for tracing, lowering to MLIR and XLA compilation (jax.monitoring).
COMPILE_EVENT_PREFIX = '/jax/core/compile/'
# Platforms where a sweep compiles every program before training any (`all_first`): compiling
# and training compete for the same cores there. Elsewhere it compiles ahead (`ahead`).
COMPILE_FIRST_PLATFORMS = ('cpu',)


class Rectangle(NamedTuple):
  """The widths × replicates × n's of a group that cover its missing cells."""
  widths: tuple
  replicates: tuple   # ((seed, member), ...)
  ns: tuple


@contextlib.contextmanager
def jax_settings(config):
  """The JAX settings a study asks for (64-bit, matmul precision), for the `with` block only."""
  with jax.enable_x64(config.train.dtype == 'float64'), \
       jax.default_matmul_precision(config.train.matmul_precision):
    yield


def device_label() -> str:
  d = jax.local_devices()
  return f'{d[0].platform}:{d[0].device_kind} x{len(d)}'


def _todo(plan, group, done):
  """The missing cells of `group`, and the Rectangle covering them."""
  missing = [(m, n, r) for m, n, r in plan.cells(group) if plan.cell_key(group, m, n, r) not in done]
  widths = tuple(m for m in group.cell_widths if any(c[0] == m for c in missing))
  reps = tuple(r for r in group.replicates if any(c[2] == r for c in missing))
  ns = tuple(n for n in group.ns if any(c[1] == n for c in missing))
  return missing, Rectangle(widths, reps, ns)


def _rows(group, widths, reps):
  """The engine's rows for a rectangle: (width, seed, member) for every width, replicate and
  ensemble member (an ensemble cell's K members are K rows)."""
  return [(m, s, j) for m in widths for s, _ in reps for j in range(group.members)]


def _row_args(rows):
  """`engine.compile_grid`'s per-row arguments for (width, seed, member) rows."""
  return dict(widths=[m for m, _, _ in rows], seeds=[s for _, s, _ in rows], members=[j for _, _, j in rows])


def _grid_kw(group, rect, x_test, y_test, devices):
  """`engine.compile_grid`'s arguments for a rectangle's sample counts and test set."""
  return dict(ns=list(rect.ns), x_test=x_test, y_test=y_test, devices=devices, predictions=group.kind == 'ensemble')


def _compile(student, group, rect, x_test, y_test, devices, progress=None):
  """The compiled program of a rectangle of cells (one row per width × replicate × member);
  progress: `engine.compile_grid`'s."""
  rows = _rows(group, rect.widths, rect.replicates)
  return engine.compile_grid(student, group.train, **_row_args(rows), **_grid_kw(group, rect, x_test, y_test, devices),
                             progress=progress)


def _label(group, rect, variant) -> str:
  return f'{group.kind} m={",".join(map(str, rect.widths))} {variant.label or ""}'.rstrip()


def _retry_diverged(out, student, group, rect, x_test, y_test, config, devices):
  """Retrains the diverged rows of a rectangle's results `out` (`_compile`'s program run) with
  a smaller learning rate, in place; returns `out`."""
  rows = _rows(group, rect.widths, rect.replicates)
  train = group.train
  out['learning_rate'] = np.full(out['status'].shape, train.learning_rate)
  out['retries'] = np.zeros(out['status'].shape, int)
  for retry in range(1, config.train.max_retries + 1):
    if not config.train.retry_lr_factor:
      break
    bad = out['status'] == 'diverged'
    if not bad.any():
      break
    train = dataclasses.replace(train, learning_rate=train.learning_rate * config.train.retry_lr_factor)
    again_rows = np.flatnonzero(bad.any(axis=1))
    again = engine.train_grid(student, train, **_row_args([rows[i] for i in again_rows]),
                              **_grid_kw(group, rect, x_test, y_test, devices))
    for key in ('train_error', 'test_error', 'test_se', 'steps', 'stop', 'status', 'second_order_steps', 'grad_norm'):
      out[key][again_rows] = np.where(bad[again_rows], again[key], out[key][again_rows])
    if 'test_predictions' in out:
      out['test_predictions'][again_rows] = np.where(bad[again_rows][..., None, None], again['test_predictions'],
                                                     out['test_predictions'][again_rows])
    out['learning_rate'][again_rows] = np.where(bad[again_rows], train.learning_rate, out['learning_rate'][again_rows])
    out['retries'][again_rows] = np.where(bad[again_rows], retry, out['retries'][again_rows])
    out['compile_seconds'] += again['compile_seconds']
    out['run_seconds'] += again['run_seconds']
  return out


def ensemble_variance(pred_kxo, ok_k, y_var) -> float:
  """Half the mean pairwise squared disagreement of the ok members, normalized by Var f*.

  Over K members, mean_{j<l} (f_j − f_l)² / 2 is the unbiased variance across members, so this
  is the average over test points and outputs of that variance (docs/design.md §2, estimator (c)).
  """
  pred = pred_kxo[ok_k]
  if len(pred) < 2:
    return float('nan')
  return float(np.mean(np.var(pred, axis=0, ddof=1)) / y_var)


def _cell_fields(out, rows_k, j, y_var, ensemble, second_order):
  """A cell's result fields from its engine rows (K member rows for an ensemble cell)."""
  if not ensemble:
    (i,) = rows_k
    return {'steps': int(out['steps'][i, j]), 'second_order_steps': int(out['second_order_steps'][i, j]),
            'grad_norm': _num(out['grad_norm'][i, j]), 'stop': str(out['stop'][i, j]), 'status': str(out['status'][i, j]),
            'train_error': _num(out['train_error'][i, j]), 'test_error': _num(out['test_error'][i, j]),
            'test_se': _num(out['test_se'][i, j]), 'learning_rate': float(out['learning_rate'][i, j]),
            'retries': int(out['retries'][i, j])}
  status, stop = out['status'][rows_k, j], out['stop'][rows_k, j]
  # The cell is the learner's when every member converged; sample-then-optimize needs members
  # that interpolate S_n (with the second-order phase: at the floor), the others are dropped
  # from the variance and counted.
  interpolating = (stop == 'tolerance') if second_order else (status != 'diverged')
  mean_ok = lambda key: _num(np.mean(out[key][rows_k, j][interpolating])) if interpolating.any() else None
  return {
      'members': len(rows_k), 'members_ok': int(interpolating.sum()), 'members_dropped': int((~interpolating).sum()),
      'ensemble_variance': _num(ensemble_variance(out['test_predictions'][rows_k, j], interpolating, y_var)),
      'member_test_errors': [_num(v) for v in out['test_error'][rows_k, j]],
      'member_status': [str(v) for v in status],
      'steps': int(out['steps'][rows_k, j].max()), 'second_order_steps': int(out['second_order_steps'][rows_k, j].max()),
      'grad_norm': _num(np.max(out['grad_norm'][rows_k, j])),
      'stop': ','.join(sorted(set(str(v) for v in stop))),
      'status': ('diverged' if (status != 'diverged').sum() < 2 else 'ok' if all(status == 'ok') else 'not_converged'),
      'train_error': mean_ok('train_error'), 'test_error': mean_ok('test_error'), 'test_se': mean_ok('test_se'),
      'learning_rate': float(np.min(out['learning_rate'][rows_k, j])),
      'retries': int(np.max(out['retries'][rows_k, j]))}


def _records(plan, group, variant, student, rect, missing, out, shard, y_var):
  widths, reps, ns = rect.widths, rect.replicates, rect.ns
  rows = _rows(group, widths, reps)
  seconds = out['compile_seconds'] + out['run_seconds']
  cells = len(widths) * len(reps) * len(ns)
  now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
  recs = []
  for m, n, (seed, member) in missing:
    rows_k = [i for i, (rm, rs, _) in enumerate(rows) if rm == m and rs == seed]
    recs.append({
        'config_hash': plan.config_hash, 'kind': group.kind, 'variant': variant.label,
        'teacher': dataclasses.asdict(variant.teacher), 'm': m, 'n': n, 'seed': seed, 'member': member,
        'P': student.replace(spec=dataclasses.replace(student.spec, width=m)).num_params,
        **_cell_fields(out, rows_k, ns.index(n), y_var, group.kind == 'ensemble', group.train.second_order),
        'wall_seconds': seconds / cells, 'group_seconds': seconds,
        'group_compile_seconds': out['compile_seconds'], 'group_cells': cells,
        'device': device_label(), 'software': host.software(), 'shard': list(shard), 'finished_at': now})
  return recs


def _num(x):
  """A JSON-safe float: NaN/inf (online train error, diverged cells) become None."""
  x = float(x)
  return x if np.isfinite(x) else None


@contextlib.contextmanager
def compile_clock():
  """Yields a function that returns the wall seconds JAX has spent compiling since entry —
  tracing, lowering and XLA compilation, on any thread: the union of the time spans of its
  compile events, so that nested or concurrent ones count once."""
  spans = []

  def listener(event, start, end, **_):
    if event.startswith(COMPILE_EVENT_PREFIX):
      spans.append((start, end))

  jax.monitoring.register_event_time_span_listener(listener)
  try:
    yield lambda: _union_seconds(list(spans))
  finally:
    jax.monitoring.unregister_event_time_span_listener(listener)


def _union_seconds(spans) -> float:
  """The length of the union of (start, end) time spans."""
  total, reach = 0.0, -np.inf
  for start, end in sorted(spans):
    total += max(0.0, end - max(start, reach))
    reach = max(reach, end)
  return total


def ahead(fn, items):
  """Yields (item, fn(item), seconds waited for it) for each item in order, computing fn of the
  next item on a background thread while the caller works on the current one."""
  with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='ahead') as pool:
    following = pool.submit(fn, items[0]) if items else None
    for i, item in enumerate(items):
      t = time.perf_counter()
      result = following.result()
      waited = time.perf_counter() - t
      following = pool.submit(fn, items[i + 1]) if i + 1 < len(items) else None
      yield item, result, waited


def all_first(fn, items, threads):
  """Yields (item, fn(item), seconds waited for it) for each item in order, having computed fn
  of every item first, `threads` at a time: the first item waits for all of them."""
  t = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix='first') as pool:
    computed = list(pool.map(fn, items))
  waited = time.perf_counter() - t
  for i, (item, result) in enumerate(zip(items, computed)):
    yield item, result, waited if i == 0 else 0.0


def run(config, workdir, shard=(0, 1), progress=True, devices=None) -> dict:
  """Trains every missing cell of `config`'s shard into `workdir`; returns a summary.

  Validation (config, workdir) happens before anything is written or computed; a shard another
  process is sweeping raises results.WorkdirBusy, before anything is written. On accelerators,
  the next group's program is compiled (and its teacher drawn) on a background thread while a
  group trains (`ahead`). On CPU, where compiling and training compete for the same cores, every
  teacher is drawn and every program compiled first, one per core at a time (`all_first`), then
  the groups train. The summary gives the wall seconds JAX spent compiling (compile_seconds)
  and how many of them training waited (compile_wait_seconds).
  """
  plan = study.plan(config, shard)
  results.check_workdir(workdir, config)
  t_start = time.perf_counter()
  dtype = jax.numpy.dtype(config.train.dtype)
  variants = {}   # variant index -> (teacher, x_test, y_test, Var f*), drawn on first use

  def draw(v):
    """Draws variant v's teacher and test set (JAX settings are per thread: set here)."""
    with jax_settings(config):
      variant = plan.variants[v]
      teacher = teachers.make_teacher(variant.teacher, variant.inputs, dtype)
      x_test, y_test = data.test_set(teacher, variant.config.data.n_test, variant.config.data.test_seed, dtype)
      variants[v] = (teacher, x_test, y_test, evaluation.output_variance(y_test))

  def prepare(todo_item):
    """A group's student and compiled program (on a worker thread)."""
    group, missing, rect = todo_item
    if group.variant not in variants:
      draw(group.variant)
    with jax_settings(config):
      teacher, x_test, y_test, _ = variants[group.variant]
      student = students.make_student(group.student, teacher)
      phases = None
      if progress and progress_lib.wanted(plan, group, student, missing, len(devices or jax.local_devices())):
        phases = progress_lib.Phases(bar, _label(group, rect, plan.variants[group.variant]),
                                     len(missing) * group.members, group.train.check_every)
      return student, _compile(student, group, rect, x_test, y_test, devices, phases)

  with results.shard_lock(workdir, shard), results.Writer(workdir, config, shard) as writer, \
       jax_settings(config), compile_clock() as compiling:
    done = {results.cell_key(r) for r in results.load(workdir, plan.config_hash)}
    todo = [(g, *_todo(plan, g, done)) for g in plan.groups]
    todo = [t for t in todo if t[1]]
    total = sum(len(t[1]) for t in todo)
    bar = tqdm.tqdm(total=total, unit='cell', disable=not progress, dynamic_ncols=True,
                    desc=f'sweep {config.get("name", "")} shard {shard[0]}/{shard[1]}')
    waited = 0.0
    if (devices or jax.local_devices())[0].platform in COMPILE_FIRST_PLATFORMS:
      bar.set_postfix_str('compiling')
      waited += sum(w for _, _, w in all_first(draw, sorted({g.variant for g, _, _ in todo}), host.cores()))
      stream = all_first(prepare, todo, host.cores())   # the teachers are drawn by then
    else:
      stream = ahead(prepare, todo)
    for (group, missing, rect), (student, program), wait in stream:
      waited += wait
      variant = plan.variants[group.variant]
      bar.set_postfix_str(_label(group, rect, variant))
      _, x_test, y_test, y_var = variants[group.variant]
      out = program()
      first_compile = out['compile_seconds']
      out = _retry_diverged(out, student, group, rect, x_test, y_test, config, devices)
      waited += out['compile_seconds'] - first_compile   # retries compile on this thread
      writer.write(_records(plan, group, variant, student, rect, missing, out, shard, float(y_var)))
      bar.update(len(missing))
    bar.close()
    compile_s = compiling()
  summary = {'cells_trained': total, 'cells_done_before': len(done), 'wall_seconds': time.perf_counter() - t_start,
             'compile_seconds': compile_s, 'compile_wait_seconds': waited, 'software': host.software()}
  results.append_summary(workdir, config, shard, summary)
  return {**summary, 'results': str(writer.path)}
