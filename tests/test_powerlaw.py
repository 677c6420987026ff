"""analysis.powerlaw: known answers on synthetic curves."""

import numpy as np
import pytest

from analysis import powerlaw


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


def test_goodness_of_fit_accepts_1pct_noise_and_rejects_a_kink():
  """Five seeds of a · n^(−α) + c with 1% log-normal noise fit (p > 0.05 in 19 of 20 draws at
  least, as a 5% test should); a curve with a kink (slope 0.3, then 1.5 from n = 1024) does not."""
  rng = np.random.default_rng(1)
  passed = 0
  for _ in range(20):
    y_sx = (2.0 * NS**-0.6 + 1e-3) * np.exp(0.01 * rng.normal(size=(5, len(NS))))
    mean, se = y_sx.mean(0), y_sx.std(0, ddof=1) / np.sqrt(5)
    passed += powerlaw.goodness_of_fit(powerlaw.fit(NS, mean), NS, mean, se, np.full(len(NS), 5))['fits']
  assert passed >= 17
  kink = np.where(NS < 1024, NS**-0.3, 1024**-0.3 * (NS / 1024) ** -1.5)
  y_sx = kink * np.exp(0.01 * rng.normal(size=(5, len(NS))))
  mean, se = y_sx.mean(0), y_sx.std(0, ddof=1) / np.sqrt(5)
  verdict = powerlaw.goodness_of_fit(powerlaw.fit(NS, mean), NS, mean, se, np.full(len(NS), 5))
  assert verdict['fits'] is False and verdict['p'] < 1e-6


def test_censored_floor_is_not_read_as_an_irreducible_error():
  # A pure power law seen through a precision floor: values below 1e-9 read as 1e-9.
  x = 2.0 ** np.arange(4, 13)
  y = np.maximum(2 * x**-3.0, 1e-9)
  censored, naive = powerlaw.fit(x, y, floor=1e-9), powerlaw.fit(x, y)
  assert censored.alpha == pytest.approx(3.0, rel=1e-3) and censored.c < 1e-11
  assert naive.c > 5e-10   # uncensored, the floor becomes the offset c


def test_verdict_counts_the_points_whose_interval_reaches_0():
  """Six seeds with 1% scatter: every point's 95% interval (t_5 · se ≈ 2.6 · 0.01/√6 of the
  mean) stays far from 0. With log-normal scatter σ = 1.5 (relative sd ≈ 2.9, se ≈ 1.2 of the
  mean) nearly every interval reaches 0, and the report calls a pass a weak test."""
  from analysis import sections
  rng = np.random.default_rng(3)
  truth = 2.0 * NS**-0.6 + 1e-3
  for sigma, open_at_least, open_at_most in ((0.01, 0, 0), (1.5, len(NS) - 3, len(NS))):
    y_sx = truth * np.exp(sigma * rng.normal(size=(6, len(NS))))
    mean, se = y_sx.mean(0), y_sx.std(0, ddof=1) / np.sqrt(6)
    g = powerlaw.goodness_of_fit(powerlaw.fit(NS, truth), NS, mean, se, np.full(len(NS), 6))
    assert g['points'] == len(NS) and open_at_least <= g['open_points'] <= open_at_most, (sigma, g)
  weak = sections.verdict({'success': True, 'gof': {**g, 'fits': True}})
  assert f'a weak test: {g["open_points"]} of {len(NS)} points' in weak


def test_log_linear_recovers_a_pure_power_law_with_its_interval():
  """Exact log means of 2 n^(−1.5) at n = 2^6..2^11, each with log standard error 0.1: α = 1.5, and
  its 95% interval is ±1.96 · 0.1 / sqrt(Σ (ln n − mean)²) = ±1.96 · 0.1 / (ln 2 · sqrt(17.5)) = ±0.0676."""
  n = 2.0 ** np.arange(6, 12)
  law = powerlaw.log_linear(n, np.log(2.0) - 1.5 * np.log(n), np.full(6, 0.1), np.full(6, 6))
  assert law['alpha'] == pytest.approx(1.5, abs=1e-12) and law['log_a'] == pytest.approx(np.log(2.0), abs=1e-12)
  assert law['interval'] == pytest.approx([1.5 - 0.0676, 1.5 + 0.0676], abs=2e-4)
  assert law['gof']['fits'] and law['gof']['chi2_per_dof'] == pytest.approx(0.0, abs=1e-12)
