"""Validates the optimality-gap certificate (docs/design.md §2.6) on a study's smooth students.

Each sampled student (one at a time, at its own width) gets both phases; where the second phase
stopped 'stationary' by the gap (‖∇L‖ above train.stationary_tol), the same second phase runs
again from the same start without that certificate and with 10 times the steps it took. Prints
one JSON line per student and a summary: the largest relative change of the test error, which
the certificate claims is below 1%.

  python -m experiments.certificate_check --config=experiments/configs/quick.py --kind=nyquist
"""

import dataclasses
import json
import time

from absl import app, flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from experiments import study
from teacher_student import data, evaluation, loop, second_order, students, teachers

config_flags.DEFINE_config_file('config', 'experiments/configs/quick.py', 'Config file of the study.', lock_config=True)
_KIND = flags.DEFINE_enum('kind', 'nyquist', list(study.KINDS), 'Which cells\' students to sample.')
_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds per (width, n).', lower_bound=1)
_FACTOR = flags.DEFINE_integer('factor', 10, 'How many times longer the check trains.', lower_bound=2)


def check_one(student, train, x_nd, y_nk, n, init_key, batch_key, x_test, y_test, factor) -> dict:
  """One student's certificate and its longer run (module docstring)."""
  y_var = evaluation.output_variance(y_test)
  test_error = lambda p: float(jnp.mean((student.apply(p, x_test) - y_test) ** 2) / y_var)
  first = jax.jit(lambda p: loop.train_one(student, train, p, x_nd, y_nk, n, batch_key, y_var))(
      student.init(init_key, train.jnp_dtype))
  def refine(tr, gap_rtol):
    return jax.jit(lambda p: second_order.refine(student, tr, p, x_nd, y_nk, n, y_var, batch_key,
                                                 gap_rtol=gap_rtol))(first.params)
  t0 = time.perf_counter()
  done = refine(train, second_order.GAP_RTOL)
  row = dict(steps=int(done.steps), stop=loop.STOP_REASONS[int(done.reason)], grad_norm=float(done.grad_norm),
             loss=float(done.loss), test_error=test_error(done.params), seconds=time.perf_counter() - t0)
  row['by_gap'] = row['stop'] == 'stationary' and row['grad_norm'] > train.stationary_tol
  if row['by_gap']:
    longer = refine(dataclasses.replace(train, second_order_steps=factor * row['steps']), 0.0)   # certificate off
    row.update(longer_steps=int(longer.steps), longer_stop=loop.STOP_REASONS[int(longer.reason)],
               loss_change=(row['loss'] - float(longer.loss)) / row['loss'],
               test_change=abs(test_error(longer.params) - row['test_error']) / row['test_error'])
  return row


def main(argv):
  del argv
  jax.config.update('jax_enable_x64', True)
  config = flags.FLAGS.config
  plan = study.plan(config)
  groups = [g for g in plan.groups if g.kind == _KIND.value]
  if not groups:
    raise app.UsageError(f'the config has no {_KIND.value!r} cells')
  rows = []
  for v in sorted({g.variant for g in groups}):
    variant = plan.variants[v]
    train = variant.train
    teacher = teachers.make_teacher(variant.teacher, variant.inputs, train.jnp_dtype)
    x_test, y_test = data.test_set(teacher, variant.config.data.n_test, variant.config.data.test_seed, train.jnp_dtype)
    widths = sorted({m for g in groups if g.variant == v for m in g.cell_widths})
    ns = sorted({n for g in groups if g.variant == v for n in g.ns if n is not None})
    for m in widths:
      student = students.make_student(variant.student(m), teacher)
      if student.kinked:
        continue
      for n in ns:
        for seed in range(_SEEDS.value):
          x_nd, y_nk = data.train_pool(teacher, seed, n, train.noise_std, train.jnp_dtype)
          init_key, batch_key = data.member_keys(seed, 0)
          row = dict(variant=variant.label, m=m, n=n, seed=seed,
                     **check_one(student, train, x_nd, y_nk, n, init_key, batch_key, x_test, y_test, _FACTOR.value))
          print(json.dumps(row), flush=True)
          rows.append(row)
  checked = [r for r in rows if r['by_gap']]
  changes = np.array([r['test_change'] for r in checked])
  print(json.dumps(dict(students=len(rows), certified_by_gap=len(checked),
                        test_change_max=float(changes.max()) if checked else None,
                        test_change_median=float(np.median(changes)) if checked else None,
                        over_1_percent=int(np.sum(changes >= 0.01)))))


if __name__ == '__main__':
  app.run(main)
