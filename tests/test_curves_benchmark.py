"""analysis.curves_benchmark: the fitter on published learning curves, and its CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis import curves_benchmark, estimators
from conftest import shared_dir


def test_benchmark_on_published_curves():
  curves = curves_benchmark.load(shared_dir('data', 'scaling_benchmark'))
  assert len(curves) == 92
  domains = {}
  for key in curves:
    domains.setdefault(key[0], []).append(key)
  assert {d: len(k) for d, k in domains.items()} == {'IC': 72, 'NMT': 5, 'LM': 5, 'BB': 10}
  # The first curve of each domain (scoring every estimator on a curve takes 4-6 s here).
  subset = {k: curves[k] for d in sorted(domains) for k in domains[d][:1]}
  report = curves_benchmark.score(subset, list(estimators.ESTIMATORS))
  assert len(report['groups']) == 4
  for g in report['groups']:
    xf, yf, xt, yt = subset[g['domain'], g['task'], g['model']]
    lb, c = np.polyfit(np.log(xf), np.log(yf), 1)[::-1]      # M1 is log-log least squares
    assert g['M1'] == pytest.approx(np.sqrt(np.mean((lb + c * np.log(xt) - np.log(yt)) ** 2)), rel=1e-6)
    assert all(g[name] != 'failed' for name in estimators.OURS)
    assert g['last'] == pytest.approx(np.sqrt(np.mean((np.log(yf[-1]) - np.log(yt)) ** 2)), rel=1e-12)
  # The language-model curves are smooth: the blend extrapolates them to within 1% in log loss.
  assert all(g['blend'] < 0.01 for g in report['groups'] if g['domain'] == 'LM')


def test_benchmark_cli_reports_failures(tmp_path):
  header = 'Domain,Task,Model,Seen Examples,Loss,Training\n'
  rows = [f'LM,val_loss,1e6,{x},{0.5 + 3 * x ** -0.4},{int(x < 1e6)}' for x in 2.0 ** np.arange(10, 24)]
  rows += ['NMT,log_perplexity,"6 Enc, 6 Dec",1000.0,0.9,1', 'NMT,log_perplexity,"6 Enc, 6 Dec",1e9,0.3,0']
  (tmp_path / 'benchmark.lang.csv').write_text(header + '\n'.join(rows))
  (tmp_path / 'benchmark.vision.csv').write_text(header.strip())
  out = subprocess.run([sys.executable, '-m', 'analysis.curves_benchmark', f'--data_dir={tmp_path}',
                        f'--out={tmp_path / "r.json"}', '--estimators=M1,M4,offset,blend'],
                       capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  report = json.loads((tmp_path / 'r.json').read_text())
  nmt = [g for g in report['groups'] if g['domain'] == 'NMT'][0]
  assert all(nmt[e] == 'failed' for e in ('M1', 'M4', 'offset', 'blend'))   # one point cannot be fitted
  assert report['domains']['NMT']['offset']['groups_failed'] == 1
  assert report['domains']['LM']['offset']['mean_rmse_log'] < 1e-3
