"""analysis.curves_benchmark: the fitter on published learning curves, and its CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis import curves_benchmark, estimators


def test_benchmark_on_published_curves():
  curves = curves_benchmark.load()   # the copy shipped with the project, its checksums verified
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


def test_a_changed_file_is_refused(tmp_path):
  for name in (*curves_benchmark.FILES, 'SOURCE.md'):
    (tmp_path / name).write_bytes((curves_benchmark.DATA_DIR / name).read_bytes())
  assert set(curves_benchmark.checksums(tmp_path)) == set(curves_benchmark.FILES)
  lang = tmp_path / 'benchmark.lang.csv'
  lang.write_bytes(lang.read_bytes().replace(b'0.999', b'0.998', 1))   # one digit of one loss
  with pytest.raises(ValueError, match='benchmark.lang.csv differs from the published file'):
    curves_benchmark.load(tmp_path)


def test_benchmark_cli_reports_failures(tmp_path):
  header = 'Domain,Task,Model,Seen Examples,Loss,Training\n'
  rows = [f'LM,val_loss,1e6,{x},{0.5 + 3 * x ** -0.4},{int(x < 1e6)}' for x in 2.0 ** np.arange(10, 24)]
  rows += ['NMT,log_perplexity,"6 Enc, 6 Dec",1000.0,0.9,1', 'NMT,log_perplexity,"6 Enc, 6 Dec",1e9,0.3,0']
  (tmp_path / 'benchmark.lang.csv').write_text(header + '\n'.join(rows))
  (tmp_path / 'benchmark.vision.csv').write_text(header.strip())
  out = subprocess.run([sys.executable, '-m', 'analysis.curves_benchmark', f'--data_dir={tmp_path}',
                        f'--out={tmp_path / "r.json"}', '--estimators=M1,M4,offset'],
                       capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  report = json.loads((tmp_path / 'r.json').read_text())
  nmt = [g for g in report['groups'] if g['domain'] == 'NMT'][0]
  assert all(nmt[e] == 'failed' for e in ('M1', 'M4', 'offset'))   # one point cannot be fitted
  assert report['domains']['NMT']['offset']['groups_failed'] == 1
  assert report['domains']['LM']['offset']['mean_rmse_log'] < 1e-3


def test_versus_best_baseline_is_a_paired_test():
  def groups(domain, m1, m2, blend):
    return [{'domain': domain, 'M1': a, 'M2': b, 'blend': c} for a, b, c in zip(m1, m2, blend)]
  # X: M2 is the better baseline; blend beats it by 0.02, 0.04, 0.03: mean −0.03, sd 0.01,
  # t_{0.975, 2} = 4.303, so the interval is −0.03 ± 4.303 · 0.01/sqrt(3) = [−0.0548, −0.0052].
  # Y: blend and M1 trade ±0.01: mean 0, no verdict. Z: blend fails on one of three groups and wins
  # the other two by 0.05 and 0.04, yet two groups decide nothing: −0.045 ± 12.706 · 0.005.
  report = {'groups': groups('X', [0.9] * 3, [0.10, 0.12, 0.11], [0.08, 0.08, 0.08])
            + groups('Y', [0.1, 0.1, 0.1, 0.1], [0.5] * 4, [0.11, 0.09, 0.11, 0.09])
            + groups('Z', [0.1] * 3, [0.5] * 3, [0.05, 'failed', 0.06])}
  report['domains'] = {d: {n: {'mean_rmse_log': float(np.mean([g[n] for g in report['groups']
                                                                if g['domain'] == d and g[n] != 'failed']))}
                           for n in ('M1', 'M2', 'blend')} for d in 'XYZ'}
  versus = curves_benchmark.versus_best(report, ['M1', 'M2', 'blend'])
  x, y, z = versus['X'], versus['Y'], versus['Z']
  assert x['baseline'] == 'M2' and y['baseline'] == 'M1'
  assert x['blend']['interval'] == pytest.approx([-0.0548, -0.0052], abs=1e-4)
  assert (x['blend']['verdict'], x['blend']['won'], x['blend']['groups']) == ('better', 3, 3)
  assert y['blend']['mean_diff'] == pytest.approx(0.0, abs=1e-12)
  assert (y['blend']['verdict'], y['blend']['won']) == ('not distinguishable', 2)
  assert (z['blend']['groups'], z['blend']['won'], z['blend']['verdict']) == (2, 2, 'not distinguishable')
  assert z['blend']['interval'] == pytest.approx([-0.1085, 0.0185], abs=1e-4)
