"""The seed mean predicted from the outcomes (docs/design.md §2.7):

  ε̂(m, n) = p_s ε_s(m) + (1 − p_s) (q_r ε_r + (1 − q_r) ε_i(m, n))

p_s the stationary share (`outcome_laws.stationary_share`'s logistic model), q_r the recovered
share of the students at the training floor (logistic in log(m / teacher width)), ε_s(m) the mean
stationary error at width m (pooled over the widths above the teacher's where m has none), ε_r the
recovered students' mean error, ε_i the interpolants' law as a mean (a log-normal's: the law's
geometric mean times exp(σ²/2), σ² the pooled within-cell variance of log ε).

It applies where its laws do: realizable widths, past each width's collapse and the interpolants'
regime start in n/P(m). It
is scored there by the joint forms' splits (5-fold CV over cells, extrapolation in n and in m),
every part refitted on the fitted students only, against the same cells' seed scatter.
"""

import math

import numpy as np
import scipy.special

from analysis import outcome_laws, selection

def _mean_or(values, default: float) -> float:
  return float(np.mean(values)) if len(values) else default


def predict(fit: outcome_laws.Seeds, m, n, P, *, teacher_width: int, ratio_from: float, form: str,
            log_var: float, shares=None) -> np.ndarray:
  """ε̂ at cells (m, n, P) (C,) from the students `fit` (NaN where a part cannot be fitted);
  shares: (p_s, q_r) per cell in place of the share models (a diagnostic: the cells' own shares)."""
  m, n, P = (np.asarray(a, float) for a in (m, n, P))
  real = fit.subset(fit.m >= teacher_width)
  stationary = real.outcome == 'stationary'
  theta_s = outcome_laws.fit_logistic(outcome_laws.share_features(real.n, real.m, real.P, teacher_width),
                                      stationary.astype(float))
  p_s = scipy.special.expit(outcome_laws.share_features(n, m, P, teacher_width) @ theta_s)
  floor = real.subset(~stationary)
  u = lambda w: np.log(np.asarray(w, float) / teacher_width)
  theta_r = outcome_laws.fit_logistic(np.stack([np.ones(len(floor.m)), u(floor.m)], 1),
                                      (floor.outcome == 'recovered').astype(float))
  q_r = scipy.special.expit(theta_r[0] + theta_r[1] * u(m))
  if shares is not None:
    p_s, q_r = shares
  eps_r = _mean_or(floor.test[floor.outcome == 'recovered'], 0.0)
  cells = outcome_laws.interpolant_cells(fit, teacher_width)
  cells = cells.subset(cells.n / cells.P >= ratio_from)
  law = outcome_laws.wls(outcome_laws.features(form, cells), cells)
  if law is None:
    return np.full(len(m), np.nan)
  eps_i = np.exp(outcome_laws.predict_log(form, law['theta'], outcome_laws.Seeds(m, n, P, None, None)) + log_var / 2)
  in_regime = real.n / real.P >= ratio_from
  # A width with no stationary student in the regime takes the wider widths' pooled mean, else
  # any realizable width's; with none at all the share model gives them no weight either.
  pooled = _mean_or(real.test[stationary & in_regime & (real.m > teacher_width)], _mean_or(real.test[stationary], 0.0))
  eps_s = np.array([_mean_or(real.test[stationary & in_regime & (real.m == w)], pooled) for w in m])
  return p_s * eps_s + (1 - p_s) * (q_r * eps_r + (1 - q_r) * eps_i)


def domain_cells(seeds: outcome_laws.Seeds, teacher_width: int, ratio_from: float) -> dict:
  """The cells where the mixture applies (realizable widths from n/P(m) >= ratio_from, and above
  the teacher's width past the width's collapse, `outcome_laws.collapse_ends`): m, n, P (C,),
  their seed means, and the students' test errors as (C, S) padded with NaN (for the seed scatter)."""
  keep = (seeds.m >= teacher_width) & (seeds.n / seeds.P >= ratio_from) & outcome_laws.past_collapse(seeds, teacher_width)
  keys = sorted(set(zip(seeds.m[keep].tolist(), seeds.n[keep].tolist())))
  values = [seeds.test[(seeds.m == m) & (seeds.n == n)] for m, n in keys]
  width = max((len(v) for v in values), default=0)
  padded = np.full((len(keys), width), np.nan)
  for i, v in enumerate(values):
    padded[i, :len(v)] = v
  m, n = (np.asarray(c, float) for c in zip(*keys)) if keys else (np.zeros(0), np.zeros(0))
  P = np.array([seeds.P[(seeds.m == mi)][0] for mi in m]) if keys else np.zeros(0)
  return {'m': m, 'n': n, 'P': P, 'eps': np.nanmean(padded, 1) if keys else np.zeros(0), 'values': padded}


def _gap(seeds, student_cell, cells: int) -> float:
  """Median over the cells that have both of log10(mean stationary error / geometric-mean
  interpolant error): how far one stationary student sits above the interpolants."""
  gaps = []
  for i in range(cells):
    here = student_cell == i
    st, it = seeds.test[here & (seeds.outcome == 'stationary')], seeds.test[here & (seeds.outcome == 'interpolant')]
    if len(st) and len(it):
      gaps.append(np.log10(st.mean()) - np.mean(np.log10(it)))
  return float(np.median(gaps)) if gaps else float('nan')


def scores(seeds: outcome_laws.Seeds, teacher_width: int, law: dict, folds: int = 5, seed: int = 0) -> dict:
  """The mixture's in-sample, 5-fold CV and extrapolation RMS log10 errors on its domain cells,
  and those cells' seed scatter (`selection.seed_scatter`); {} without an interpolants' law."""
  if not law.get('selected'):
    return {}
  kw = dict(teacher_width=teacher_width, ratio_from=law['ratio_from'], form=law['selected'], log_var=law['log_var'])
  d = domain_cells(seeds, teacher_width, law['ratio_from'])
  log_eps = np.log(d['eps'])
  cell_of = {c: i for i, c in enumerate(zip(d['m'].tolist(), d['n'].tolist()))}
  student_cell = np.array([cell_of.get(c, -1) for c in zip(seeds.m.tolist(), seeds.n.tolist())])

  def held(fit_mask, test_mask):
    eps_hat = predict(seeds.subset(fit_mask), d['m'][test_mask], d['n'][test_mask], d['P'][test_mask], **kw)
    return np.log(eps_hat) - log_eps[test_mask]

  fold = np.random.default_rng(seed).permutation(len(d['m'])) % folds
  cv = np.full(len(d['m']), np.nan)
  for k in range(folds):   # the held-out cells' students are left out of every part's fit
    cv[fold == k] = held(~np.isin(student_cell, np.flatnonzero(fold == k)), fold == k)
  n_cut, m_cut = d['n'].max() / 4, d['m'].max() / 2
  own = np.array([[np.mean(seeds.outcome[student_cell == i] == 'stationary'),
                   np.mean(seeds.outcome[(student_cell == i) & (seeds.outcome != 'stationary')] == 'recovered')
                   if np.any((student_cell == i) & (seeds.outcome != 'stationary')) else 0.0]
                  for i in range(len(d['m']))]).T
  with_own = predict(seeds, d['m'], d['n'], d['P'], **kw, shares=own)
  out = {'cells': len(d['m']), 'ratio_from': law['ratio_from'], 'form': law['selected'],
         'in_sample': {'rms_log10': outcome_laws.rms_log10(held(np.ones(len(seeds.m), bool), np.ones(len(d['m']), bool)))},
         'cv': {'rms_log10': outcome_laws.rms_log10(cv), 'folds': folds},
         'with_cell_shares': {'rms_log10': outcome_laws.rms_log10(np.log(with_own) - log_eps)},
         'extrapolate_n': {'fit_on': f'n <= {n_cut:g}', 'rms_log10': outcome_laws.rms_log10(held(seeds.n <= n_cut, d['n'] > n_cut))},
         'extrapolate_m': {'fit_on': f'm <= {m_cut:g}', 'rms_log10': outcome_laws.rms_log10(held(seeds.m <= m_cut, d['m'] > m_cut))},
         'seed_scatter': selection.seed_scatter(d['values'][:, :, None], 0.0),
         'students': int(np.sum(student_cell >= 0)), 'seeds_per_cell': int(np.median(np.sum(np.isfinite(d['values']), 1))),
         'stationary_over_interpolant_log10': _gap(seeds, student_cell, len(d['m']))}
  out['cv_over_scatter'] = out['cv']['rms_log10'] / out['seed_scatter']['rms_log10']
  return out
