"""Learning-curve regions of Hestness et al. (2017), read off a fitted ε(n) = a n^(−α) + c.

  small-data   n < n_small: the power law is above the best-guess error ε0 (no better than
               guessing; for normalized error ε0 = 1, the error of predicting the mean);
  power-law    n_small <= n < n_irreducible;
  irreducible  n >= n_irreducible = (a/c)^(1/α): the power-law term has fallen below the offset c.

A boundary outside the measured range means the region was not reached; c = 0 (or c below
`c_floor`) means no irreducible region at any n. `quoted` decides which boundaries are results.
"""

import numpy as np


def boundaries(a: float, alpha: float, c: float, *, eps0: float = 1.0, c_floor: float = 0.0) -> dict:
  """{'n_small': ..., 'n_irreducible': ...} (None where the boundary does not exist)."""
  if not (np.isfinite(a) and np.isfinite(alpha) and a > 0 and alpha > 0):
    return {'n_small': None, 'n_irreducible': None}
  n_small = (a / eps0) ** (1 / alpha)
  n_irr = (a / c) ** (1 / alpha) if c > c_floor else None
  return {'n_small': float(n_small), 'n_irreducible': None if n_irr is None else float(n_irr)}


def classify(ns, a, alpha, c, **kw) -> dict:
  """Boundaries, and the measured n's of each region."""
  b = boundaries(a, alpha, c, **kw)
  ns = np.asarray(ns, float)
  lo = b['n_small'] if b['n_small'] is not None else -np.inf
  hi = b['n_irreducible'] if b['n_irreducible'] is not None else np.inf
  return {**b,
          'small_data': [float(n) for n in ns if n < lo],
          'power_law': [float(n) for n in ns if lo <= n < hi],
          'irreducible': [float(n) for n in ns if n >= hi]}


def quoted(region: dict, ns, *, fits: bool, c_interval=None) -> dict:
  """The boundaries a report may state: {'n_small', 'n_irreducible'} (None where not), and 'why'
  for each one withheld. Only for a curve that passes its goodness-of-fit test, only inside the
  measured range of n, and n_irreducible only where the offset's interval excludes 0: an offset
  the seeds cannot tell from 0 shows no irreducible level (a realizable width's true one is 0)."""
  out, why = {}, {}
  lo, hi = float(np.min(ns)), float(np.max(ns))
  for name in ('n_small', 'n_irreducible'):
    value = region[name]
    if not fits:
      why[name] = 'the power law does not fit'
    elif value is None:
      why[name] = 'no boundary'
    elif not lo <= value <= hi:
      why[name] = 'outside the measured range'
    elif name == 'n_irreducible' and not c_interval:
      why[name] = 'no interval for the offset c (fewer than two seeds)'
    elif name == 'n_irreducible' and not c_interval[0] > 0:
      why[name] = 'the offset c is not distinguishable from 0 (its 95% interval reaches 0)'
    out[name] = None if name in why else float(value)
  return {**out, 'why': why}
