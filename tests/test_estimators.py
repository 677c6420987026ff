"""analysis.estimators: the published baselines and ours on exact curves."""

import numpy as np

from analysis import estimators


def test_baselines_on_exact_curves():
  x = 2.0 ** np.arange(10, 24)
  np.testing.assert_allclose(estimators.fit_m1(x, 2 * x**-0.3)(x), 2 * x**-0.3, rtol=1e-10)
  y2 = 0.1 + 2 * x**-0.3
  np.testing.assert_allclose(estimators.fit_m2(x[:10], y2[:10])(x[10:]), y2[10:], rtol=1e-3)
  y3 = 0.5 * (1 / x + 1e-5) ** 0.4
  np.testing.assert_allclose(estimators.fit_m3(x[:10], y3[:10])(x[10:]), y3[10:], rtol=2e-3)
  for name in estimators.OURS:
    pred = estimators.ESTIMATORS[name](x[:10], y2[:10], upper=None)(x[10:])
    np.testing.assert_allclose(pred, y2[10:], rtol=0.02, err_msg=name)
