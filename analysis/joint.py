"""The joint scaling law in width m and sample count n (Rosenfeld et al. 2020; docs/design.md §5).

  ε̃(m, n) = a n^(−α) + b m^(−β) + c∞                 (n = ∞ drops the first term)
  ε̂(m, n) = ε0 |ε̃ / (ε̃ − iη)| = ε0 ε̃ / sqrt(ε̃² + η²)

The envelope follows ε̃ far below the random-guess error ε0 (ε̂ ≈ ε0 ε̃/η when ε̃ ≪ η) and
saturates at ε0 when ε̃ ≫ η. It is invariant under (a, b, c∞, η) -> λ(a, b, c∞, η), so only
a/η, b/η, c∞/η are identifiable (a fit of all of them wanders along that line); the fit fixes
the gauge η = 1, which makes a, b and c∞ errors in units of ε0. Parameters are fitted by least squares on the relative divergence
δ = (ε̂ − ε)/ε, from a grid of starts; fit quality is the mean μ and standard deviation σ of δ,
in-sample, out-of-fold (k-fold cross-validation over cells) and on the cells left out when
fitting only the small corner of the grid (extrapolation).
"""

import dataclasses
import itertools
import warnings

import numpy as np
import scipy.optimize

NAMES = ('a', 'alpha', 'b', 'beta', 'c_inf', 'eta', 'eps0')


def envelope(eps_tilde, eps0, eta):
  """ε0 |ε̃/(ε̃ − iη)|."""
  eps_tilde = np.asarray(eps_tilde, float)
  return eps0 * np.abs(eps_tilde / (eps_tilde - 1j * eta))


def predict(params: dict, m, n):
  """ε̂(m, n); n may be inf (the online column)."""
  m, n = np.asarray(m, float), np.asarray(n, float)
  with np.errstate(divide='ignore'):
    n_term = np.where(np.isinf(n), 0.0, params['a'] * n ** (-params['alpha']))
  eps_tilde = n_term + params['b'] * m ** (-params['beta']) + params['c_inf']
  return envelope(eps_tilde, params['eps0'], params['eta'])


def divergence(params, m, n, eps):
  """δ = (ε̂ − ε)/ε per cell."""
  return (predict(params, m, n) - eps) / eps


@dataclasses.dataclass
class JointFit:
  params: dict
  mu: float      # mean δ in-sample
  sigma: float   # std δ in-sample
  cells: int
  success: bool

  def to_json(self) -> dict:
    return {'params': self.params, 'mu': self.mu, 'sigma': self.sigma, 'cells': self.cells,
            'success': self.success}


def _unpack(theta, m0, n0, eps0):
  la, alpha, lb, beta, lc = theta[:5]
  e0 = theta[5] if eps0 is None else eps0
  # a and b are fitted for m/m0 and n/n0 (decorrelates them from the exponents); η = 1 (gauge).
  return {'a': float(np.exp(la) * n0**alpha), 'alpha': float(alpha), 'b': float(np.exp(lb) * m0**beta),
          'beta': float(beta), 'c_inf': float(np.exp(lc)), 'eta': 1.0, 'eps0': float(e0)}


def fit(m, n, eps, *, eps0: float | None = 1.0, objective: str = 'delta') -> JointFit:
  """Fits the joint form to cells (m_i, n_i, ε_i).

  Args:
    eps0: the random-guess error (1 = the error of predicting the mean, docs/design.md §2); None fits it.
    objective: 'delta' — least squares on δ (Rosenfeld et al.); 'log' — least squares on
      log(ε̂/ε), symmetric in over- and under-prediction (δ is bounded below by −1 but not above,
      so when the form cannot follow the data the δ-fit settles below it).
  """
  if objective not in ('delta', 'log'):
    raise ValueError(f'objective must be delta or log, got {objective!r}')
  m, n, eps = (np.asarray(v, float) for v in (m, n, eps))
  keep = np.isfinite(eps) & (eps > 0)
  m, n, eps = m[keep], n[keep], eps[keep]
  if len(eps) < 8:
    return JointFit({k: float('nan') for k in NAMES}, float('nan'), float('nan'), len(eps), False)
  m0 = np.exp(np.mean(np.log(m)))
  finite_n = n[np.isfinite(n)]
  n0 = np.exp(np.mean(np.log(finite_n))) if len(finite_n) else 1.0

  def residuals(theta):
    params = _unpack(theta, m0, n0, eps0)
    if objective == 'log':
      return np.log(np.maximum(predict(params, m, n), 1e-300) / eps)
    return divergence(params, m, n, eps)

  lo = [-40, 0.0, -40, 0.0, np.log(1e-14)] + ([] if eps0 is not None else [0.1])
  hi = [10, 8.0, 10, 8.0, np.log(10.0)] + ([] if eps0 is not None else [10.0])
  best = None
  level = np.log(np.median(eps))
  for alpha, beta, lc in itertools.product((0.5, 1.5), (0.5, 1.5), (np.log(1e-10), np.log(np.min(eps)))):
    theta0 = [level, alpha, level, beta, lc] + ([] if eps0 is not None else [1.0])
    theta0 = np.clip(theta0, lo, hi)
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', RuntimeWarning)
      r = scipy.optimize.least_squares(residuals, theta0, bounds=(lo, hi), x_scale='jac', max_nfev=4000)
    if np.all(np.isfinite(r.fun)) and (best is None or r.cost < best.cost):
      best = r
  if best is None:
    return JointFit({k: float('nan') for k in NAMES}, float('nan'), float('nan'), len(eps), False)
  params = _unpack(best.x, m0, n0, eps0)
  delta = divergence(params, m, n, eps)
  return JointFit(params, float(np.mean(delta)), float(np.std(delta)), len(eps), bool(best.success))


def _mu_sigma(d) -> tuple[float, float]:
  d = np.asarray(d, float)
  d = d[np.isfinite(d)]
  return (float(np.mean(d)), float(np.std(d))) if len(d) else (float('nan'), float('nan'))


def cross_validate(m, n, eps, *, folds=5, seed=0, **fit_kw) -> dict:
  """μ and σ of δ on held-out cells, k-fold over cells."""
  m, n, eps = (np.asarray(v, float) for v in (m, n, eps))
  order = np.random.default_rng(seed).permutation(len(eps))
  deltas = []
  for k in range(folds):
    test = order[k::folds]
    train = np.setdiff1d(order, test)
    f = fit(m[train], n[train], eps[train], **fit_kw)
    if f.success:
      deltas.append(divergence(f.params, m[test], n[test], eps[test]))
  d = np.concatenate(deltas) if deltas else np.array([np.nan])
  mu, sigma = _mu_sigma(d)
  return {'mu': mu, 'sigma': sigma, 'folds': folds, 'cells': int(np.isfinite(d).sum())}


def extrapolate(m, n, eps, *, m_max: float, n_max: float, **fit_kw) -> dict:
  """Fits the cells with m <= m_max and n <= n_max (the small corner), scores δ on the rest."""
  m, n, eps = (np.asarray(v, float) for v in (m, n, eps))
  corner = (m <= m_max) & (n <= n_max)
  f = fit(m[corner], n[corner], eps[corner], **fit_kw)
  d = divergence(f.params, m[~corner], n[~corner], eps[~corner]) if f.success else np.array([np.nan])
  mu, sigma = _mu_sigma(d)
  return {'m_max': float(m_max), 'n_max': float(n_max), 'fit_cells': int(corner.sum()),
          'test_cells': int((~corner).sum()), 'mu': mu, 'sigma': sigma, 'params': f.params, 'success': f.success}
