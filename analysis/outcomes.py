"""Training outcomes per cell (docs/design.md §2.7): each converged student is recovered (test error
at the recovery threshold τ or below), an interpolant (training error at the floor, test error
above τ) or stationary (a certified stationary point above the floor).

τ is read off the data: the floor students' test errors fall in two groups, those set by rounding
and conditioning (recovered) and those set by n (interpolants), decades apart. τ is the geometric
midpoint of the widest gap between consecutive log10 test errors, with the training floor and
TOP as edges, so that a study with no recovered student (or no interpolant) says so.
"""

import math
from typing import NamedTuple

import numpy as np
import scipy.stats

from teacher_student import students

OUTCOMES = ('recovered', 'interpolant', 'stationary')
# The search window's top: a float64 student whose test error is above 1e-6 has not computed the
# teacher's function, whatever its conditioning.
TOP = 1e-6


class Threshold(NamedTuple):
  """The recovery threshold τ and the gap it sits in (log10 of its two edges)."""
  tau: float
  gap_lo: float
  gap_hi: float


def recovery_threshold(test_errors, floor: float, top: float = TOP) -> Threshold:
  """τ from the test errors of students whose training error reached `floor` (any shape)."""
  e = np.asarray(test_errors, float).ravel()
  e = e[np.isfinite(e) & (e > 0) & (e <= top)]
  edges = np.unique(np.concatenate([np.log10(e), [math.log10(floor), math.log10(top)]]))
  gaps = np.diff(edges)
  k = int(np.argmax(gaps))
  return Threshold(float(10 ** ((edges[k] + edges[k + 1]) / 2)), float(edges[k]), float(edges[k + 1]))


def classify(train, test, ok, floor: float, tau: float) -> np.ndarray:
  """Outcome per student (arrays of one shape): 'recovered', 'interpolant', 'stationary', or ''
  where the student did not converge (`ok` False)."""
  train, test, ok = (np.asarray(a) for a in (train, test, ok))
  at_floor = train <= floor
  out = np.where(at_floor & (test <= tau), 'recovered', np.where(at_floor, 'interpolant', 'stationary'))
  return np.where(ok, out, '').astype(object)


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
  """Wilson's score interval for a binomial share k/n (NaN, NaN for n = 0)."""
  if n == 0:
    return float('nan'), float('nan')
  z = scipy.stats.norm.ppf((1 + level) / 2)
  p = k / n
  centre = (p + z * z / (2 * n)) / (1 + z * z / n)
  half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
  return max(0.0, centre - half), min(1.0, centre + half)


def cell_columns(outcome_s, test_s) -> dict:
  """decomposition.csv's outcome columns for one (m, n) from its seeds' outcomes and test errors:
  per outcome o, o_count, o_share with its Wilson interval (o_share_lo, o_share_hi), o_mean and
  o_geomean of the test errors (NaN where no seed has it); shares are of the converged seeds."""
  outcome_s, test_s = np.asarray(outcome_s, object), np.asarray(test_s, float)
  converged = int(np.sum(outcome_s != ''))
  out = {}
  for o in OUTCOMES:
    errs = test_s[(outcome_s == o) & (test_s > 0)]
    lo, hi = wilson(len(errs), converged)
    out.update({f'{o}_count': len(errs), f'{o}_share': len(errs) / converged if converged else float('nan'),
                f'{o}_share_lo': lo, f'{o}_share_hi': hi,
                f'{o}_mean': float(errs.mean()) if len(errs) else float('nan'),
                f'{o}_geomean': float(np.exp(np.mean(np.log(errs)))) if len(errs) else float('nan')})
  return out


COLUMNS = tuple(f'{o}_{k}' for o in OUTCOMES for k in ('count', 'share', 'share_lo', 'share_hi', 'mean', 'geomean'))


def realizable_from(variant, widths) -> int | None:
  """The teacher's width where the embedding certificate makes some of `widths` realizable (the
  smallest certified width is then the teacher's), else None."""
  certified = [int(m) for m in widths if students.certified_realizable(variant.student(int(m)), variant.teacher)]
  return min(certified) if certified else None


class Students(NamedTuple):
  """A variant's students at finite n as (M, S, N) arrays (NaN where not converged), the teacher's
  width where the certificate applies (`realizable_from`), the widths it makes realizable (M,),
  and the recovery threshold read off them."""
  train: np.ndarray
  test: np.ndarray
  teacher_width: int | None
  realizable: np.ndarray
  threshold: Threshold


def of_variant(g, tr, variant) -> Students:
  """`tables.grid`s of a variant's test (g) and training (tr) errors -> its Students, with τ from
  the floor students at realizable widths (`recovery_threshold`). The online column is left out:
  its training error is not measured, so it has no outcome."""
  finite = np.isfinite(g['ns'])
  train, test = tr['values'][:, :, finite], g['values'][:, :, finite]
  width = realizable_from(variant, g['ms'])
  realizable = np.asarray([width is not None and m >= width for m in g['ms']], bool)
  floor = variant.train.floor
  return Students(train, test, width, realizable,
                  recovery_threshold(test[(train <= floor) & realizable[:, None, None]], floor))


def dominant(rows) -> list[dict]:
  """Per (m, n) row of decomposition columns: which outcome sets the seed mean (the largest
  share × mean test error) and its part of ε."""
  out = []
  for r in rows:
    parts = {o: r[f'{o}_share'] * r[f'{o}_mean'] for o in OUTCOMES if r[f'{o}_count']}
    if parts:
      top = max(parts, key=parts.get)
      out.append({'m': r['m'], 'n': r['n'], 'outcome': top, 'part': parts[top] / sum(parts.values())})
  return out


def collapse(rows, teacher_width: int, n_star: int) -> list[dict]:
  """Per width above the teacher's: the two consecutive sample counts between which the
  interpolants' geometric-mean error falls most, by how many decades, and whether they bracket the
  student's parameter count P(m) and the teacher's n*."""
  out = []
  for m in sorted({r['m'] for r in rows if r['m'] > teacher_width}):
    cells = sorted((r for r in rows if r['m'] == m and r['interpolant_count']), key=lambda r: r['n'])
    if len(cells) < 2:
      continue
    drops = [(math.log10(a['interpolant_geomean']) - math.log10(b['interpolant_geomean']), a, b)
             for a, b in zip(cells, cells[1:])]
    drop, a, b = max(drops, key=lambda d: d[0])
    out.append({'m': m, 'P': a['P'], 'n_from': a['n'], 'n_to': b['n'], 'decades': drop,
                'brackets_P': a['n'] < a['P'] <= b['n'], 'brackets_n_star': a['n'] < n_star <= b['n']})
  return out


def sensitivity(train, test, ok, floor: float, tau: float, factor: float = 100.0) -> dict:
  """Outcome counts at τ / factor, τ and τ · factor: how much the split depends on where τ sits."""
  out = {}
  for label, t in ((f'tau/{factor:g}', tau / factor), ('tau', tau), (f'tau*{factor:g}', tau * factor)):
    o = classify(train, test, ok, floor, t)
    out[label] = {k: int(np.sum(o == k)) for k in OUTCOMES}
  return out
