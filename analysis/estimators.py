"""Learning-curve estimators for extrapolation: fit on (x, y), predict y at larger x.

Baselines — the four estimators of Alabdulmohsin, Neyshabur & Zhai (2022), "Revisiting Neural
Scaling Laws in Language and Vision", re-implemented here from their equations (their fitting
procedures alternate least squares with gradient steps; these profile the nonlinear parameters
out with bounded 1-D/2-D searches, which reaches the same kind of optimum):
  M1  ε = β x^c                                   (log-log least squares)
  M2  ε − ε∞ = β x^c,  0 ≤ ε∞ < min ε
  M3  ε = β (1/x + γ)^c,  γ ≥ 0, c ≥ 0
  M4  (ε − ε∞) / (ε0 − ε)^α = β x^c,  ε0 > max ε (≤ an upper bound for bounded losses)

Ours:
  offset    ε = a x^(−α) + c      (powerlaw.fit: robust log-space fit over a grid of starts)
  recent    the offset law with residual weights w = x/x_max (later points count more)
  envelope  ε = ε0 ε̃ / sqrt(ε̃² + η²) with ε̃ = a x^(−α) + c — the saturating envelope of
            Rosenfeld et al. (2020) in one variable: the offset law far below ε0, bending to
            the random-guess level ε0 in the small-data region (weights sqrt(x/x_max))
  tail      the offset law fitted on the last half of the curve only
  blend     a weighted geometric mean of offset, recent, envelope and tail, each weighted by
            1/v², v its extrapolation error when refitted without the last quarter of the
            points and asked to predict them (validation on the curve's own tail)

Reference:
  last      the naive (persistence) forecast: every later x gets the last fitted ε. A fit that does
            not beat it has learned nothing about the curve's future from its past.

Every `fit_*` returns a function x -> predicted ε, or raises FitError.
"""

import itertools

import numpy as np
import scipy.optimize

from analysis import powerlaw

ERR_MARGIN = 1e-3


class FitError(RuntimeError):
  pass


def _need(x, k, name):
  if len(x) < k:
    raise FitError(f'{name} needs at least {k} points, got {len(x)}')


def _loglin(u, ly):
  """Least squares ly ≈ p0 + p1 u; returns (p0, p1, rss)."""
  a = np.stack([np.ones_like(u), u], axis=1)
  coef, *_ = np.linalg.lstsq(a, ly, rcond=None)
  return coef[0], coef[1], float(np.sum((a @ coef - ly) ** 2))


def fit_m1(x, y, **_):
  _need(x, 2, 'M1')
  lb, c, _ = _loglin(np.log(x), np.log(y))
  return lambda t: np.exp(lb) * np.asarray(t, float) ** c


def fit_m2(x, y, **_):
  _need(x, 3, 'M2')
  lx = np.log(x)
  hi = y.min() - ERR_MARGIN
  if hi <= 0:
    return fit_m1(x, y)

  def rss(e):
    return _loglin(lx, np.log(y - e))[2]

  grid = np.linspace(0, hi, 60, endpoint=False)
  e0 = grid[np.argmin([rss(e) for e in grid])]
  r = scipy.optimize.minimize_scalar(rss, bounds=(max(0, e0 - hi / 60), min(hi * (1 - 1e-9), e0 + hi / 60)),
                                     method='bounded')
  e = float(r.x) if r.fun <= rss(e0) else e0
  lb, c, _ = _loglin(lx, np.log(y - e))
  return lambda t: e + np.exp(lb) * np.asarray(t, float) ** c


def fit_m3(x, y, **_):
  _need(x, 3, 'M3')
  ly = np.log(y)

  def solve(lg):
    lb, c, rss = _loglin(np.log(1 / x + np.exp(lg)), ly)
    return (lb, c, rss) if c >= 0 else (lb, c, np.inf)

  grid = np.linspace(np.log(1e-3 / x.max()), np.log(10 / x.min()), 80)
  vals = [solve(g)[2] for g in grid]
  g0 = grid[int(np.argmin(vals))]
  r = scipy.optimize.minimize_scalar(lambda g: solve(g)[2], bounds=(g0 - 0.2, g0 + 0.2), method='bounded')
  lg = float(r.x) if r.fun <= min(vals) else g0
  lb, c, rss = solve(lg)
  if not np.isfinite(rss):
    return fit_m1(x, y)
  return lambda t: np.exp(lb) * (1 / np.asarray(t, float) + np.exp(lg)) ** c


def fit_m4(x, y, *, upper=None, **_):
  """M4 with (ε∞, ε0) profiled: for each, nonnegative least squares gives (β, −c, α)."""
  _need(x, 4, 'M4')
  lx = np.log(x)
  e_inf_hi = y.min() - ERR_MARGIN
  e0_lo = y.max() + ERR_MARGIN
  e0_hi = (upper + ERR_MARGIN) if upper is not None else y.max() * 10 + 1

  def solve(e_inf, e0):
    a = np.stack([np.ones_like(lx), -np.ones_like(lx), -lx, np.log(e0 - y)], axis=1)
    coef, rnorm = scipy.optimize.nnls(a, np.log(y - e_inf))
    return coef[0] - coef[1], -coef[2], coef[3], rnorm**2

  def obj(p):
    e_inf, e0 = p
    if not (0 <= e_inf < max(e_inf_hi, 1e-12) and e0_lo <= e0 <= e0_hi):
      return np.inf
    return solve(e_inf, e0)[3]

  if e_inf_hi <= 0:
    raise FitError('M4 needs min loss > 1e-3')
  starts = itertools.product(np.linspace(0, e_inf_hi, 5, endpoint=False),
                             np.linspace(e0_lo, e0_hi, 4))
  best = min((scipy.optimize.minimize(obj, s, method='Nelder-Mead',
                                      options={'xatol': 1e-6, 'fatol': 1e-10}) for s in starts),
             key=lambda r: r.fun)
  if not np.isfinite(best.fun):
    raise FitError('M4 found no feasible parameters')
  e_inf, e0 = best.x
  lb, c, alpha, _ = solve(e_inf, e0)
  b = e0 - e_inf

  def predict(t):
    out = []
    for xi in np.atleast_1d(np.asarray(t, float)):
      f = np.exp(lb) * xi**c
      # w = f (b − w)^α has one root in [0, b]: the left side grows, the right shrinks.
      g = lambda w: w - f * (b - w) ** alpha
      out.append(e_inf + (scipy.optimize.brentq(g, 0.0, b) if g(b) > 0 else b))
    return np.asarray(out)
  return predict


def fit_offset(x, y, **_):
  f = powerlaw.fit(x, y)
  if not f.success:
    raise FitError('power law with offset did not converge')
  return f


def fit_recent(x, y, **_):
  f = powerlaw.fit(x, y, weights=x / x.max())
  if not f.success:
    raise FitError('weighted power law did not converge')
  return f


def fit_tail(x, y, **_):
  k = max(4, int(np.ceil(len(x) / 2)))
  return fit_offset(x[-k:], y[-k:])


def fit_envelope(x, y, *, upper=None, **_):
  """ε = ε0 ε̃/sqrt(ε̃² + η²), ε̃ = a x^(−α) + c; soft-L1 on log residuals, weights sqrt(x/x_max)."""
  _need(x, 5, 'envelope')
  w = np.sqrt(x / x.max())
  lx0 = np.mean(np.log(x))
  u = np.log(x) - lx0
  ly = np.log(y)
  e0_hi = upper if upper is not None else 10 * y.max()

  def model(th, uu):
    la, alpha, c, lin, e0 = th
    et = np.exp(la - alpha * uu) + c
    return e0 * et / np.sqrt(et**2 + np.exp(2 * lin))

  def res(th):
    return w * (np.log(np.maximum(model(th, u), 1e-300)) - ly)

  best = None
  for alpha0, frac, eta_f in itertools.product((0.3, 1.0), (0.0, 0.5), (1.0, 3.0)):
    e0 = min(y.max() * 1.05, e0_hi)
    th0 = [np.log(y.mean()), alpha0, frac * y.min(), np.log(eta_f * e0), e0]
    lo = [-np.inf, 0, 0, -np.inf, y.max() * 0.999]
    hi = [np.inf, powerlaw.ALPHA_MAX, y.max(), np.inf, max(e0_hi, y.max())]
    th0 = np.clip(th0, lo, hi)
    r = scipy.optimize.least_squares(res, th0, bounds=(lo, hi), loss='soft_l1', f_scale=0.05,
                                     x_scale='jac', max_nfev=3000)
    if best is None or r.cost < best.cost:
      best = r
  if best is None or not np.all(np.isfinite(best.x)):
    raise FitError('envelope fit failed')
  return lambda t: model(best.x, np.log(np.asarray(t, float)) - lx0)


def fit_blend(x, y, *, upper=None, holdout=0.25, **_):
  k = max(1, int(round(len(x) * holdout)))
  weights, fits = [], []
  for f in BLENDED:
    try:
      v = np.sqrt(np.mean((np.log(f(x[:-k], y[:-k], upper=upper)(x[-k:])) - np.log(y[-k:])) ** 2))
      g = f(x, y, upper=upper)
    except (FitError, ValueError, FloatingPointError):
      continue
    if np.isfinite(v):
      weights.append(1.0 / max(v, 1e-6) ** 2)
      fits.append(g)
  if not fits:
    raise FitError('no blended estimator could be fitted')
  w = np.asarray(weights) / np.sum(weights)
  return lambda t: np.exp(sum(wi * np.log(g(t)) for wi, g in zip(w, fits)))


def fit_last(x, y, **_):
  _need(x, 1, 'last')
  return lambda t: np.full(np.shape(t), float(y[np.argmax(x)]))


BLENDED = (fit_offset, fit_recent, fit_envelope, fit_tail)
BASELINES = {'M1': fit_m1, 'M2': fit_m2, 'M3': fit_m3, 'M4': fit_m4}
OURS = {'offset': fit_offset, 'recent': fit_recent, 'envelope': fit_envelope, 'tail': fit_tail,
        'blend': fit_blend}
REFERENCE = {'last': fit_last}
ESTIMATORS = {**BASELINES, **OURS, **REFERENCE}
