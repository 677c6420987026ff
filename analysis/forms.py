"""Joint scaling forms ε(m, n) in width m and sample count n, fitted in log space (docs/design.md §5).

Each form is a pure function of its parameter vector θ giving log ε̂ at cells (m, n), with m and
n divided by their geometric means over the fitted cells (m̃, ñ: decorrelates coefficients from
exponents). Coefficients are fitted as logs (positive by construction):
  envelope    ε0 ε̃/sqrt(ε̃² + 1), ε̃ = A ñ^−α + B m̃^−β + E        Rosenfeld et al. 2020 (ε0 = 1, η = 1)
  additive    E + A ñ^−α + B m̃^−β                                Hoffmann et al. 2022
  kaplan      (A ñ^−1 + B m̃^−γ)^α                                Kaplan et al. 2020, L(N, D)
  power_mean  E + ((A ñ^−α)^q + (B m̃^−β)^q)^(1/q)                 q = 1 additive, q → ∞ the max
  realizable  ε∞(m) + A ñ^−α m̃^−γ, ε∞(m) measured, not fitted: the online column's mean error at
              width m (the learner's error with unlimited data: R(m) plus what the online learner
              itself misses, an upper bound on R(m)), which the data term decays to
Cells at the precision floor are censored: ε is an upper bound there, so only a prediction above
it is a residual.
"""

import dataclasses
import functools
import itertools
from typing import Callable, NamedTuple

import numpy as np
import scipy.optimize

from analysis import powerlaw

HUBER_SCALE = 0.5   # natural-log residual where the robust loss turns linear (a factor 1.65)


def precision_floor(dtype: str) -> float:
  """The normalized error below which a cell's value is set by the dtype, not the learner:
  1e4 ε_mach² (residuals at ε_mach relative, squared; 4.9e-28 in float64, 1.4e-10 in float32)."""
  return 1e4 * float(np.finfo(dtype).eps) ** 2


class Cells(NamedTuple):
  """The cells a joint form is fitted to, all (C,): width, sample count, seed-mean error, its
  standard error and seed count, R(m) measured at the cell's width (NaN where unknown), and
  whether ε is censored (at the precision floor: an upper bound)."""
  m: np.ndarray
  n: np.ndarray
  eps: np.ndarray
  se: np.ndarray
  seeds: np.ndarray
  r: np.ndarray
  censored: np.ndarray

  def subset(self, mask) -> 'Cells':
    return Cells(*(np.asarray(a)[mask] for a in self))


@dataclasses.dataclass(frozen=True)
class Form:
  """A joint form: its formula, parameter names, log ε̂ = log_eps(θ, log ñ, log m̃, R), bounds,
  start grid."""
  name: str
  formula: str
  params: tuple
  log_eps: Callable
  lower: tuple
  upper: tuple
  start_grid: dict      # parameter -> start values (the rest start at the data's level)
  needs_r: bool = False


def _lse(*terms):
  """log Σ exp(terms), elementwise (pairwise logaddexp: 30× faster than logsumexp on a stack)."""
  return functools.reduce(np.logaddexp, terms)


def _additive(th, u, v, r):
  le, la, alpha, lb, beta = th
  return _lse(la - alpha * u, lb - beta * v, le)


def _envelope(th, u, v, r):
  lt = _additive(th, u, v, r)
  return lt - 0.5 * np.logaddexp(2 * lt, 0.0)


def _kaplan(th, u, v, r):
  la, lb, gamma, alpha = th
  return alpha * _lse(la - u, lb - gamma * v)


def _power_mean(th, u, v, r):
  le, la, alpha, lb, beta, lq = th
  q = np.exp(lq)
  return _lse(le, _lse(q * (la - alpha * u), q * (lb - beta * v)) / q)


def _realizable(th, u, v, r):
  la, alpha, gamma = th
  with np.errstate(divide='ignore'):
    return _lse(np.log(np.maximum(r, 0.0)), la - alpha * u - gamma * v)


EXPONENT = (0.0, 8.0)
LOG_COEF = (-60.0, 20.0)
FORMS = {f.name: f for f in (
    Form('envelope', 'ε̃/sqrt(ε̃² + 1), ε̃ = E + A ñ^−α + B m̃^−β', ('log_E', 'log_A', 'alpha', 'log_B', 'beta'), _envelope,
         (LOG_COEF[0], LOG_COEF[0], EXPONENT[0], LOG_COEF[0], EXPONENT[0]),
         (np.log(10.0), LOG_COEF[1], EXPONENT[1], LOG_COEF[1], EXPONENT[1]),
         {'alpha': (0.5, 2.0), 'beta': (0.5, 2.0), 'log_E': (-25.0, -5.0)}),
    Form('additive', 'E + A ñ^−α + B m̃^−β', ('log_E', 'log_A', 'alpha', 'log_B', 'beta'), _additive,
         (LOG_COEF[0], LOG_COEF[0], EXPONENT[0], LOG_COEF[0], EXPONENT[0]),
         (np.log(10.0), LOG_COEF[1], EXPONENT[1], LOG_COEF[1], EXPONENT[1]),
         {'alpha': (0.5, 2.0), 'beta': (0.5, 2.0), 'log_E': (-25.0, -5.0)}),
    Form('kaplan', '(A ñ^−1 + B m̃^−γ)^α', ('log_A', 'log_B', 'gamma', 'alpha'), _kaplan,
         (LOG_COEF[0], LOG_COEF[0], EXPONENT[0], 0.01), (LOG_COEF[1], LOG_COEF[1], EXPONENT[1], EXPONENT[1]),
         {'gamma': (0.5, 2.0), 'alpha': (0.5, 2.0)}),
    Form('power_mean', 'E + ((A ñ^−α)^q + (B m̃^−β)^q)^(1/q)', ('log_E', 'log_A', 'alpha', 'log_B', 'beta', 'log_q'), _power_mean,
         (LOG_COEF[0], LOG_COEF[0], EXPONENT[0], LOG_COEF[0], EXPONENT[0], np.log(0.1)),
         (np.log(10.0), LOG_COEF[1], EXPONENT[1], LOG_COEF[1], EXPONENT[1], np.log(50.0)),
         {'alpha': (0.5, 2.0), 'beta': (0.5, 2.0), 'log_E': (-25.0,), 'log_q': (0.0, 2.0)}),
    Form('realizable', 'ε∞(m) + A ñ^−α m̃^−γ', ('log_A', 'alpha', 'gamma'), _realizable,
         (LOG_COEF[0], EXPONENT[0], -EXPONENT[1]), (LOG_COEF[1], EXPONENT[1], EXPONENT[1]),
         {'alpha': (0.5, 1.5, 3.0), 'gamma': (0.0, 1.0)}, needs_r=True),
)}


class Scale(NamedTuple):
  """The geometric means cells' m and n are divided by."""
  m0: float
  n0: float

  @classmethod
  def of(cls, cells: Cells) -> 'Scale':
    return cls(float(np.exp(np.mean(np.log(cells.m)))), float(np.exp(np.mean(np.log(cells.n)))))


class FormFit(NamedTuple):
  """A fitted form: its name, θ (named), the scale it was fitted at, and whether it converged."""
  form: str
  theta: np.ndarray
  scale: Scale
  success: bool

  def params(self) -> dict:
    return dict(zip(FORMS[self.form].params, map(float, self.theta)))

  def log_predict(self, cells: Cells) -> np.ndarray:
    """log ε̂ at `cells` (natural log)."""
    u, v = np.log(cells.n / self.scale.n0), np.log(cells.m / self.scale.m0)
    return FORMS[self.form].log_eps(self.theta, u, v, cells.r)


def residuals(fit: FormFit, cells: Cells) -> np.ndarray:
  """log ε̂ − log ε per cell; at censored cells only the excess above the bound (else 0)."""
  return powerlaw.censor(fit.log_predict(cells) - np.log(cells.eps), cells.censored)


def applicable(form: Form, cells: Cells) -> bool:
  return not form.needs_r or bool(np.all(np.isfinite(cells.r)))


def fit(name: str, cells: Cells, *, start: FormFit | None = None) -> FormFit:
  """Fits form `name` to `cells`: Huber loss (HUBER_SCALE) on log residuals, summed, from the form's
  grid of starts (or from `start`), bounded least squares (scipy's trust-region reflective)."""
  form = FORMS[name]
  free = len(form.params)
  if len(cells.eps) <= free or not applicable(form, cells):
    return FormFit(name, np.full(free, np.nan), Scale(1.0, 1.0), False)
  scale = Scale.of(cells) if start is None else start.scale
  log_eps = np.log(cells.eps)

  def res(th):
    return residuals(FormFit(name, th, scale, True), cells)

  lo, hi = np.asarray(form.lower, float), np.asarray(form.upper, float)
  if start is not None and start.success:
    starts = [start.theta]
  else:
    level = float(np.median(log_eps))
    keys = list(form.start_grid)
    starts = []
    for combo in itertools.product(*(form.start_grid[k] for k in keys)):
      chosen = dict(zip(keys, combo))
      starts.append([chosen.get(p, level if p.startswith('log_') else 1.0) for p in form.params])
  best = None
  for th0 in starts:
    th0 = np.clip(np.asarray(th0, float), lo + 1e-9, hi - 1e-9)
    with np.errstate(all='ignore'):
      try:
        r = scipy.optimize.least_squares(res, th0, bounds=(lo, hi), loss='huber', f_scale=HUBER_SCALE,
                                         x_scale='jac', max_nfev=3000)
      except ValueError:
        continue
    if np.all(np.isfinite(r.fun)) and (best is None or r.cost < best.cost):
      best = r
  if best is None:
    return FormFit(name, np.full(free, np.nan), scale, False)
  return FormFit(name, best.x, scale, bool(best.status > 0))
