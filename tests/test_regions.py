"""analysis.regions: Hestness regions of a known law."""

import numpy as np
import pytest

from analysis import powerlaw, regions


def test_regions_from_a_known_law():
  a, alpha, c = 100.0, 0.5, 1e-2
  b = regions.classify([1, 100, 1e4, 1e5, 1e6, 1e7], a, alpha, c)
  assert b['n_small'] == pytest.approx(1e4) and b['n_irreducible'] == pytest.approx(1e8)
  assert b['small_data'] == [1, 100] and b['power_law'] == [1e4, 1e5, 1e6, 1e7] and b['irreducible'] == []
  assert regions.boundaries(a, alpha, 0.0)['n_irreducible'] is None


def _quoted_regions(c_true, seed, stuck=False):
  """Six seeds of 2 n^(−1) + c_true with 10% log-normal noise on n = 16 .. 65536, fitted and
  bootstrapped as analysis.fit does; the regions a report may quote. stuck: one seed of the six
  stops at 1e-3 from n = 1024 on (a learner stuck above the floor, as at a mixture width)."""
  ns = 2.0 ** np.arange(4, 17)
  rng = np.random.default_rng(seed)
  y_sx = (2.0 / ns + c_true) * np.exp(0.1 * rng.normal(size=(6, len(ns))))
  if stuck:
    y_sx[0] = np.maximum(y_sx[0], np.where(ns >= 1024, 1e-3, 0.0))
  b = powerlaw.bootstrap(ns, y_sx, n_boot=100)
  region = regions.classify(ns, **b['fit'].params())
  return regions.quoted(region, ns, fits=True, c_interval=b['interval'].get('c'))


def test_irreducible_region_quoted_only_for_an_offset_distinguishable_from_0():
  """With c = 1e-4 on every seed the power-law term falls below it at n = 2/c = 2e4, inside the
  range: quoted within 30% in 4 of 5 draws at least. With c = 0 but one seed in six stuck at
  1e-3, the mean levels off near 1.7e-4 inside the range too, but resampling the seeds can drop
  the stuck one: c's interval reaches 0 and the boundary is withheld (4 of 5 draws at least)."""
  near = [q['n_irreducible'] is not None and abs(q['n_irreducible'] / 2e4 - 1) < 0.3
          for q in (_quoted_regions(1e-4, s) for s in range(5))]
  withheld = [q['n_irreducible'] is None and 'offset' in q['why'].get('n_irreducible', '')
              for q in (_quoted_regions(0.0, s, stuck=True) for s in range(5))]
  assert sum(near) >= 4 and sum(withheld) >= 4, (near, withheld)


def test_no_region_quoted_for_a_curve_that_does_not_fit_or_outside_the_range():
  region = regions.classify([1, 100, 1e4, 1e5, 1e6, 1e7], 100.0, 0.5, 1e-2)   # n_irreducible = 1e8
  q = regions.quoted(region, [1, 1e7], fits=True, c_interval=[5e-3, 2e-2])
  assert q['n_small'] == pytest.approx(1e4) and q['n_irreducible'] is None
  assert q['why'] == {'n_irreducible': 'outside the measured range'}
  q = regions.quoted(region, [1, 1e9], fits=False, c_interval=[5e-3, 2e-2])
  assert q['n_small'] is None and q['n_irreducible'] is None
  q = regions.quoted(region, [1, 1e9], fits=True, c_interval=None)   # one seed: no interval for c
  assert q['n_irreducible'] is None and 'no interval' in q['why']['n_irreducible']
