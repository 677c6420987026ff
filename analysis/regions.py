"""Learning-curve regions of Hestness et al. (2017), read off a fitted ε(n) = a n^(−α) + c.

  small-data   n < n_small: the power law is above the best-guess error ε0 (no better than
               guessing; for normalized error ε0 = 1, the error of predicting the mean);
  power-law    n_small <= n < n_irreducible;
  irreducible  n >= n_irreducible = (a/c)^(1/α): the power-law term has fallen below the offset c.

A boundary outside the measured range means the region was not reached; c = 0 (or c below
`c_floor`) means no irreducible region at any n.
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
