"""Scaling-law fits: known answers on synthetic curves, and the published benchmark."""

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis import curves_benchmark, estimators, joint, powerlaw, regions
from conftest import shared_dir

NS = 2.0 ** np.arange(4, 17)


def _law(rng):
  return rng.uniform(1, 10), rng.uniform(0.3, 1.5), 10 ** rng.uniform(-4, -2)


def test_power_law_recovers_noise_free_curves_exactly():
  for trial in range(5):
    a, alpha, c = _law(np.random.default_rng(trial))
    f = powerlaw.fit(NS, a * NS**-alpha + c)
    assert f.success
    np.testing.assert_allclose([f.a, f.alpha, f.c], [a, alpha, c], rtol=1e-5)


def test_power_law_with_1pct_noise_alpha_within_2pct_and_bootstrap_covers_truth():
  """20 curves with 5 seeds of 1% multiplicative noise: α within 2% every time, and the 95%
  interval covers the true α at least 17 times (the binomial 1st percentile is 16)."""
  covered = 0
  for trial in range(20):
    rng = np.random.default_rng(100 + trial)
    a, alpha, c = _law(rng)
    y_sx = (a * NS**-alpha + c) * (1 + 0.01 * rng.standard_normal((5, len(NS))))
    b = powerlaw.bootstrap(NS, y_sx, n_boot=100)
    assert abs(b['fit'].alpha / alpha - 1) < 0.02, (trial, b['fit'].alpha, alpha)
    lo, hi = b['interval']['alpha']
    covered += lo <= alpha <= hi
  assert covered >= 17, covered


def test_pure_power_law_and_missing_points():
  y = 3.0 * NS**-0.5
  y[[2, 5]] = np.nan          # missing or diverged cells are dropped, not averaged
  f = powerlaw.fit(NS, y, fit_offset=False)
  np.testing.assert_allclose([f.a, f.alpha, f.c], [3.0, 0.5, 0.0], rtol=1e-6)
  assert not powerlaw.fit(NS[:2], y[:2]).success


def test_envelope_limits():
  eta, eps0 = 0.3, 1.7
  big = np.array([1e3, 1e5])
  np.testing.assert_allclose(joint.envelope(big, eps0, eta), eps0, rtol=1e-6)     # ε̃ ≫ η: ε0
  small = np.array([1e-4, 1e-7])
  np.testing.assert_allclose(joint.envelope(small, eps0, eta), eps0 * small / eta, rtol=1e-6)  # ε̃ ≪ η
  np.testing.assert_allclose(joint.envelope(eta, eps0, eta), eps0 / np.sqrt(2), rtol=1e-12)


TRUE_JOINT = {'a': 5.0, 'alpha': 0.7, 'b': 2.0, 'beta': 1.1, 'c_inf': 2e-3, 'eta': 0.5, 'eps0': 1.0}


def _joint_grid():
  # Wide enough that every term dominates somewhere (c∞ in the large corner), so all are identified.
  m, n = np.meshgrid(2.0 ** np.arange(0, 11), np.r_[2.0 ** np.arange(4, 18), np.inf], indexing='ij')
  m, n = m.ravel(), n.ravel()
  return m, n, joint.predict(TRUE_JOINT, m, n)


def test_joint_fit_recovers_a_known_law():
  m, n, eps = _joint_grid()
  f = joint.fit(m, n, eps)
  assert f.success and abs(f.mu) < 1e-4 and f.sigma < 1e-3
  # Identifiable up to the scale of (a, b, c∞, η): the fit's gauge is η = 1.
  for k in ('alpha', 'beta'):
    assert f.params[k] == pytest.approx(TRUE_JOINT[k], rel=1e-3), k
  for k in ('a', 'b', 'c_inf'):
    assert f.params[k] / f.params['eta'] == pytest.approx(TRUE_JOINT[k] / TRUE_JOINT['eta'], rel=1e-3), k
  noisy = eps * (1 + 0.02 * np.random.default_rng(0).standard_normal(len(eps)))
  cv = joint.cross_validate(m, n, noisy)
  assert abs(cv['mu']) < 0.01 and cv['sigma'] < 0.04
  # Noise-free, the law fitted on the small corner predicts the rest of the grid exactly.
  ex = joint.extrapolate(m, n, eps, m_max=32, n_max=2048)
  assert ex['test_cells'] > ex['fit_cells'] > 0
  assert abs(ex['mu']) < 1e-3 and ex['sigma'] < 1e-3, ex


def test_regions_from_a_known_law():
  a, alpha, c = 100.0, 0.5, 1e-2
  b = regions.classify([1, 100, 1e4, 1e5, 1e6, 1e7], a, alpha, c)
  assert b['n_small'] == pytest.approx(1e4) and b['n_irreducible'] == pytest.approx(1e8)
  assert b['small_data'] == [1, 100] and b['power_law'] == [1e4, 1e5, 1e6, 1e7] and b['irreducible'] == []
  assert regions.boundaries(a, alpha, 0.0)['n_irreducible'] is None


def test_baselines_on_exact_curves():
  x = 2.0 ** np.arange(10, 24)
  np.testing.assert_allclose(estimators.fit_m1(x, 2 * x**-0.3)(x), 2 * x**-0.3, rtol=1e-10)
  y2 = 0.1 + 2 * x**-0.3
  np.testing.assert_allclose(estimators.fit_m2(x[:10], y2[:10])(x[10:]), y2[10:], rtol=1e-3)
  y3 = 0.5 * (1 / x + 1e-5) ** 0.4
  np.testing.assert_allclose(estimators.fit_m3(x[:10], y3[:10])(x[10:]), y3[10:], rtol=2e-3)
  for name in estimators.OURS:
    pred = estimators.ESTIMATORS[name](x[:10], y2[:10], upper=None)(x[10:])
    np.testing.assert_allclose(pred, y2[10:], rtol=0.02, err_msg=name)


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
