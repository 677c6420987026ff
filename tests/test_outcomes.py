"""Training outcomes and their laws on students drawn from known mixtures: the recovery threshold,
Wilson intervals, the interpolants' law, the stationary share and the seed mean predicted from them."""

import math

import numpy as np
import pytest

from analysis import outcome_laws, outcome_mixture, outcomes, outcomes_section

TEACHER_WIDTH = 4
WIDTHS = (4, 8, 16, 32)
NS = tuple(2 ** k for k in range(6, 13))          # 64 .. 4096
P = {m: 6 * m + 1 for m in WIDTHS}                 # one hidden layer on D = 4
ALPHA, GAMMA, LOG_C, SIGMA = 2.5, 0.3, 1.0, 0.5    # log ε_int = LOG_C − α log n − γ log m + σ z


def draw(rng, seeds, p_stationary, p_recovered=0.0, sigma=SIGMA, gamma=GAMMA) -> outcome_laws.Seeds:
  """Students of every (m, n): stationary with probability p_stationary(m, n) (error 1e-2 × e^(0.2 z)),
  else recovered with probability p_recovered (error 1e-24), else an interpolant on the known law."""
  cols = {k: [] for k in outcome_laws.Seeds._fields}
  for m in WIDTHS:
    for n in NS:
      u = rng.random(seeds)
      stationary = u < p_stationary(m, n)
      recovered = ~stationary & (rng.random(seeds) < p_recovered)
      log_int = LOG_C - ALPHA * math.log(n) - gamma * math.log(m) + sigma * rng.standard_normal(seeds)
      test = np.where(stationary, 1e-2 * np.exp(0.2 * rng.standard_normal(seeds)),
                      np.where(recovered, 1e-24, np.exp(log_int)))
      outcome = np.where(stationary, 'stationary', np.where(recovered, 'recovered', 'interpolant'))
      for k, v in (('m', np.full(seeds, m)), ('n', np.full(seeds, n)), ('P', np.full(seeds, P[m])),
                   ('outcome', outcome.astype(object)), ('test', test)):
        cols[k].append(v)
  return outcome_laws.Seeds(*(np.concatenate(cols[k]) for k in outcome_laws.Seeds._fields))


def test_recovery_threshold_is_the_middle_of_the_widest_gap():
  # log10 errors −22, −21 | floor −20 | −9, −8 | top −6: gaps 1, 1, 11, 1, 2: τ = 10^((−20 − 9)/2).
  t = outcomes.recovery_threshold([1e-22, 1e-21, 1e-9, 1e-8, 0.5], floor=1e-20)
  assert (t.gap_lo, t.gap_hi) == pytest.approx((-20, -9)) and t.tau == pytest.approx(10 ** -14.5)
  # Every floor student an interpolant: the gap opens at the floor, so none is called recovered.
  t = outcomes.recovery_threshold([3e-9, 1e-8, 2e-7], floor=1e-20)
  assert t.tau < 3e-9
  # Every one recovered (up to conditioning): the gap closes at TOP, so all are.
  t = outcomes.recovery_threshold([1e-24, 1e-18, 1e-16], floor=1e-20)
  assert t.tau > 1e-16


def test_classify_and_wilson_closed_forms():
  o = outcomes.classify([1e-25, 1e-25, 1e-3, 1e-25], [1e-24, 1e-6, 1e-2, np.nan], [True, True, True, False],
                        floor=1e-20, tau=1e-15)
  assert o.tolist() == ['recovered', 'interpolant', 'stationary', '']
  z = 1.959963984540054
  # 0 of 10: the upper end is z²/(n + z²); 5 of 10: centred on 1/2 with half-width z·sqrt(n/4 + z²/4)/(n + z²).
  assert outcomes.wilson(0, 10) == pytest.approx((0.0, z * z / (10 + z * z)))
  half = z * math.sqrt(10 / 4 + z * z / 4) / (10 + z * z)
  assert outcomes.wilson(5, 10) == pytest.approx((0.5 - half, 0.5 + half))


def test_share_intervals_cover_the_true_shares():
  """A cell of 30 students, 20 draws: each outcome's 95% interval covers its true share in >= 18."""
  rng = np.random.default_rng(0)
  truth = {'stationary': 0.3, 'recovered': 0.7 * 0.2, 'interpolant': 0.7 * 0.8}
  covered = {o: 0 for o in truth}
  for _ in range(20):
    s = draw(rng, 30, lambda m, n: 0.3, p_recovered=0.2)
    at = (s.m == 8) & (s.n == 256)
    cols = outcomes.cell_columns(s.outcome[at], s.test[at])
    for o, p in truth.items():
      covered[o] += cols[f'{o}_share_lo'] <= p <= cols[f'{o}_share_hi']
  assert all(c >= 18 for c in covered.values()), covered


def test_interpolant_law_recovers_the_exponents_within_its_intervals():
  s = draw(np.random.default_rng(1), 8, lambda m, n: 0.1)
  law = outcome_laws.interpolant_law(outcome_laws.interpolant_cells(s, TEACHER_WIDTH))
  both = law['forms']['n_m']
  lo, hi = both['interval']['alpha']
  assert lo <= ALPHA <= hi and hi - lo < 0.5
  lo, hi = both['interval']['gamma']
  assert lo <= GAMMA <= hi
  assert both['gof']['fits']
  assert law['widths'] == [8, 16, 32]                  # the teacher's width is left out
  assert law['seed_se_log10'] == pytest.approx(SIGMA / math.log(10) / math.sqrt(8 * 0.9), rel=0.25)


def test_width_free_law_is_chosen_when_width_does_not_matter():
  s = draw(np.random.default_rng(2), 8, lambda m, n: 0.0, gamma=0.0)
  law = outcome_laws.interpolant_law(outcome_laws.interpolant_cells(s, TEACHER_WIDTH))
  assert law['selected'] == 'n'
  assert 'includes 0' in outcomes_section.width_term(law)
  # Past the cut the law extrapolates as well as it fits: within its seed scatter.
  assert law['extrapolate_n']['rms_log10'] < 2 * law['seed_se_log10']


def test_a_constant_share_is_not_reported_as_depending_on_n():
  s = draw(np.random.default_rng(3), 12, lambda m, n: 0.3)
  share = outcome_laws.stationary_share(s, TEACHER_WIDTH)
  assert share['share'] == pytest.approx(0.3, abs=0.05)
  assert not (share['beats_constant'] and share['n_terms_lr']['p'] < 0.05)
  text = ' '.join(outcomes_section.share_lines(share, TEACHER_WIDTH))
  assert 'no dependence on n is claimed' in text


def test_a_jamming_peak_in_n_over_p_beats_the_constant_share():
  peak = lambda m, n: 0.8 * math.exp(-math.log(n / P[m]) ** 2 / 0.5)
  share = outcome_laws.stationary_share(draw(np.random.default_rng(4), 12, peak), TEACHER_WIDTH)
  assert share['beats_constant'] and share['n_terms_lr']['p'] < 1e-3
  assert share['model']['brier'] < 0.8 * share['constant']['brier']


def test_the_seed_mean_of_an_exact_mixture_is_predicted_within_its_noise():
  """Interpolants 1% apart on the law and no stationary students: the mixture is the law itself."""
  s = draw(np.random.default_rng(5), 6, lambda m, n: 0.0, sigma=0.01)
  law = outcome_laws.interpolant_law(outcome_laws.interpolant_cells(s, TEACHER_WIDTH))
  x = outcome_mixture.scores(s, TEACHER_WIDTH, law)
  assert x['cv']['rms_log10'] < 0.01 and x['extrapolate_n']['rms_log10'] < 0.01
  # With stationary students at a constant 30%, the mean is 0.3 × 1e-2 + 0.7 × the law, and the
  # mixture predicts it within the cells' own scatter.
  s = draw(np.random.default_rng(6), 40, lambda m, n: 0.3, sigma=0.01)
  law = outcome_laws.interpolant_law(outcome_laws.interpolant_cells(s, TEACHER_WIDTH))
  x = outcome_mixture.scores(s, TEACHER_WIDTH, law)
  assert x['cv']['rms_log10'] < 1.5 * x['seed_scatter']['rms_log10']
