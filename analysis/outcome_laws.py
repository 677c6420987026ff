"""A law per training outcome (docs/design.md §5): the interpolants' joint law in (n, m), the
stationary share, and the stationary error per width.

Inputs are the converged students of one variant as `Seeds` (one entry per student). A cell's
interpolants span decades, so their law is fitted on each cell's mean log error with its standard
error (weighted least squares in log space); every law gets the χ² verdict of the learning curves
(`powerlaw.chi2_verdict`).
"""

import math
from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats

from analysis import outcomes, powerlaw, selection

MIN_INTERPOLANTS = 4   # per cell: fewer make its log standard error too unsteady to weight by
MIN_CELLS = 6          # a law's cells: its 2-3 parameters plus 3 degrees of freedom for its χ² test
COLLAPSE_FACTOR = 2.0  # a collapse falls at least this many times further than the other steps
LN10 = math.log(10)

# The interpolants' joint forms: log ε = θ · features(n, m, P); the simplest that is not worse
# out of sample is chosen (`selection.select`'s one-standard-error rule).
INTERPOLANT_FORMS = {
    'n_m': ('c − α log n − γ log m', ('log_c', 'alpha', 'gamma'),
            lambda n, m, p: np.stack([np.ones_like(n), -np.log(n), -np.log(m)], 1)),
    'n_over_P': ('c − α log(n / P(m))', ('log_c', 'alpha'),
                 lambda n, m, p: np.stack([np.ones_like(n), -np.log(n / p)], 1)),
    'n': ('c − α log n (no width dependence)', ('log_c', 'alpha'),
          lambda n, m, p: np.stack([np.ones_like(n), -np.log(n)], 1)),
}


class Seeds(NamedTuple):
  """The converged students of a variant at finite n, all (K,): width, sample count, parameter
  count, outcome (`outcomes.OUTCOMES`), test error."""
  m: np.ndarray
  n: np.ndarray
  P: np.ndarray
  outcome: np.ndarray
  test: np.ndarray

  def subset(self, mask) -> 'Seeds':
    return Seeds(*(np.asarray(a)[mask] for a in self))


def seeds_of(g, students: outcomes.Students, floor: float) -> Seeds:
  """The converged students at finite n (`outcomes.of_variant`; g: the variant's `tables.grid`)
  with their outcomes."""
  test = students.test
  mm, _, nn = np.meshgrid(g['ms'], np.arange(test.shape[1]), g['ns'][np.isfinite(g['ns'])], indexing='ij')
  pp = np.broadcast_to(g['P'][:, None, None], test.shape)
  ok = np.isfinite(test)
  outcome = outcomes.classify(students.train, test, ok, floor, students.threshold.tau)
  return Seeds(mm[ok], nn[ok], pp[ok], outcome[ok], test[ok])


class LogCells(NamedTuple):
  """Per (m, n) cell, all (C,): m, n, P, the mean and standard error of log ε over its students
  and their count."""
  m: np.ndarray
  n: np.ndarray
  P: np.ndarray
  log_mean: np.ndarray
  log_se: np.ndarray
  count: np.ndarray

  def subset(self, mask) -> 'LogCells':
    return LogCells(*(np.asarray(a)[mask] for a in self))


def log_cells(seeds: Seeds, min_count: int) -> LogCells:
  """The cells of `seeds` with at least `min_count` students and a positive log standard error."""
  keys = sorted(set(zip(seeds.m.tolist(), seeds.n.tolist())))
  rows = []
  for m, n in keys:
    sel = (seeds.m == m) & (seeds.n == n)
    logs = np.log(seeds.test[sel])
    if len(logs) >= min_count and np.std(logs) > 0:
      rows.append((m, n, seeds.P[sel][0], logs.mean(), logs.std(ddof=1) / math.sqrt(len(logs)), len(logs)))
  return LogCells(*(np.asarray(c, float) for c in zip(*rows))) if rows else LogCells(*(np.zeros(0),) * 6)


def wls(features_ck, cells: LogCells) -> dict:
  """Weighted least squares of log_mean on features (C, K), weights 1/log_se²: θ, its covariance,
  the χ² verdict; None where the design is rank-deficient or too small."""
  if len(cells.n) <= features_ck.shape[1] or np.linalg.matrix_rank(features_ck) < features_ck.shape[1]:
    return None
  a = features_ck / cells.log_se[:, None]
  theta, *_ = np.linalg.lstsq(a, cells.log_mean / cells.log_se, rcond=None)
  mean = np.exp(cells.log_mean)
  gof = powerlaw.chi2_verdict(features_ck @ theta, mean, mean * cells.log_se, cells.count, params=features_ck.shape[1])
  gof.pop('open_points')   # a bound at 0 has no meaning for a mean of logs
  return {'theta': theta, 'cov': np.linalg.inv(a.T @ a), 'gof': gof}


def features(form: str, cells) -> np.ndarray:
  """The design matrix (C, K) of an interpolants' form at cells (anything with n, m, P)."""
  return INTERPOLANT_FORMS[form][2](*(np.asarray(v, float) for v in (cells.n, cells.m, cells.P)))


def predict_log(form: str, theta, cells) -> np.ndarray:
  """log ε̂ of an interpolants' form at cells (anything with n, m, P)."""
  return features(form, cells) @ theta


def rms_log10(res) -> float:
  """RMS of natural-log residuals in decades; NaN when there are none or one is not finite."""
  res = np.asarray(res, float)
  return float(np.sqrt(np.mean((res / LN10) ** 2))) if len(res) and np.all(np.isfinite(res)) else float('nan')


def held_out(form: str, cells: LogCells, fitted, label: str) -> dict:
  """Fits `form` where `fitted`, scores log10 residuals of the others; not determined when the
  fitted cells hold fewer than two widths (the width term, or the width scaling, is then unseen)."""
  fit = wls(features(form, cells.subset(fitted)), cells.subset(fitted))
  out = {'fit_on': label, 'fit_cells': int(np.sum(fitted)), 'cells': int(np.sum(~fitted))}
  if fit is None or len(np.unique(cells.m[fitted])) < 2 or not np.any(~fitted):
    return {**out, 'rms_log10': float('nan'), 'determined': False}
  res = predict_log(form, fit['theta'], cells.subset(~fitted)) - cells.log_mean[~fitted]
  return {**out, 'rms_log10': rms_log10(res), 'determined': True}


def cross_validate(form: str, cells: LogCells, folds: int = 5, seed: int = 0) -> dict:
  """K-fold over cells: RMS of the out-of-fold log10 residuals, the standard error of their mean
  square (for the one-standard-error rule) and each cell's out-of-fold log ε̂ ('log_pred')."""
  fold = np.random.default_rng(seed).permutation(len(cells.n)) % folds
  pred = np.full(len(cells.n), np.nan)
  for k in range(folds):   # each fold's cells predicted by the fit without them
    fit = wls(features(form, cells.subset(fold != k)), cells.subset(fold != k))
    if fit is None:
      return {'rms_log10': float('nan'), 'mse_se': float('nan'), 'folds': folds, 'log_pred': pred.tolist()}
    pred[fold == k] = predict_log(form, fit['theta'], cells.subset(fold == k))
  sq = ((pred - cells.log_mean) / LN10) ** 2
  return {'rms_log10': float(np.sqrt(sq.mean())), 'mse_se': float(sq.std() / math.sqrt(len(sq))), 'folds': folds,
          'log_pred': pred.tolist()}


def regime_start(cells: LogCells, form: str = 'n_m') -> float | None:
  """The smallest n/P(m) from which `form` fits every cell at or beyond it (χ² test), with at
  least MIN_CELLS cells and two widths: the collapse past the student's own parameter count comes
  first, and a power law's range starts where it fits (Clauset, Shalizi & Newman 2009's x_min)."""
  ratio = cells.n / cells.P
  for r in np.unique(ratio):
    tail = ratio >= r
    if tail.sum() < MIN_CELLS or len(np.unique(cells.m[tail])) < 2:
      return None
    fit = wls(features(form, cells.subset(tail)), cells.subset(tail))
    if fit is not None and fit['gof']['fits']:
      return float(r)
  return None


def collapse_ends(seeds: Seeds, teacher_width: int) -> dict:
  """{m: the first n past the collapse} per width above the teacher's: of consecutive sample counts
  with interpolants, the pair between which their geometric-mean error falls most ends there, if
  that fall is a collapse: at least a decade and COLLAPSE_FACTOR times the median of the others
  (a power law falls by the same amount at every step of a log-spaced grid: no collapse, no cut)."""
  out = {}
  for m in np.unique(seeds.m[seeds.m > teacher_width]):
    cells = log_cells(seeds.subset((seeds.outcome == 'interpolant') & (seeds.m == m)), 1)
    if len(cells.n) < 2:
      continue
    falls = -np.diff(cells.log_mean) / LN10
    k = int(np.argmax(falls))
    others = np.delete(falls, k)
    if falls[k] >= 1.0 and (not len(others) or falls[k] >= COLLAPSE_FACTOR * max(np.median(others), 0.0)):
      out[int(m)] = float(cells.n[k + 1])
  return out


def past_collapse(seeds: Seeds, teacher_width: int) -> np.ndarray:
  """Per student: at a width above the teacher's, at or past its width's collapse (every n where
  there is none); True at the other widths."""
  ends = collapse_ends(seeds, teacher_width)
  return np.array([m <= teacher_width or n >= ends.get(m, 0) for m, n in zip(seeds.m.tolist(), seeds.n.tolist())], bool)


def interpolant_cells(seeds: Seeds, teacher_width: int) -> LogCells:
  """The cells of interpolants at widths above the teacher's and past their width's collapse
  (`collapse_ends`), MIN_INTERPOLANTS or more each."""
  past = past_collapse(seeds, teacher_width) & (seeds.m > teacher_width)
  return log_cells(seeds.subset((seeds.outcome == 'interpolant') & past), MIN_INTERPOLANTS)


def interpolant_law(cells: LogCells, *, level: float = 0.95) -> dict:
  """The interpolants' joint law on `interpolant_cells`, past the collapse (n/P(m) >= ratio_from,
  `regime_start`): under 'forms' each form's fit with normal intervals, verdict, 5-fold CV and
  extrapolations (in n: fit n <= n_max/4; in m: fit m <= m_max/2); the selected form's name
  ('selected') and those entries at the top level; the regime cells' RMS log10 standard error
  (seed_se_log10), pooled within-cell variance of log ε (log_var) and their table."""
  start = regime_start(cells) if len(cells.n) else None
  if start is None:
    return {'cells_available': len(cells.n), 'ratio_from': None, 'forms': {}, 'selected': None}
  available = len(cells.n)
  cells = cells.subset(cells.n / cells.P >= start)
  n_max, m_max = cells.n.max(), cells.m.max()
  entries = {}
  for name, (formula, params, _) in INTERPOLANT_FORMS.items():
    fit = wls(features(name, cells), cells)
    if fit is None:
      continue
    half = scipy.stats.norm.ppf((1 + level) / 2) * np.sqrt(np.diag(fit['cov']))
    entries[name] = {
        'formula': formula, 'params': dict(zip(params, fit['theta'].tolist())),
        'interval': {p: [float(v - h), float(v + h)] for p, v, h in zip(params, fit['theta'], half)},
        'gof': fit['gof'], 'cv': cross_validate(name, cells),
        'extrapolate_n': held_out(name, cells, cells.n <= n_max / 4, f'n <= {n_max / 4:g}'),
        'extrapolate_m': held_out(name, cells, cells.m <= m_max / 2, f'm <= {m_max / 2:g}')}
  sizes = {k: len(v[1]) for k, v in INTERPOLANT_FORMS.items()}
  selected = selection.select({k: e['cv'] for k, e in entries.items()}, sizes)
  chosen = {k: entries[selected][k] for k in ('formula', 'params', 'interval', 'gof', 'cv', 'extrapolate_n',
                                               'extrapolate_m')} if selected else {}
  return {**chosen, 'cells_available': available, 'ratio_from': start, 'cells': len(cells.n),
          'widths': sorted(np.unique(cells.m).astype(int).tolist()), 'ns': sorted(np.unique(cells.n).astype(int).tolist()),
          'seed_se_log10': float(np.sqrt(np.mean((cells.log_se / LN10) ** 2))),
          'table': {'m': cells.m.tolist(), 'n': cells.n.tolist(), 'log_mean': cells.log_mean.tolist(),
                    'log_se': cells.log_se.tolist()},
          'log_var': float(np.mean(cells.log_se ** 2 * cells.count)),
          'forms': entries, 'selected': selected}


# The stationary share's logistic model: logit p = θ · (1, x, x², u, u x²), x = log(n / P(m)),
# u = log(m / teacher width): a peak in x (jamming near n = P(m)) whose height and width may change
# with the width, and a level that may (students of the teacher's own width are hard to train).
SHARE_FEATURES = ('1', 'x', 'x^2', 'u', 'u x^2')
RIDGE = 1e-3   # keeps θ finite when a feature separates the outcomes (a share of 0 or 1)


def share_features(n, m, P, teacher_width) -> np.ndarray:
  x, u = np.log(np.asarray(n, float) / np.asarray(P, float)), np.log(np.asarray(m, float) / teacher_width)
  return np.stack([np.ones_like(x), x, x * x, u, u * x * x], 1)


def fit_logistic(features_kf, y_k) -> np.ndarray:
  """Maximum-likelihood logistic regression (a small ridge on all but the intercept)."""
  def loss(theta):
    z = features_kf @ theta
    nll = np.sum(np.logaddexp(0, z) - y_k * z) + RIDGE * np.sum(theta[1:] ** 2)
    grad = features_kf.T @ (scipy.special.expit(z) - y_k) + 2 * RIDGE * np.r_[0, theta[1:]]
    return nll, grad
  start = np.zeros(features_kf.shape[1])
  start[0] = scipy.special.logit(np.clip(np.mean(y_k), 1e-3, 1 - 1e-3))
  return scipy.optimize.minimize(loss, start, jac=True, method='BFGS').x


def _scores(p, y) -> dict:
  p = np.clip(p, 1e-9, 1 - 1e-9)
  return {'brier': float(np.mean((p - y) ** 2)), 'log_lik': float(np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))}


def stationary_share(seeds: Seeds, teacher_width: int, folds: int = 5, seed: int = 0) -> dict:
  """The stationary share at realizable widths (m >= teacher width): the logistic model's
  coefficients, its held-out Brier score and mean log-likelihood per student against the constant
  share's (K-fold over (m, n) cells), and a likelihood-ratio test of its n-dependent terms
  (x, x², u x²) against the model without them."""
  s = seeds.subset(seeds.m >= teacher_width)
  if len(s.n) < 2 * folds:
    return {'students': len(s.n), 'fitted': False}
  f, y = share_features(s.n, s.m, s.P, teacher_width), (s.outcome == 'stationary').astype(float)
  cell = np.unique(np.stack([s.m, s.n], 1), axis=0, return_inverse=True)[1].ravel()
  fold = np.random.default_rng(seed).permutation(cell.max() + 1)[cell] % folds
  p_model, p_const = np.empty_like(y), np.empty_like(y)
  for k in range(folds):
    train, test = fold != k, fold == k
    p_model[test] = scipy.special.expit(f[test] @ fit_logistic(f[train], y[train]))
    p_const[test] = np.clip(y[train].mean(), 1e-9, 1 - 1e-9)
  theta = fit_logistic(f, y)
  no_n = fit_logistic(f[:, [0, 3]], y)
  ll = lambda z: float(np.sum(y * z - np.logaddexp(0, z)))
  lr = 2 * (ll(f @ theta) - ll(f[:, [0, 3]] @ no_n))
  return {'students': len(y), 'fitted': True, 'share': float(y.mean()),
          'theta': dict(zip(SHARE_FEATURES, theta.tolist())), 'model': _scores(p_model, y), 'constant': _scores(p_const, y),
          'beats_constant': bool(_scores(p_model, y)['brier'] < _scores(p_const, y)['brier']),
          'n_terms_lr': {'statistic': lr, 'dof': 3, 'p': float(scipy.stats.chi2.sf(max(lr, 0.0), 3))}}


def stationary_error(seeds: Seeds) -> dict:
  """Per width, the stationary students' test error against n: flat (log ε = c) or a power law
  (log ε = c − α log n), each with its χ² verdict on cells of two or more such students; the law
  is the flat one where it fits, else the power law where it fits, else None."""
  out = {}
  for m in sorted(np.unique(seeds.m).astype(int).tolist()):
    cells = log_cells(seeds.subset((seeds.outcome == 'stationary') & (seeds.m == m)), 2)
    entry = {'cells': len(cells.n)}
    for name, features in (('flat', lambda n: np.ones((len(n), 1))),
                           ('power', lambda n: np.stack([np.ones_like(n), -np.log(n)], 1))):
      fit = wls(features(cells.n), cells) if len(cells.n) else None
      entry[name] = None if fit is None else {'theta': fit['theta'].tolist(), 'gof': fit['gof']}
    entry['law'] = next((k for k in ('flat', 'power') if entry[k] and entry[k]['gof']['fits']), None)
    out[str(m)] = entry
  return out
