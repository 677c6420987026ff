"""Shared test helpers: the tiny study (config, flags, subprocess CLI) and a small teacher."""

import os
import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np

from conftest import REORDER_TOL
from experiments import results
from experiments.configs import base
from teacher_student import data, inputs, teachers

ROOT = pathlib.Path(__file__).resolve().parents[1]

QUICK = 'experiments/configs/quick.py'

TINY = {'students.widths': '2,4', 'data.ns': '8,32', 'seeds': 2, 'train.steps': 300,
        'train.check_every': 100, 'data.n_test': 512, 'teacher.n_normalize': 4096,
        'decomposition.ensemble_members': 0, 'nyquist.cutoff': 0}
# Tests of bookkeeping (resume, forks, locks, schedules) need cells, not converged learners: they
# skip the second phase, whose program is half of the tiny study's compile time.
FIRST_ORDER = {'train__second_order': False}
GAUSS4 = inputs.InputSpec('gaussian', 4)
RELU_TEACHER = teachers.TeacherSpec('mlp', depth=1, width=4, activation='relu', gain=1.4,
                                    bias_scale=0.3, seed=1)


def tiny_config(**changes):
  c = base.get_config()
  c.students.widths, c.data.ns, c.seeds = (2, 4), (8, 32), 2
  c.train.steps, c.train.check_every = 300, 100
  c.data.n_test, c.teacher.n_normalize = 512, 4096
  c.decomposition.ensemble_members, c.nyquist.cutoff = 0, 0
  for field, value in changes.items():
    section, leaf = field.split('__')
    c[section][leaf] = value
  return c


def tiny_flags(dtype='float32', **changes):
  """Flags for the tiny study; `changes` override config fields (dots as '__').

  A tuple flag must not be given twice: config_flags appends the second to the first.
  """
  fields = {**TINY, 'train.dtype': dtype, **{k.replace('__', '.'): v for k, v in changes.items()}}
  return [f'--config.{k}={v}' for k, v in fields.items()]


def cli(module, *args, env=None, **kw):
  if module == 'experiments.sweep':
    args = (*args, '--progress=false')
  return subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True,
                        text=True, env={**os.environ, **(env or {})}, **kw)


def by_cell(records):
  return {results.cell_key(r): r for r in records}


def assert_same_cells(a, b, dtype):
  """The same cells, stopped alike, with the same errors where the learner converged. A cell
  that ran out of budget is compared by status only: its error is wherever the budget left a
  trajectory (a ReLU student crawling along kinks), which reduction order can move."""
  a, b = by_cell(a), by_cell(b)
  assert a.keys() == b.keys()
  rtol, atol = REORDER_TOL[dtype]
  for k in a:
    assert a[k]['steps'] == b[k]['steps'] and a[k]['status'] == b[k]['status'], k
    if a[k]['status'] == 'ok':
      np.testing.assert_allclose(a[k]['test_error'], b[k]['test_error'], rtol=rtol, atol=atol, err_msg=str(k))
  assert sum(r['status'] == 'ok' for r in a.values()) >= len(a) // 3   # a third of the cells at least are compared


def teacher_and_test_set(dtype, teacher_spec=RELU_TEACHER, ins=GAUSS4, n_test=2048):
  """A teacher and its held-out sample (x, y) in `dtype`."""
  t = teachers.make_teacher(teacher_spec, ins, dtype=jnp.dtype(dtype))
  x, y = data.test_set(t, n_test, seed=7, dtype=jnp.dtype(dtype))
  return t, x, y
