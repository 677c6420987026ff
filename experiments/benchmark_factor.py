"""The second phase's factorization against the machine's matmul (docs/design.md §6), in float64.

Per size P: the blocked Cholesky factorization (`cholesky.factor`), and the column-by-column loop
it replaced (`cholesky._column_factor` on the whole matrix, the fallback it keeps for its diagonal
blocks) up to COLUMN_LOOP_UP_TO, each timed as its best of `rounds` on one device; its FLOP rate
(P³/3 FLOPs, `launch_cost.cholesky_flops`) as a fraction of the float64 matmul rate measured at
the same size in the same run, and the blocked factorization's speed-up over the loop.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import launch_cost
from teacher_student import cholesky

SIZES = (256, 512, 1024, 1633, 2048)
COLUMN_LOOP_UP_TO = 1024   # beyond, the loop takes seconds per solve


def _best(f, a, rounds: int) -> float:
  f(a).block_until_ready()
  best = np.inf
  for _ in range(rounds):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return best


def measure(sizes=SIZES, rounds: int = 3) -> list[dict]:
  """One row per size: seconds, fraction of the matmul rate, speed-up over the column loop."""
  rows = []
  with jax.enable_x64(True):
    blocked = jax.jit(lambda a: cholesky.factor(a)[0])
    column = jax.jit(cholesky._column_factor)
    for size in sizes:
      j = np.random.default_rng(size).standard_normal((size + 16, size))
      a = jnp.asarray(j.T @ j + 1e-3 * np.eye(size))
      rate = launch_cost.matmul_flops(jnp.float64, size=size, repeats=rounds)
      seconds = _best(blocked, a, rounds)
      row = {'size': size, 'seconds': seconds, 'matmul_flops': rate,
             'fraction_of_matmul': launch_cost.cholesky_flops(size) / seconds / rate,
             'max_error_vs_lapack': float(np.max(np.abs(np.asarray(blocked(a)) - np.linalg.cholesky(np.asarray(a)))))}
      if size <= COLUMN_LOOP_UP_TO:
        row['column_loop_seconds'] = _best(column, a, 1)
        row['speedup_vs_column_loop'] = row['column_loop_seconds'] / seconds
      rows.append(row)
  return rows


def table(rows) -> str:
  out = ['| P | blocked factorization (s) | of float64 matmul | vs column loop |', '|---|---|---|---|']
  for r in rows:
    loop = f'{r["speedup_vs_column_loop"]:.1f}x' if 'speedup_vs_column_loop' in r else '–'
    out.append(f'| {r["size"]} | {r["seconds"]:.4f} | {r["fraction_of_matmul"]:.0%} | {loop} |')
  return '\n'.join(out) + '\n'
