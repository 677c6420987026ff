"""A sweep's records arranged as curves: per variant and width, a (seeds × n) error array."""

import collections
import json
import warnings

import numpy as np

ONLINE = float('inf')   # the n of the online column
STATUSES = ('ok', 'not_converged', 'diverged')


def _n(record) -> float:
  return ONLINE if record['n'] is None else float(record['n'])


def variants(records, kind='student') -> list[dict]:
  """The distinct variants (ablation levels) of `kind` cells, in first-seen order ({} without
  an ablation)."""
  seen = {}
  for r in records:
    if r['kind'] == kind:
      seen.setdefault(json.dumps(r['variant'], sort_keys=True), r['variant'])
  return list(seen.values())


def grid(records, *, kind='student', variant=None, field='test_error') -> dict:
  """{'ms': (M,), 'ns': (N,) (inf = online), 'replicates': (S,), 'values': (M, S, N), 'P': (M,),
  'unconverged': values of the cells not 'ok' (M, S, N), 'counts': {status: (M, N) counts},
  'diverged': count}. Only converged ('ok') cells have values: the others are NaN there, never
  averaged in, and counted per (m, n); replicates are (seed, member) pairs."""
  key = None if variant is None else json.dumps(variant, sort_keys=True)
  recs = [r for r in records if r['kind'] == kind and (key is None or json.dumps(r['variant'], sort_keys=True) == key)]
  ms = sorted({r['m'] for r in recs})
  ns = sorted({_n(r) for r in recs})
  reps = sorted({(r['seed'], r['member']) for r in recs})
  values = np.full((len(ms), len(reps), len(ns)), np.nan)
  unconverged = np.full_like(values, np.nan)
  counts = {s: np.zeros((len(ms), len(ns)), int) for s in STATUSES}
  params = {}
  for r in recs:
    params[r['m']] = r['P']
    v = r.get(field)
    i, j = ms.index(r['m']), ns.index(_n(r))
    counts[r['status']][i, j] += 1
    if v is not None and r['status'] != 'diverged':
      (values if r['status'] == 'ok' else unconverged)[i, reps.index((r['seed'], r['member'])), j] = v
  return {'ms': np.asarray(ms, float), 'ns': np.asarray(ns, float), 'replicates': reps, 'values': values,
          'unconverged': unconverged, 'counts': counts, 'P': np.asarray([params[m] for m in ms], float),
          'diverged': int(counts['diverged'].sum())}


def mean_se(values_sn, axis=0):
  """Mean over seeds and its standard error (NaN-aware)."""
  # An (m, n) with no converged seed is NaN by design (counted elsewhere), not a warning.
  with np.errstate(invalid='ignore', divide='ignore'), warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)
    count = np.sum(np.isfinite(values_sn), axis=axis)
    mean = np.nanmean(values_sn, axis=axis) if values_sn.size else np.array([])
    sd = np.nanstd(values_sn, axis=axis, ddof=1) if values_sn.shape[axis] > 1 else np.zeros_like(mean)
    return mean, np.where(count > 1, sd / np.sqrt(np.maximum(count, 1)), np.nan), count


def status_counts(records, kind='student') -> dict:
  return dict(collections.Counter(r['status'] for r in records if r['kind'] == kind))


def stop_counts(records, stop: str, *, kind='student', variant=None) -> dict:
  """{(m, n): number of 'ok' cells that stopped for `stop`} (n None: online)."""
  key = None if variant is None else json.dumps(variant, sort_keys=True)
  out = collections.Counter()
  for r in records:
    if r['kind'] == kind and r['status'] == 'ok' and r.get('stop') == stop and (
        key is None or json.dumps(r['variant'], sort_keys=True) == key):
      out[(r['m'], r['n'])] += 1
  return dict(out)
