"""Intrinsic dimension estimators, so that d is measured and not only set (docs/design.md §3).

TwoNN (Facco, d'Errico, Rodriguez & Laio 2017): for each point, μ = r2/r1, the ratio of the
distances to its second and first nearest neighbours. If the density is locally uniform on a
d-dimensional manifold, μ follows a Pareto law, P(μ > t) = t^(−d), so −log(1 − F(μ)) = d log μ.
d is the slope of that line through the origin, fitted on the empirical CDF after discarding
the largest 10% of μ (they come from points whose neighbourhood is not locally uniform).

MLE (Levina & Bickel 2005), with MacKay & Ghahramani's correction: per point,
m_k(x) = [(1/(k−1)) Σ_{j<k} log(T_k / T_j)]^(−1) from the distances T_j to its k nearest
neighbours; d = the inverse of the mean of 1/m_k.
"""

import numpy as np
import scipy.spatial


def _neighbour_distances(x_nd, k):
  x = np.asarray(x_nd, np.float64)
  dist, _ = scipy.spatial.cKDTree(x).query(x, k=k + 1)
  dist = dist[:, 1:]                      # drop the point itself
  keep = dist[:, 0] > 0                   # duplicates have no ratio
  return dist[keep]


def two_nn(x_nd, discard: float = 0.1) -> float:
  """TwoNN estimate of the intrinsic dimension of the points x (n, D)."""
  r = _neighbour_distances(x_nd, 2)
  mu = np.sort(r[:, 1] / r[:, 0])
  n = len(mu)
  f = np.arange(1, n + 1) / n
  keep = slice(0, int(n * (1 - discard)))
  u, v = np.log(mu[keep]), -np.log(1 - f[keep])
  return float(np.dot(u, v) / np.dot(u, u))


def mle(x_nd, k: int = 20) -> float:
  """Levina–Bickel maximum-likelihood estimate with k neighbours (MacKay–Ghahramani average)."""
  t = _neighbour_distances(x_nd, k)
  inv_m = np.mean(np.log(t[:, -1:] / t[:, :-1]), axis=1)   # 1/m_k(x), with the 1/(k−1) average
  return float(1.0 / np.mean(inv_m))
