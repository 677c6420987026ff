"""Power law with offset, ε(x) = a x^(−α) + c, fitted robustly, with bootstrap intervals (docs/design.md §5).

The fit minimizes a robust loss (scipy's soft-L1 by default) of the log-space residuals
log ε̂(x) − log ε(x) — relative errors, so that points decades apart count alike — over
a > 0, α ∈ [0, ALPHA_MAX], c ∈ [0, max ε], from a grid of starts. x is centred on its geometric
mean inside the fit (a is reported for the original x), which decorrelates a from α.
"""

import dataclasses
import itertools
import warnings

import numpy as np
import scipy.optimize
import scipy.stats

ALPHA_MAX = 10.0


@dataclasses.dataclass
class PowerLaw:
  """ε(x) = a x^(−α) + c, and how well it fits."""
  a: float
  alpha: float
  c: float
  rmse_log: float   # root-mean-square log residual at the optimum
  success: bool

  def __call__(self, x):
    x = np.asarray(x, float)
    return self.a * x ** (-self.alpha) + self.c

  def params(self) -> dict:
    return {'a': self.a, 'alpha': self.alpha, 'c': self.c}


def usable(x, y):
  """The points a fit takes: finite, with x > 0 and y > 0."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  keep = np.isfinite(x) & np.isfinite(y) & (y > 0) & (x > 0)
  return x[keep], y[keep]


def min_points(fit_offset: bool = True) -> int:
  """The fewest points `fit` takes: one per parameter (a, α and, with the offset, c)."""
  return 3 if fit_offset else 2


def censor(res, censored):
  """Log residuals where points at the precision floor are upper bounds: only a prediction above
  such a point is a residual."""
  return np.where(censored, np.maximum(res, 0.0), res)


def fit(x, y, *, loss='soft_l1', f_scale=0.1, weights=None, fit_offset=True, start=None, floor: float = 0.0) -> PowerLaw:
  """Fits ε(x) = a x^(−α) + c to points (x, y) (non-finite or non-positive y are dropped).

  Args:
    loss, f_scale: scipy.optimize.least_squares robust loss on log residuals ('linear' is
      plain least squares; soft_l1 with f_scale=0.1 is quadratic up to ~10% relative error).
    weights: optional per-point weights of the residuals.
    fit_offset: if False, c = 0 (a pure power law).
    start: a PowerLaw to start from (one start instead of the grid).
    floor: points at or below it are censored (the dtype's precision, `forms.precision_floor`):
      upper bounds, so only a prediction above them is a residual.
  """
  x, y = usable(x, y)
  if len(x) < min_points(fit_offset):
    return PowerLaw(np.nan, np.nan, np.nan, np.nan, False)
  w = np.ones_like(x) if weights is None else np.asarray(weights, float)[: len(x)]
  lx0 = np.mean(np.log(x))
  u = np.log(x) - lx0
  ly = np.log(y)

  def model(theta):
    la, alpha, c = theta if fit_offset else (*theta, 0.0)
    return np.exp(la - alpha * u) + c

  def residuals(theta):
    return w * censor(np.log(np.maximum(model(theta), 1e-300)) - ly, y <= floor)

  ymax, ymin = y.max(), y.min()
  if start is not None and start.success:
    starts = [(np.log(start.a) - start.alpha * lx0, start.alpha, min(start.c, ymax))]
  else:
    starts = []
    for alpha0, frac in itertools.product((0.25, 0.5, 1.0, 2.0), (0.0, 0.5, 0.9) if fit_offset else (0.0,)):
      c0 = frac * ymin
      starts.append((np.log(max(np.exp(np.mean(ly)) - c0, 1e-12 * ymax)), alpha0, c0))
  best = None
  for la0, alpha0, c0 in starts:
    theta0 = [la0, alpha0, c0] if fit_offset else [la0, alpha0]
    lo = [-np.inf, 0.0, 0.0] if fit_offset else [-np.inf, 0.0]
    hi = [np.inf, ALPHA_MAX, ymax] if fit_offset else [np.inf, ALPHA_MAX]
    try:
      r = scipy.optimize.least_squares(residuals, theta0, bounds=(lo, hi), loss=loss, f_scale=f_scale,
                                       x_scale='jac', max_nfev=2000)
    except (ValueError, FloatingPointError):
      continue
    if best is None or r.cost < best.cost:
      best = r
  if best is None:
    return PowerLaw(np.nan, np.nan, np.nan, np.nan, False)
  la, alpha, c = best.x if fit_offset else (*best.x, 0.0)
  rmse = float(np.sqrt(np.mean((residuals(best.x) / w) ** 2)))
  # a for the original x: a x^(−α) = exp(la − α (log x − lx0)).
  return PowerLaw(float(np.exp(la + alpha * lx0)), float(alpha), float(c), rmse, bool(best.success))


def bootstrap(x, y_sx, *, n_boot=200, seed=0, level=0.95, **fit_kw) -> dict:
  """Fits the seed-mean curve and bootstraps over seeds for confidence intervals.

  Args:
    x: (X,) abscissae.
    y_sx: (S, X) one row per seed (NaN where a cell is missing or diverged). Seeds are
      resampled with replacement as whole rows, keeping each seed's curve intact (the cells of
      one seed share their data, docs/design.md §4).

  The interval is estimate ± t_{S−1} · sqrt(S/(S−1)) · sd(bootstrap estimates): the bootstrap
  standard error with the small-sample corrections a handful of seeds needs (a plain
  percentile interval over 5 seeds covers the truth only ~80% of the time at 95%).

  Returns:
    {'fit': PowerLaw of the mean curve, 'interval': {param: [lo, hi]} (empty with one seed),
     'n_boot': successful bootstrap fits}.
  """
  y_sx = np.atleast_2d(np.asarray(y_sx, float))
  n_seeds = len(y_sx)
  with np.errstate(invalid='ignore'), warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)   # an x with no seed is NaN, dropped by `fit`
    central = fit(x, np.nanmean(y_sx, axis=0), **fit_kw)
  rng = np.random.default_rng(seed)
  draws = []
  if central.success and n_seeds > 1:
    for _ in range(n_boot):
      rows = rng.integers(0, n_seeds, n_seeds)
      with np.errstate(invalid='ignore'), warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        f = fit(x, np.nanmean(y_sx[rows], axis=0), start=central, **fit_kw)
      if f.success:
        draws.append([f.a, f.alpha, f.c])
  interval = {}
  if len(draws) > 1:
    sd = np.std(np.asarray(draws), axis=0) * np.sqrt(n_seeds / (n_seeds - 1))
    half = scipy.stats.t.ppf((1 + level) / 2, n_seeds - 1) * sd
    for i, name in enumerate(('a', 'alpha', 'c')):
      value = central.params()[name]
      interval[name] = [float(max(value - half[i], 0.0)), float(value + half[i])]
  return {'fit': central, 'interval': interval, 'n_boot': len(draws)}


def goodness_of_fit(law: PowerLaw, x, mean, se, seeds, *, level: float = 0.05, params: int = 3) -> dict:
  """Whether the fitted law describes the seed means within the seeds' own scatter
  (`chi2_verdict` of its predictions). Returns {'chi2_per_dof', 'dof', 'p', 'fits'}."""
  if not law.success:
    return chi2_verdict(np.full(np.shape(x), np.nan), mean, se, seeds, params=params, level=level)
  with np.errstate(divide='ignore', invalid='ignore'):
    return chi2_verdict(np.log(np.maximum(law(np.asarray(x, float)), 1e-300)), mean, se, seeds, params=params,
                        level=level)


def chi2_verdict(log_pred, mean, se, seeds, *, params: int, level: float = 0.05) -> dict:
  """Whether predictions log ε̂ describe seed means within the seeds' own scatter.

  Each point's log residual over its standard error (se/mean: the standard error of log mean,
  to first order) is a t statistic on seeds − 1 degrees of freedom; mapped to a standard normal
  through its distribution function (a handful of seeds gives heavy tails, which a plain χ² would
  read as misfit), their squares sum to χ² on (points − params) degrees of freedom. The law fits
  when P(χ² ≥ observed) > level. Points need a positive mean and at least two seeds.
  Returns {'chi2_per_dof', 'dof', 'p', 'fits'} ('fits' None when dof < 1 or a prediction is
  missing), 'points' tested and 'open_points': those whose 95% interval (t · se) reaches 0, which
  bound the law only from above: where they are most, passing is a weak test."""
  log_pred, mean, se, seeds = (np.asarray(v, float) for v in (log_pred, mean, se, seeds))
  use = np.isfinite(mean) & (mean > 0) & np.isfinite(se) & (se > 0) & (seeds >= 2)
  dof = int(use.sum()) - params
  half = scipy.stats.t.ppf(0.975, np.maximum(seeds[use], 2) - 1) * se[use] / mean[use]
  power = {'points': int(use.sum()), 'open_points': int(np.sum(half >= 1))}
  if dof < 1 or not np.all(np.isfinite(log_pred[use])):
    return {'chi2_per_dof': float('nan'), 'dof': dof, 'p': float('nan'), 'fits': None, **power}
  with np.errstate(divide='ignore', invalid='ignore'):
    t = (log_pred[use] - np.log(mean[use])) / (se[use] / mean[use])
  z = scipy.stats.norm.isf(scipy.stats.t.sf(t, seeds[use] - 1))
  chi2 = float(np.sum(np.clip(z, -40.0, 40.0) ** 2))   # clipped: the tails of isf overflow to inf
  p = float(scipy.stats.chi2.sf(chi2, dof))
  return {'chi2_per_dof': chi2 / dof, 'dof': dof, 'p': p, 'fits': bool(p > level), **power}


def log_linear(x, log_mean, log_se, seeds, *, level: float = 0.95) -> dict:
  """A pure power law a x^(−α) through per-point means of log y (log_mean, natural log, with
  standard errors log_se over `seeds`): weighted least squares in log–log, α with its interval
  (normal, from the fit's covariance) and `chi2_verdict` on the log residuals."""
  x, log_mean, log_se = (np.asarray(v, float) for v in (x, log_mean, log_se))
  a_k2 = np.stack([np.ones_like(x), -np.log(x)], axis=1)
  coef, *_ = np.linalg.lstsq(a_k2 / log_se[:, None], log_mean / log_se, rcond=None)
  cov = np.linalg.inv((a_k2 / log_se[:, None]).T @ (a_k2 / log_se[:, None]))
  half = scipy.stats.norm.ppf((1 + level) / 2) * float(np.sqrt(cov[1, 1]))
  mean = np.exp(log_mean)
  gof = chi2_verdict(a_k2 @ coef, mean, mean * log_se, seeds, params=2)
  gof.pop('open_points')    # a bound at 0 has no meaning for a mean of logs
  return {'alpha': float(coef[1]), 'interval': [float(coef[1] - half), float(coef[1] + half)],
          'log_a': float(coef[0]), 'gof': gof}


def weak_test(gof: dict) -> bool:
  """Whether a passing verdict rests mostly on points whose 95% interval reaches 0 (`chi2_verdict`),
  which bound a law only from above."""
  return bool(gof.get('fits')) and 2 * gof.get('open_points', 0) > gof.get('points', 0)
