"""The report's sections (DESIGN §5): the fit tables with their verdicts, the joint forms, the
decomposition's findings and the Nyquist companion's law; every sentence computed from the run's
fits.json and decomposition rows.
"""

import math

import numpy as np

from analysis import decompose, forms, interpolants, powerlaw


def _fmt(v, digits=3):
  if v is None or (isinstance(v, float) and not math.isfinite(v)):
    return '–'
  return f'{v:.{digits}g}'


def table(header, rows):
  out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  out += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(out)


def _verdict(c) -> str:
  """A fitted curve's goodness-of-fit verdict against the seeds' scatter (powerlaw.goodness_of_fit)."""
  g = c['gof']
  if g['fits'] is None:
    return 'undetermined (too few points with a seed scatter)' if c['success'] else 'fit failed'
  weak = ''
  if powerlaw.weak_test(g):
    weak = f'; a weak test: {g["open_points"]} of {g["points"]} points\' 95% intervals reach 0'
  return f'{"fits" if g["fits"] else "does not fit"} (χ²/dof = {_fmt(g["chi2_per_dof"])}, p = {_fmt(g["p"], 4)}{weak})'


def _exponent(c) -> str:
  """The exponent with its interval, quoted only for a curve that fits."""
  if not c['gof']['fits']:
    return '– (not quoted)'
  lo_hi = c['interval'].get('alpha')
  return _fmt(c['fit']['alpha']) + (f' [{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]' if lo_hi else '')


def fit_tables(fv) -> list[str]:
  out = ['**Learning curves** ε(n) = a n^(−α) + c (95% intervals: bootstrap over seeds, t-corrected; '
         'verdict: χ² of the log residuals against the seeds\' standard errors, fits at p > 0.05, a weak test where most points\' 95% intervals reach 0; exponents '
         'and Hestness regions (small-data below n_small, irreducible from n_irreducible) only where it fits, only boundaries inside the measured range, '
         'and n_irreducible only where the offset c\'s interval excludes 0):', '']
  rows = []
  for m, c in fv['learning_curves'].items():
    boundary = lambda v: '–' if v is None else _fmt(v)
    rows.append([m, f'{c["P"]:.0f}', _verdict(c), _exponent(c), _fmt(c['fit']['a']), _fmt(c['fit']['c']),
                 _fmt(c['rmse_log']), boundary(c['regions']['quoted']['n_small']),
                 boundary(c['regions']['quoted']['n_irreducible'])])
  out += [table(['m', 'P(m)', 'verdict', 'α [95% CI]', 'a', 'c', 'rms log residual', 'n_small', 'n_irreducible'],
                 rows), '']
  out += ['**Width curves** ε(m) = b m^(−β) + c (same verdict):', '']
  rows = [[n, _verdict(c), _exponent(c), _fmt(c['fit']['a']), _fmt(c['fit']['c']), _fmt(c['rmse_log'])]
          for n, c in fv['width_curves'].items()]
  out += [table(['n', 'verdict', 'β [95% CI]', 'b', 'c', 'rms log residual'], rows), '']
  out += _joint_forms(fv['joint'])
  return out


SOURCES = ('R', 'U', 'D_optimization', 'D_bias')


def _dominant(r) -> str:
  """The largest of the error's sources in a row (R, U, D_optimization, D_bias)."""
  return max(SOURCES, key=lambda k: r[k] if math.isfinite(r[k]) else -math.inf)


def _joint_forms(j) -> list[str]:
  """The joint forms compared out of sample (`analysis.selection`) and the selected one."""
  names = list(j.get('forms', {}))
  if not names:
    return ['**Joint forms:** none could be fitted (too few cells).', '']
  first = j['forms'][names[0]]
  out = [f'**Joint forms** ε(m, n), fitted in log space (Huber loss) on {first["in_sample"]["cells"]} finite-n cells '
         f'(m̃, ñ: m and n over their geometric means; `realizable` takes ε∞(m) from the online column\'s mean, the learner\'s error with unlimited data (R(m) where the online students reach the class\'s best); '
         f'{j["censored_cells"]} cells at the precision floor {j["floor"]:.1e} fitted as upper bounds). Errors are '
         'RMS of log10(ε̂/ε) in decades on held-out cells: cross-validation over cells, and extrapolation from '
         f'the small corner ({first["extrapolation"]["fit_on"]}), in n ({first["extrapolate_n"]["fit_on"]}) and in m '
         f'({first["extrapolate_m"]["fit_on"]}). Verdict: χ² of the in-sample log residuals against the seeds\' '
         'standard errors, fits at p > 0.05.', '']
  rows = [[name, f'ε = {forms.FORMS[name].formula}', _verdict(e), _fmt(e['in_sample']['rms_log10']),
           f'{_fmt(e["cv"]["rms_log10"])} (μ {e["cv"]["mu"]:+.2g}, σ {e["cv"]["sigma"]:.2g})',
           _fmt(e['extrapolation']['rms_log10']), _fmt(e['extrapolate_n']['rms_log10']),
           _fmt(e['extrapolate_m']['rms_log10'])] for name, e in j['forms'].items()]
  out += [table(['form', 'formula', 'verdict', 'in-sample', f'{first["cv"]["folds"]}-fold CV (δ)', 'corner',
                  'in n', 'in m'], rows), '']
  scatter = j.get('seed_scatter', {}).get('rms_log10', math.nan)
  if math.isfinite(scatter):
    sc = j['seed_scatter']
    out += [f'The yardstick: resampling each cell\'s seeds moves log10 of its mean by {_fmt(scatter)} decades RMS '
            f'over {sc["cells"]} cells (median {_fmt(sc["median_log10"])}; {sc.get("over_half_decade", "?")} cells by '
            'more than half a decade). A form that were the true mean '
            'would still miss these cells by about that much in RMS.', '']
  name = j['selected']
  if name is None:
    return out + ['No form could be scored out of sample.', '']
  e = j['forms'][name]
  interval = e.get('interval', {})
  params = ', '.join(f'{p} = {_fmt(v)}' + (f' [{_fmt(interval[p][0])}, {_fmt(interval[p][1])}]' if p in interval else '')
                     for p, v in e['params'].items())
  fits = e['gof']['fits']
  # Exponents of a law the data do not follow are not results (DESIGN §5): they stay in fits.json.
  verdict = {True: f'It fits the cells within the seeds\' scatter; its parameters (95% intervals: bootstrap over '
                   f'seeds): {params}.',
             False: 'It does not fit the cells within the seeds\' scatter, so its parameters (in fits.json) describe '
                    'its closest fit, not a law the data follow, and are not quoted here.',
             None: f'No goodness-of-fit test was possible; its parameters: {params}.'}[fits]
  cv = e['cv']['rms_log10']
  out += [f'**Selected: {name}** (the simplest form within one standard error of the lowest cross-validated error). '
          f'{verdict} Held out, it misses by {_fmt(cv)} decades (cross-validation; {_against(cv, scatter)}) and by '
          f'{_fmt(e["extrapolation"]["rms_log10"])}, {_fmt(e["extrapolate_n"]["rms_log10"])} and '
          f'{_fmt(e["extrapolate_m"]["rms_log10"])} decades extrapolating from the corner, in n and in m.', '']
  return out


def _against(error: float, scatter: float) -> str:
  """A held-out error read against the cells' own seed scatter."""
  if not (math.isfinite(error) and math.isfinite(scatter) and scatter > 0):
    return 'no seed scatter to compare with'
  if error <= scatter:
    return (f'no more than the cells\' own seed scatter of {_fmt(scatter)} decades RMS: by this score alone the '
            'form cannot be told from the cells\' true means; the χ² verdict, cell by cell, is the sharper test')
  return f'{error / scatter:.1f}× the cells\' own seed scatter of {_fmt(scatter)} decades RMS'


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
  their test error at the floor (the teacher's function recovered), and how far the others stay."""
  parts = []
  for m in sorted({r['m'] for r in past}):
    cells = [r for r in past if r['m'] == m]
    at_floor, recovered = sum(r['ok'] - r['stationary'] for r in cells), sum(r['recovered'] for r in cells)
    if not at_floor:
      parts.append(f'm = {m}: none at the training floor')
      continue
    rest = [r['interpolant_min'] for r in cells if math.isfinite(r['interpolant_min'])]
    parts.append(f'm = {m}: {recovered} of {at_floor}' + (f' (the others\' test errors from {min(rest):.2g})' if rest else ''))
  return ['**Interpolation and recovery past n\\*** (the converged students at realizable widths whose training '
          'error reached the floor, and how many of them also have test error at that floor, train.floor: the teacher\'s function '
          'recovered to float precision): ' + '; '.join(parts) + '.', '']


def _companion_laws(c) -> list[str]:
  """Which law, if any, the companion's trained students follow past n = B (DESIGN §2)."""
  parts = []
  for m, law in sorted(c['laws_past_b'].items(), key=lambda kv: int(kv[0])):
    cells = sum(k > 0 for k in law['seeds'])
    text = f'm = {m} ({cells} of {len(law["x"])} sample counts with a converged seed): {_verdict(law)}'
    if law['gof']['fits']:
      lo_hi = law['interval'].get('c')
      text += f', α = {_exponent(law)}, c = {_fmt(law["fit"]["c"])}' + (
          f' [{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]' if lo_hi else '')
      if lo_hi and lo_hi[0] > 0:
        text += ': the error levels off above 0 (c\'s interval excludes 0)'
    parts.append(text)
  nyquist = [v for n, v in zip(c['ns_exact'], c['nyquist']) if n >= c['B']]
  return [f'**The trained students\' law past n = B** (ε(n) = a n^(−α) + c through the converged seeds\' means at '
          f'n >= {c["B"]}, verdict as for the learning curves; the Nyquist learner\'s error there is at most '
          f'{_fmt(max(nyquist))}): ' + '; '.join(parts) + '.', '']


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
    verdict = _verdict({'gof': gof, 'success': law.success})
    found.append(f'm = {m}: α = {_fmt(law.alpha)}, {verdict}' if gof['fits'] else f'm = {m}: {verdict}')
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
      found.append(f'm = {m}: α = {_fmt(law["alpha"])} [{_fmt(law["interval"][0])}, {_fmt(law["interval"][1])}] '
                   f'from n = {law["n_from"]} ({law["points"]} of {k} sample counts; χ²/dof = '
                   f'{_fmt(g["chi2_per_dof"])}, p = {_fmt(g["p"], 4)})')
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


def decomposition_section(rows) -> list[str]:
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
  ci = lambda r, k: f'{_fmt(r[k])} [{_fmt(r[k + "_lo"])}, {_fmt(r[k + "_hi"])}]'
  cells = [[r['m'], r['n'], _fmt(r['eps']), _fmt(r['R']), _fmt(r['U']), _fmt(r['U_ens']), ci(r, 'D'),
            ci(r, 'D_optimization'), ci(r, 'D_bias')] for r in rows]
  out += [table(['m', 'n', 'ε', 'R', 'U', 'U_ens', 'D [95% CI]', 'D_optimization', 'D_bias'], cells), '']
  out += ['**Convergence per (m, n)** (cells: ok = at the floor or at a certified stationary point; '
          'not converged and diverged cells are counted, never averaged):', '']
  conv = [[r['m'], r['n'], r['ok'] - r['stationary'], r['stationary'], r['not_converged'], r['diverged']] for r in rows]
  out += [table(['m', 'n', 'ok at floor', 'ok stationary', 'not converged', 'diverged'], conv), '']
  return out


def companion_section(c) -> list[str]:
  """The Nyquist companion's table (the closed-form learners and the trained students' means ±
  standard errors per n) and the students' law past n = B."""
  lines = [f'## Nyquist companion (band-limited teacher, K = {c["K"]}, d = {c["d"]}, B = {c["B"]})', '']
  rows = []
  for j, n in enumerate(c['ns_exact']):
    cells = [n, _fmt(c['nyquist'][j]), _fmt(c['U'][j])]
    for m, (mean, se) in sorted(c['students'].items(), key=lambda kv: int(kv[0])):
      cells.append(f'{_fmt(mean[c["ns"].index(n)])} ± {_fmt(se[c["ns"].index(n)], 2)}' if n in c['ns'] else '–')
    rows.append(cells)
  lines += [table(['n', 'Nyquist learner', 'U(n)'] + [f'MLP m={m}' for m in sorted(c['students'], key=int)], rows), '']
  return lines + _companion_laws(c)
