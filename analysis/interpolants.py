"""The interpolants' law past n* (docs/design.md §2's headline): at realizable widths, the students whose
training error reached the floor but whose test error did not, and whether that test error falls
as a power law in n.

Their errors span decades within a cell, so a cell's value is the geometric mean (the decomposition's
interp_log_mean ± interp_log_se, natural log), fitted by a n^(−α) in log–log (`powerlaw.log_linear`)
through the longest tail of sample counts it fits: past n* the error first collapses (by orders of
magnitude between two sample counts) and only then settles onto a law, so the tail's start is
chosen by the fit, as Clauset, Shalizi & Newman (2009) choose a power law's x_min.
"""

import numpy as np

from analysis import powerlaw

MIN_TAIL = 4           # sample counts in a tail: 2 degrees of freedom for its χ² test
MIN_INTERPOLANTS = 4   # per sample count: below 4 a residual's t distribution has infinite variance (2: Cauchy)


def tail_law(cells) -> dict | None:
  """`powerlaw.log_linear` through the longest tail of `cells` (rows with n, interp_log_mean,
  interp_log_se, interpolants) of at least MIN_TAIL that passes its χ² test, plus 'n_from' and
  'points'; None when no tail passes."""
  cells = sorted(cells, key=lambda r: r['n'])
  for start in range(len(cells) - MIN_TAIL + 1):
    tail = cells[start:]
    law = powerlaw.log_linear(*(np.asarray([r[k] for r in tail], float)
                                for k in ('n', 'interp_log_mean', 'interp_log_se', 'interpolants')))
    if law['gof']['fits']:
      return {**law, 'n_from': tail[0]['n'], 'points': len(tail)}
  return None


def by_width(rows) -> dict:
  """{m: {'cells': sample counts past n* with MIN_INTERPOLANTS or more, 'law': `tail_law` or None}}
  for each width the embedding certificate makes realizable; 'law' is None also when the cells
  are fewer than MIN_TAIL."""
  out = {}
  for m in sorted({r['m'] for r in rows if r['R_source'] == 'certificate'}):
    cells = [r for r in rows if r['m'] == m and r['past_n_star'] and r['interpolants'] >= MIN_INTERPOLANTS
             and r['interp_log_se'] > 0]
    out[m] = {'cells': len(cells), 'law': tail_law(cells) if len(cells) >= MIN_TAIL else None}
  return out
