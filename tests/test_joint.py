"""analysis.joint: the envelope's limits and a known joint law recovered."""

import numpy as np
import pytest

from analysis import joint


def test_envelope_limits():
  eta, eps0 = 0.3, 1.7
  big = np.array([1e3, 1e5])
  np.testing.assert_allclose(joint.envelope(big, eps0, eta), eps0, rtol=1e-6)     # ε̃ ≫ η: ε0
  small = np.array([1e-4, 1e-7])
  np.testing.assert_allclose(joint.envelope(small, eps0, eta), eps0 * small / eta, rtol=1e-6)  # ε̃ ≪ η
  np.testing.assert_allclose(joint.envelope(eta, eps0, eta), eps0 / np.sqrt(2), rtol=1e-12)


TRUE_JOINT = {'a': 5.0, 'alpha': 0.7, 'b': 2.0, 'beta': 1.1, 'c_inf': 2e-3, 'eta': 0.5, 'eps0': 1.0}


def _joint_grid():
  # Wide enough that every term dominates somewhere (c∞ in the large corner), so all are identified.
  m, n = np.meshgrid(2.0 ** np.arange(0, 11), np.r_[2.0 ** np.arange(4, 18), np.inf], indexing='ij')
  m, n = m.ravel(), n.ravel()
  return m, n, joint.predict(TRUE_JOINT, m, n)


def test_joint_fit_recovers_a_known_law():
  m, n, eps = _joint_grid()
  f = joint.fit(m, n, eps)
  assert f.success and abs(f.mu) < 1e-4 and f.sigma < 1e-3
  # Identifiable up to the scale of (a, b, c∞, η): the fit's gauge is η = 1.
  for k in ('alpha', 'beta'):
    assert f.params[k] == pytest.approx(TRUE_JOINT[k], rel=1e-3), k
  for k in ('a', 'b', 'c_inf'):
    assert f.params[k] / f.params['eta'] == pytest.approx(TRUE_JOINT[k] / TRUE_JOINT['eta'], rel=1e-3), k
  noisy = eps * (1 + 0.02 * np.random.default_rng(0).standard_normal(len(eps)))
  cv = joint.cross_validate(m, n, noisy)
  assert abs(cv['mu']) < 0.01 and cv['sigma'] < 0.04
  # Noise-free, the law fitted on the small corner predicts the rest of the grid exactly.
  ex = joint.extrapolate(m, n, eps, m_max=32, n_max=2048)
  assert ex['test_cells'] > ex['fit_cells'] > 0
  assert abs(ex['mu']) < 1e-3 and ex['sigma'] < 1e-3, ex
