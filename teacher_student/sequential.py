"""The one-at-a-time reference for the grid program: each student trained alone."""

import dataclasses
import functools
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from teacher_student import batch_budget, compilation, engine, second_order
from teacher_student import data as data_lib
from teacher_student import evaluation as evaluation_lib
from teacher_student.train_spec import TrainSpec


def train_sequential(student, train: TrainSpec, *, seeds: Sequence[int], ns: Sequence[int | None] | None,
                     x_test, y_test, members: Sequence[int] | None = None, widths: Sequence[int] | None = None,
                     predictions: bool = False) -> dict:
  """Each student trained alone by its own compiled program (the whole training in one
  `lax.while_loop`, as `second_order.train_to_floor`), at exactly its width and on exactly its n points (no
  padding, no mask). Same replicates, same data, same results as `engine.train_grid` up to
  floating-point reduction order, and the same dict. A program is compiled ahead of time the
  first time its (width, n) is met, counted in compile_seconds, not run_seconds (nor are the
  initial parameters and pools, drawn before the clock starts)."""
  grid = engine.prepare(student, train, seeds, members, ns, widths, x_test, y_test)
  dtype = train.jnp_dtype
  n_max = max([n for n in grid.ns if n is not None], default=1)
  compiled = {}   # (width, points, online) -> (compiled trainer, compiled evaluation)
  device = jax.devices()[0]
  compile_s = 0.0
  trained, evaluated = [], []
  replicates = []   # (student, batch key, initial parameters, pool), drawn before the clock starts
  for seed, member, width in zip(seeds, grid.members, grid.widths):
    alone = student.replace(spec=dataclasses.replace(student.spec, width=width))
    init_key, batch_key = data_lib.member_keys(seed, member)
    # One pool, sliced: a pool drawn at size n has the same inputs (data.py) but labels that may
    # differ in the last bit, which training can amplify.
    replicates.append((alone, batch_key, alone.init(init_key, dtype),
                       data_lib.train_pool(student.teacher, seed, n_max, train.noise_std, dtype)))
  jax.block_until_ready([(params, pool) for _, _, params, pool in replicates])
  t0 = time.perf_counter()
  for alone, batch_key, params, (x_pool, y_pool) in replicates:
    for n in grid.ns:
      points = 1 if n is None else n
      key = (alone.spec.width, points, n is None)
      train_args = (params, x_pool[:points], y_pool[:points], jnp.int32(points), batch_key, grid.y_var)
      eval_args = (params, x_pool[:points], y_pool[:points], jnp.int32(0 if n is None else n), grid.x_test,
                   grid.y_test, grid.y_var)
      if key not in compiled:
        tc = time.perf_counter()
        flat = batch_budget.uses_flat_params(alone, train, train.online_batch if n is None else points, device)
        trainer = jax.jit(functools.partial(second_order.train_to_floor, alone, train, online=n is None,
                                            flat_params=flat))
        ev = jax.jit(functools.partial(evaluation_lib.evaluate, alone, predictions=predictions))
        compiled[key] = (trainer.lower(*train_args).compile(compilation.options('training', device.platform)),
                         ev.lower(*eval_args).compile(compilation.options('evaluation', device.platform)))
        compile_s += time.perf_counter() - tc
      trainer, ev = compiled[key]
      result = trainer(*train_args)
      trained.append(result._replace(params=None))
      evaluated.append(jax.block_until_ready(ev(result.params, *eval_args[1:])))
  run_s = time.perf_counter() - t0 - compile_s
  shape = (len(seeds), len(grid.ns))
  stack = lambda values: np.stack(values).reshape(*shape, *np.shape(values[0]))
  stack_all = lambda rows, kind: kind(*(None if rows[0][i] is None else stack([r[i] for r in rows])
                                        for i in range(len(rows[0]))))
  return engine.results(stack_all(trained, second_order.Converged), stack_all(evaluated, evaluation_lib.Evaluation),
                        compile_s, run_s)
