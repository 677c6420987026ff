"""analysis.regions: Hestness regions of a known law."""

import pytest

from analysis import regions


def test_regions_from_a_known_law():
  a, alpha, c = 100.0, 0.5, 1e-2
  b = regions.classify([1, 100, 1e4, 1e5, 1e6, 1e7], a, alpha, c)
  assert b['n_small'] == pytest.approx(1e4) and b['n_irreducible'] == pytest.approx(1e8)
  assert b['small_data'] == [1, 100] and b['power_law'] == [1e4, 1e5, 1e6, 1e7] and b['irreducible'] == []
  assert regions.boundaries(a, alpha, 0.0)['n_irreducible'] is None
