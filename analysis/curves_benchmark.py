r"""Scores learning-curve estimators on published curves nobody here produced (docs/design.md §5).

  python -m analysis.curves_benchmark --out=bench.json

The benchmark of Alabdulmohsin et al. (2022): for every (Domain, Task, Model) curve, fit on the
rows with Training=1, predict the rows with Training=0, score the RMSE of log loss,
sqrt(mean((log ŷ − log y)²)). Reported per group and as the per-domain mean, for every
estimator of `analysis.estimators`; a group an estimator cannot fit is reported as failed.
Whether an estimator beats the domain's best baseline is decided per domain by the paired
differences over its groups (`versus_best`), not by the two means alone: a domain of 5 or 10
curves can order two means by chance.
"""

import collections
import csv
import hashlib
import json
import pathlib
import re
import sys
import time
import warnings

import numpy as np
import scipy.stats
from absl import app, flags

from analysis import estimators
from experiments import cli

FILES = ('benchmark.vision.csv', 'benchmark.lang.csv')
# The copy shipped with the project (data/scaling_benchmark/SOURCE.md names its origin and licence).
DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'scaling_benchmark'
# Losses bounded by 1 (error rates, BIG-bench scores): M4's ε0 and the envelope's ε0 stay <= 1.
BOUNDED_DOMAINS = ('IC', 'BB')

def checksums(data_dir) -> dict:
  """{file name: SHA-256} as listed in data_dir/SOURCE.md; {} where there is no SOURCE.md."""
  source = pathlib.Path(data_dir) / 'SOURCE.md'
  if not source.exists():
    return {}
  return dict(re.findall(r'`([\w.]+\.csv)`\s*\|\s*`([0-9a-f]{64})`', source.read_text()))


def load(data_dir=DATA_DIR) -> dict:
  """{(domain, task, model): (x_fit, y_fit, x_test, y_test)}, each sorted by x, duplicates merged.

  A file whose SHA-256 differs from the one its folder's SOURCE.md lists raises ValueError.
  """
  rows = collections.defaultdict(lambda: ({}, {}))
  expected = checksums(data_dir)
  for name in FILES:
    path = pathlib.Path(data_dir) / name
    if not path.exists():
      raise FileNotFoundError(f'{path} not found')
    if name in expected and hashlib.sha256(path.read_bytes()).hexdigest() != expected[name]:
      raise ValueError(f'{path} differs from the published file (its SHA-256 is not the one SOURCE.md lists)')
    with open(path, newline='') as f:
      for r in csv.DictReader(f):
        key = (r['Domain'], r['Task'], r['Model'])
        rows[key][0 if r['Training'] == '1' else 1][float(r['Seen Examples'])] = float(r['Loss'])
  out = {}
  for key, (fit_rows, test_rows) in sorted(rows.items()):
    xf, xt = sorted(fit_rows), sorted(test_rows)
    out[key] = (np.asarray(xf), np.asarray([fit_rows[x] for x in xf]),
                np.asarray(xt), np.asarray([test_rows[x] for x in xt]))
  return out


def rmse_log(y_pred, y_true) -> float:
  y_pred = np.asarray(y_pred, float)
  if not np.all(np.isfinite(y_pred)) or np.any(y_pred <= 0):
    return float('nan')
  return float(np.sqrt(np.mean((np.log(y_pred) - np.log(y_true)) ** 2)))


def score(curves: dict, names) -> dict:
  """Per-group and per-domain RMSE of log loss for each estimator."""
  groups, per_domain = [], collections.defaultdict(lambda: collections.defaultdict(list))
  for (domain, task, model), (xf, yf, xt, yt) in curves.items():
    upper = 1.0 if domain in BOUNDED_DOMAINS else None
    entry = {'domain': domain, 'task': task, 'model': model, 'n_fit': len(xf), 'n_test': len(xt)}
    for name in names:
      try:
        with warnings.catch_warnings():
          warnings.simplefilter('ignore')
          predict = estimators.ESTIMATORS[name](xf, yf, upper=upper)
          value = rmse_log(predict(xt), yt)
        entry[name] = value if np.isfinite(value) else 'failed'
      except (estimators.FitError, ValueError, FloatingPointError, RuntimeError, np.linalg.LinAlgError):
        entry[name] = 'failed'
      if entry[name] != 'failed':
        per_domain[domain][name].append(entry[name])
    groups.append(entry)
  domains = {}
  for domain in sorted({g['domain'] for g in groups}):
    n_groups = sum(g['domain'] == domain for g in groups)
    domains[domain] = {name: {'mean_rmse_log': float(np.mean(per_domain[domain][name])) if per_domain[domain][name] else None,
                              'groups_scored': len(per_domain[domain][name]),
                              'groups_failed': n_groups - len(per_domain[domain][name])}
                       for name in names}
  return {'domains': domains, 'groups': groups}


def versus_best(report, names, *, level: float = 0.95) -> dict:
  """Per domain, each non-baseline estimator in `names` against the baseline (M1–M4) with the
  lowest mean there: the paired differences d = RMSE(estimator) − RMSE(baseline) over the groups
  both scored, their mean with a t interval, the groups won, and the verdict: 'better' or 'worse'
  where the interval excludes 0, else 'not distinguishable'."""
  out = {}
  for domain, d in report['domains'].items():
    scored = [b for b in estimators.BASELINES if b in names and d[b]['mean_rmse_log'] is not None]
    if not scored:
      continue
    best = min(scored, key=lambda b: d[b]['mean_rmse_log'])
    groups = [g for g in report['groups'] if g['domain'] == domain]
    out[domain] = {'baseline': best}
    for name in names:
      if name in estimators.BASELINES:
        continue
      diff = np.asarray([g[name] - g[best] for g in groups if 'failed' not in (g[name], g[best])])
      entry = {'groups': len(diff), 'won': int(np.sum(diff < 0)), 'mean_diff': None, 'interval': None,
               'verdict': 'not distinguishable'}
      if len(diff) >= 2:
        half = scipy.stats.t.ppf((1 + level) / 2, len(diff) - 1) * np.std(diff, ddof=1) / np.sqrt(len(diff))
        lo, hi = float(diff.mean() - half), float(diff.mean() + half)
        entry.update(mean_diff=float(diff.mean()), interval=[lo, hi],
                     verdict='better' if hi < 0 else 'worse' if lo > 0 else 'not distinguishable')
      out[domain][name] = entry
  return out


def versus_table(versus: dict, names) -> str:
  lines = []
  for domain, v in versus.items():
    for name in names:
      e = v.get(name)
      if e is None or name == v['baseline']:
        continue
      diff = (f'{e["mean_diff"]:+.4f} [{e["interval"][0]:+.4f}, {e["interval"][1]:+.4f}]'
              if e['interval'] else 'n/a')
      lines.append(f'{domain:6} {name:>9} vs {v["baseline"]}: {diff}, won {e["won"]}/{e["groups"]}: {e["verdict"]}')
  return '\n'.join(lines)


def table(report, names) -> str:
  lines = ['domain ' + ' '.join(f'{n:>9}' for n in names)]
  for domain, d in report['domains'].items():
    cells = [f'{d[n]["mean_rmse_log"]:9.4f}' if d[n]['mean_rmse_log'] is not None else f'{"failed":>9}' for n in names]
    lines.append(f'{domain:6} ' + ' '.join(cells))
  return '\n'.join(lines)


def main(argv):
  del argv
  names = cli.choices_or_fail('estimators', estimators.ESTIMATORS, 'estimators')
  out = cli.output_file_or_fail('out')
  curves = cli.or_fail(load, flags.FLAGS.data_dir)
  t0 = time.perf_counter()
  report = score(curves, names)
  report['seconds'] = time.perf_counter() - t0
  report['versus_best_baseline'] = versus_best(report, names)
  report['baselines'] = list(estimators.BASELINES)
  report['reference'] = list(estimators.REFERENCE)
  out.write_text(json.dumps(report, indent=1) + '\n')
  print(table(report, names))
  print('\nRMSE difference against the domain\'s best baseline, mean over groups [95% t interval]:')
  print(versus_table(report['versus_best_baseline'], names))
  print(f'{len(report["groups"])} groups in {report["seconds"]:.0f} s; written to {out}', file=sys.stderr)


if __name__ == '__main__':
  # Flags belong to the entry point: the module is also imported by others.
  flags.DEFINE_string('data_dir', str(DATA_DIR), 'Folder of the CSV files (default: the copy shipped with the project).')
  flags.DEFINE_string('out', None, 'Where to write the JSON report.')
  flags.DEFINE_list('estimators', list(estimators.ESTIMATORS), 'Estimators to score.')
  app.run(main, flags_parser=cli.parse_flags)
