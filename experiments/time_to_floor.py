"""Time to converged: the quick study's realizable students driven to the training-error floor by
the engine's two phases vs by first-order steps alone (docs/design.md §2 "Converged learner", §6).

Cells: the quick preset's students at one realizable width (m >= the teacher's) and one n, all
seeds, float64. Each way is the engine's grid program (`engine.compile_grid`; run time only):
  two phases   the preset's train spec (first order, then the second-order phase)
  first order  second_order off, tol = train.floor and FIRST_ORDER_CAP × the preset's steps
Reports wall seconds, cells at the floor and stop reasons for each, and the ratio of the times;
when first order leaves cells above the floor at its cap, the ratio is a lower bound on the
speed-up to the floor (`ratio_is_lower_bound`), and a ratio below 1 only says first order stopped
sooner, not that it got there."""

import dataclasses
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import study
from teacher_student import data, engine, students, teachers

FIRST_ORDER_CAP = 10   # first order alone gets this many times the preset's first-phase steps


def _stops(stop_s) -> dict:
  return {str(r): int(c) for r, c in zip(*np.unique(np.asarray(stop_s), return_counts=True))}


def measure(config: ml_collections.ConfigDict, m: int, n: int) -> dict:
  """Both ways on the cells (m, n, every seed) of `config` (a study config in float64)."""
  with jax.enable_x64(True):
    variant = study.plan(config).variants[0]
    train = variant.train
    if train.jnp_dtype != jnp.float64:
      raise ValueError('time to floor is measured in float64 (the floor 1e-20 is below float32 precision)')
    if not students.certified_realizable(variant.student(m), variant.teacher):
      raise ValueError(f'width {m} does not contain the teacher: its floor is not 0')
    teacher = teachers.make_teacher(variant.teacher, variant.inputs, dtype=jnp.float64)
    student = students.make_student(variant.student(m), teacher)
    x_test, y_test = data.test_set(teacher, config.data.n_test, config.data.test_seed, jnp.float64)
    grid = dict(seeds=list(range(config.seeds)), ns=[n], x_test=x_test, y_test=y_test)
    first_order = dataclasses.replace(train, second_order=False, steps=FIRST_ORDER_CAP * train.steps, tol=train.floor)
    out = {'m': m, 'n': n, 'cells': config.seeds, 'floor': train.floor, 'first_order_steps': first_order.steps}
    for name, spec in (('two_phase', train), ('first_order', first_order)):
      done = engine.compile_grid(student, spec, **grid)()
      out.update({f'{name}_seconds': float(done['run_seconds']),
                  f'{name}_at_floor': int(np.sum(done['train_error'] <= train.floor)),
                  f'{name}_stops': _stops(done['stop'])})
  out['ratio'] = out['first_order_seconds'] / out['two_phase_seconds']
  out['ratio_is_lower_bound'] = out['first_order_at_floor'] < config.seeds
  return out
