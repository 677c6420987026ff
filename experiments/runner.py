"""Runs a study's cells into its workdir: validate, skip what is done, train, record (DESIGN §4)."""

import contextlib
import dataclasses
import datetime
import json
import time

import jax
import numpy as np
import tqdm

from experiments import results
from experiments import study
from teacher_student import data, engine, students, teachers


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
  """The replicates and n's of `group` that have a missing cell (a rectangle covering them)."""
  ns = group.ns
  missing = [(n, r) for r in group.replicates for n in ns if plan.cell_key(group, n, r) not in done]
  reps = tuple(r for r in group.replicates if any(mr == r for _, mr in missing))
  todo_ns = tuple(n for n in ns if any(mn == n for mn, _ in missing))
  return missing, reps, todo_ns


def _train(student, group, reps, ns, x_test, y_test, config, devices):
  """Trains a rectangle of cells, retrying diverged ones with a smaller learning rate.

  An ensemble cell's K members are rows of their own: replicate (seed, 0) becomes K rows
  (seed, 0..K-1), and the test predictions come back too.
  """
  kw = dict(ns=list(ns), x_test=x_test, y_test=y_test, devices=devices, predictions=group.kind == 'ensemble')
  reps = [(s, j) for s, _ in reps for j in range(group.members)]
  train = group.train
  out = engine.train_grid(student, train, seeds=[s for s, _ in reps], members=[m for _, m in reps], **kw)
  out['learning_rate'] = np.full(out['status'].shape, train.learning_rate)
  out['retries'] = np.zeros(out['status'].shape, int)
  for retry in range(1, config.train.max_retries + 1):
    if not config.train.retry_lr_factor:
      break
    bad = out['status'] == 'diverged'
    if not bad.any():
      break
    train = dataclasses.replace(train, learning_rate=train.learning_rate * config.train.retry_lr_factor)
    rows = np.flatnonzero(bad.any(axis=1))
    again = engine.train_grid(student, train, seeds=[reps[i][0] for i in rows],
                              members=[reps[i][1] for i in rows], **kw)
    for key in ('train_error', 'test_error', 'test_se', 'steps', 'stop', 'status'):
      out[key][rows] = np.where(bad[rows], again[key], out[key][rows])
    if 'test_predictions' in out:
      out['test_predictions'][rows] = np.where(bad[rows][..., None, None], again['test_predictions'],
                                               out['test_predictions'][rows])
    out['learning_rate'][rows] = np.where(bad[rows], train.learning_rate, out['learning_rate'][rows])
    out['retries'][rows] = np.where(bad[rows], retry, out['retries'][rows])
    out['compile_seconds'] += again['compile_seconds']
    out['run_seconds'] += again['run_seconds']
  return out


def ensemble_variance(pred_kxo, ok_k, y_var) -> float:
  """Half the mean pairwise squared disagreement of the ok members, normalized by Var f*.

  Over K members, mean_{j<l} (f_j − f_l)² / 2 is the unbiased variance across members, so this
  is the average over test points and outputs of that variance (DESIGN §2, estimator (c)).
  """
  pred = pred_kxo[ok_k]
  if len(pred) < 2:
    return float('nan')
  return float(np.mean(np.var(pred, axis=0, ddof=1)) / y_var)


def _ensemble_records(out, group, reps, ns, y_var):
  """Folds the K member rows of each ensemble cell into one (seed, n) result."""
  k = group.members
  by_cell = {}
  for i, rep in enumerate(reps):
    rows = slice(i * k, (i + 1) * k)
    for j, n in enumerate(ns):
      status = out['status'][rows, j]
      ok = status != 'diverged'
      by_cell[n, rep] = {
          'members': k, 'members_ok': int(ok.sum()),
          'ensemble_variance': _num(ensemble_variance(out['test_predictions'][rows, j], ok, y_var)),
          'member_test_errors': [_num(v) for v in out['test_error'][rows, j]],
          'member_status': [str(v) for v in status],
          'steps': int(out['steps'][rows, j].max()),
          'stop': ','.join(sorted(set(str(v) for v in out['stop'][rows, j]))),
          'status': 'ok' if ok.sum() >= 2 and all(status[ok] == 'ok') else
                    ('diverged' if ok.sum() < 2 else 'not_converged'),
          'train_error': _num(np.mean(out['train_error'][rows, j][ok])) if ok.any() else None,
          'test_error': _num(np.mean(out['test_error'][rows, j][ok])) if ok.any() else None,
          'test_se': _num(np.mean(out['test_se'][rows, j][ok])) if ok.any() else None,
          'learning_rate': float(np.min(out['learning_rate'][rows, j])),
          'retries': int(np.max(out['retries'][rows, j])),
      }
  return by_cell


def _records(plan, group, variant, student, reps, ns, missing, out, shard, y_var):
  seconds = out['compile_seconds'] + out['run_seconds']
  cells = len(reps) * len(ns)
  index = {(n, r): (i, j) for i, r in enumerate(reps) for j, n in enumerate(ns)}
  ensemble = _ensemble_records(out, group, reps, ns, y_var) if group.kind == 'ensemble' else {}
  now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
  recs = []
  for n, (seed, member) in missing:
    i, j = index[n, (seed, member)]
    rec = {
        'config_hash': plan.config_hash, 'kind': group.kind, 'variant': variant.label,
        'teacher': dataclasses.asdict(variant.teacher), 'm': group.width, 'n': n,
        'seed': seed, 'member': member, 'P': student.num_params,
        'steps': int(out['steps'][i, j]), 'stop': str(out['stop'][i, j]),
        'status': str(out['status'][i, j]),
        'train_error': _num(out['train_error'][i, j]), 'test_error': _num(out['test_error'][i, j]),
        'test_se': _num(out['test_se'][i, j]),
        'learning_rate': float(out['learning_rate'][i, j]), 'retries': int(out['retries'][i, j]),
        'wall_seconds': seconds / cells, 'group_seconds': seconds,
        'group_compile_seconds': out['compile_seconds'], 'group_cells': cells,
        'device': device_label(), 'shard': list(shard), 'finished_at': now}
    # An ensemble cell's rows are its members': its fields come from `ensemble` instead.
    rec.update(ensemble.get((n, (seed, member)), {}))
    recs.append(rec)
  return recs


def _num(x):
  """A JSON-safe float: NaN/inf (online train error, diverged cells) become None."""
  x = float(x)
  return x if np.isfinite(x) else None


def run(config, workdir, shard=(0, 1), progress=True, devices=None) -> dict:
  """Trains every missing cell of `config`'s shard into `workdir`; returns a summary.

  Validation (config, workdir) happens before anything is written or computed.
  """
  plan = study.plan(config, shard)
  results.check_workdir(workdir, config)
  t_start = time.perf_counter()
  with results.Writer(workdir, config, shard) as writer, jax_settings(config):
    done = {results.cell_key(r) for r in results.load(workdir, plan.config_hash)}
    todo = [(g, *_todo(plan, g, done)) for g in plan.groups]
    todo = [t for t in todo if t[1]]
    total = sum(len(t[1]) for t in todo)
    bar = tqdm.tqdm(total=total, unit='cell', disable=not progress, dynamic_ncols=True,
                    desc=f'sweep {config.get("name", "")} shard {shard[0]}/{shard[1]}')
    compile_s = 0.0
    dtype = jax.numpy.dtype(config.train.dtype)
    for v, variant in enumerate(plan.variants):
      groups = [t for t in todo if t[0].variant == v]
      if not groups:
        continue
      teacher = teachers.make_teacher(variant.teacher, variant.inputs, dtype)
      x_test, y_test = data.test_set(teacher, variant.config.data.n_test, variant.config.data.test_seed, dtype)
      y_var = float(engine.output_variance(y_test))
      for group, missing, reps, ns in groups:
        bar.set_postfix_str(f'{group.kind} m={group.width} {variant.label or ""}')
        student = students.make_student(group.student, teacher)
        out = _train(student, group, reps, ns, x_test, y_test, config, devices)
        compile_s += out['compile_seconds']
        writer.write(_records(plan, group, variant, student, reps, ns, missing, out, shard, y_var))
        bar.update(len(missing))
    bar.close()
  wall = time.perf_counter() - t_start
  return {'cells_trained': total, 'cells_done_before': len(done), 'wall_seconds': wall,
          'compile_seconds': compile_s, 'results': str(writer.path)}
