"""The report's decomposition section (docs/design.md §5): where each source of error dominates, recovery
and the laws past n*, the ensemble estimator, and the per-(m, n) tables; every sentence computed
from the run's decomposition rows (`analysis.decompose`).
"""

import math

import numpy as np

from analysis import decompose, interpolants, powerlaw
from analysis.sections import fmt, table, verdict


SOURCES = ('R', 'U', 'D_optimization', 'D_bias')


def _dominant(r) -> str:
  """The largest of the error's sources in a row (R, U, D_optimization, D_bias)."""
  return max(SOURCES, key=lambda k: r[k] if math.isfinite(r[k]) else -math.inf)


def _headline(rows) -> list[str]:
  """Where in (m, n) each source dominates, from this run's numbers only."""
  rows = [r for r in rows if r['ok'] > 0 and math.isfinite(r['eps'])]
  if not rows:
    return ['**Headline:** no converged cells to decompose.', '']
  out = ['**Where each source dominates** (the largest of R, U, D_optimization, D_bias per (m, n), '
         'converged cells only):', '']
  for m in sorted({r['m'] for r in rows}):
    cells = [r for r in rows if r['m'] == m]
    spans = []
    for source in SOURCES:
      ns = [r['n'] for r in cells if _dominant(r) == source]
      if ns:
        spans.append(f'{source} at n = {", ".join(map(str, ns))}')
    out.append(f'- m = {m}: ' + '; '.join(spans) + '.')
  out.append('')
  past = [r for r in rows if r['R_source'] == 'certificate' and r['past_n_star']]
  if past:
    at_floor = [r for r in past if r['stationary'] == 0]
    share = np.median([r['D_bias'] / r['eps'] for r in past if r['eps'] > 0])
    out += [f'**Past n\\* (U < {decompose.ZERO:g}) at realizable widths** ({len(past)} (m, n) cells, '
            f'{len(at_floor)} of them with every converged seed at the training-error floor): R = 0 by certificate, '
            f'yet ε ranges from {min(r["eps"] for r in past):.2e} to {max(r["eps"] for r in past):.2e}; '
            f'the median share of ε that is D_bias (ε − training error − U: the test error beyond what the training '
            f'error accounts for) is {share:.3f}.', '']
    out += _recovery(past)
  shares = []
  for m in sorted({r['m'] for r in rows}):
    ok, stationary = (sum(r[k] for r in rows if r['m'] == m) for k in ('ok', 'stationary'))
    shares.append(f'm = {m}: {stationary} of {ok}')
  out += ['**Converged cells at certified stationary points above the floor** (the rest reached the floor): '
          + '; '.join(shares) + '. At realizable widths their training error is D_optimization; at the others '
          'it includes R.', '']
  below = [r for r in rows if r['R_source'] != 'certificate' and r['D_optimization_hi'] < 0]
  if below:
    cells = '; '.join(f'm = {m}: n = {", ".join(str(r["n"]) for r in below if r["m"] == m)}'
                      for m in sorted({r['m'] for r in below}))
    out += [f'**Training error below R** ({cells}): these students fit their sample better than their class '
            'fits the population (R, from the online column), so D_optimization = training error − R is negative '
            'there (95% interval below 0): it measures the sample\'s optimism, not an optimizer\'s excess, and '
            'D_bias = ε − training error − U carries the overfitting.', '']
  return out


def _recovery(past) -> list[str]:
  """Per realizable width past n*: how many converged students at the training floor also have
  their test error at or below τ (the teacher's function recovered), and how far the others stay."""
  parts = []
  for m in sorted({r['m'] for r in past}):
    cells = [r for r in past if r['m'] == m]
    at_floor, recovered = sum(r['ok'] - r['stationary'] for r in cells), sum(r['recovered'] for r in cells)
    if not at_floor:
      parts.append(f'm = {m}: none at the training floor')
      continue
    rest = [r['interpolant_min'] for r in cells if math.isfinite(r['interpolant_min'])]
    parts.append(f'm = {m}: {recovered} of {at_floor}' + (f' (the others\' test errors from {min(rest):.2g})' if rest else ''))
  tau = past[0]['tau']
  return ['**Interpolation and recovery past n\\*** (the converged students at realizable widths whose training '
          f'error reached the floor, and how many of them also have test error at or below the recovery threshold τ = {tau:.2g} '
          '(Training outcomes, below): the teacher\'s function recovered up to rounding and conditioning): ' + '; '.join(parts) + '.', '']


def _at_ns(value_at_n: dict) -> str:
  """'2.2 at n = 16', '2.2, 1.5 at n = 16, 32' (up to four), else the range with its end points' n."""
  ns = sorted(value_at_n)
  if len(ns) <= 4:
    return f'{", ".join(f"{value_at_n[n]:.3g}" for n in ns)} at n = {", ".join(map(str, ns))}'
  lo, hi = min(ns, key=value_at_n.get), max(ns, key=value_at_n.get)
  return f'between {value_at_n[lo]:.3g} (n = {lo}) and {value_at_n[hi]:.3g} (n = {hi})'


def _d_bias_laws(rows) -> list[str]:
  """Whether D_bias follows a power law a n^(−α) past n* at each realizable width (χ² verdict as for
  the learning curves, on the rows' standard errors over converged seeds)."""
  found = []
  for m in sorted({r['m'] for r in rows if r['R_source'] == 'certificate'}):
    cells = [r for r in rows if r['m'] == m and r['past_n_star'] and r['D_bias'] > 0 and r['seeds'] >= 2]
    if len(cells) < 4:
      found.append(f'm = {m}: too few cells ({len(cells)}) with D_bias > 0')
      continue
    n, d, se, seeds = (np.asarray([r[k] for r in cells], float) for k in ('n', 'D_bias', 'D_bias_se', 'seeds'))
    law = powerlaw.fit(n, d, fit_offset=False)
    gof = powerlaw.goodness_of_fit(law, n, d, se, seeds, params=2)
    said = verdict({'gof': gof, 'success': law.success})
    found.append(f'm = {m}: α = {fmt(law.alpha)}, {said}' if gof['fits'] else f'm = {m}: {said}')
  if not found:
    return []
  return ['**D_bias past n\\* at realizable widths**, a pure power law a n^(−α) through the cells with D_bias > 0 '
          '(exponents only where it fits): ' + '; '.join(found) + '.', '']


def _interpolant_laws(rows) -> list[str]:
  """Per realizable width, whether the interpolants that did not recover the teacher have a test
  error falling as a power law in n past n* (`interpolants.by_width`)."""
  found = []
  for m, w in interpolants.by_width(rows).items():
    law, k = w['law'], w['cells']
    if k < interpolants.MIN_TAIL:
      found.append(f'm = {m}: {k} sample count{"" if k == 1 else "s"} with {interpolants.MIN_INTERPOLANTS} or more '
                   'such students, too few')
    elif law is None:
      found.append(f'm = {m}: no tail of {interpolants.MIN_TAIL} or more of its {k} sample counts fits')
    else:
      g = law['gof']
      found.append(f'm = {m}: α = {fmt(law["alpha"])} [{fmt(law["interval"][0])}, {fmt(law["interval"][1])}] '
                   f'from n = {law["n_from"]} ({law["points"]} of {k} sample counts; χ²/dof = '
                   f'{fmt(g["chi2_per_dof"])}, p = {fmt(g["p"], 4)})')
  if not found:
    return []
  return ['**The interpolants\' law past n\\*** (students at the training floor that did not recover the teacher: '
          'the geometric mean of their test errors, which span decades within a cell, fitted by a n^(−α) in '
          f'log–log through the longest tail of at least {interpolants.MIN_TAIL} sample counts, each with '
          f'{interpolants.MIN_INTERPOLANTS} or more such students, that passes the χ² test of the learning curves '
          'on the log errors\' standard errors): ' + '; '.join(found) + '.', '']


def _ensemble_note(rows) -> list[str]:
  """U_ens beside U: how many members interpolated, and how far apart the two are where both exist."""
  by_n = {r['n']: r for r in rows}   # U, U_ens and the member counts depend on n only
  total, interp = sum(r['ens_members'] for r in by_n.values()), sum(r['ens_interpolating'] for r in by_n.values())
  if not total:
    return []
  both = [r for r in by_n.values() if math.isfinite(r['U_ens'])]
  unconverged = sum(r['ens_not_converged'] for r in by_n.values())
  text = (f'**Ensemble estimator.** {interp} of {total} posterior-ensemble members interpolated their sample '
          f'(training error at the floor); of the {total - interp} dropped, {total - interp - unconverged} stopped at '
          f'certified stationary points above the floor and {unconverged} ran out of budget. U_ens (at least two '
          f'interpolating members) exists at {len(both)} of {len(by_n)} sample counts.')
  zero = [r for r in both if not r['U'] > decompose.ZERO]
  positive = [r for r in both if r['U'] > decompose.ZERO]
  if zero:
    top = max(r['U_ens'] for r in zero)
    text += (f' Where U < {decompose.ZERO:g} (past n*), U_ens is at most {top:.2g}: '
             + ('both are 0 to float precision.' if top <= decompose.ZERO else
                'interpolating members still disagree off the sample, which the linearized U (exact for '
                'linear-in-parameter teachers only) does not see.'))
  if positive:
    ratio = {r['n']: r['U_ens'] / r['U'] for r in positive}
    text += f' Where U > {decompose.ZERO:g}, U_ens / U is {_at_ns(ratio)}.'
  return [text, '']


def section(rows) -> list[str]:
  if not rows:
    return ['No decomposition (no student cells).', '']
  n_star = rows[0]['n_star']
  past = [r['n'] for r in rows if r['past_n_star']]
  out = [f'Teacher Jacobian rank n* = {n_star}; U < {decompose.ZERO:g} from n = {min(past) if past else "– (not in the grid)"}; '
         f'U by the {rows[0]["U_source"].replace("_", " ")} estimator, U_ens by the ensemble estimator (c, members '
         'that interpolate only); R = 0 where the embedding certificate applies, else the best online restart. '
         'D = ε − R − U = D_optimization + D_bias with 95% intervals; only converged (ok) cells are averaged.', '']
  out += _headline(rows)
  out += _d_bias_laws(rows)
  out += _interpolant_laws(rows)
  out += _ensemble_note(rows)
  ci = lambda r, k: f'{fmt(r[k])} [{fmt(r[k + "_lo"])}, {fmt(r[k + "_hi"])}]'
  cells = [[r['m'], r['n'], fmt(r['eps']), fmt(r['R']), fmt(r['U']), fmt(r['U_ens']), ci(r, 'D'),
            ci(r, 'D_optimization'), ci(r, 'D_bias')] for r in rows]
  out += [table(['m', 'n', 'ε', 'R', 'U', 'U_ens', 'D [95% CI]', 'D_optimization', 'D_bias'], cells), '']
  out += ['**Convergence per (m, n)** (cells: ok = at the floor or at a certified stationary point; '
          'not converged and diverged cells are counted, never averaged):', '']
  conv = [[r['m'], r['n'], r['ok'] - r['stationary'], r['stationary'], r['not_converged'], r['diverged']] for r in rows]
  out += [table(['m', 'n', 'ok at floor', 'ok stationary', 'not converged', 'diverged'], conv), '']
  return out
