"""The report's sections (docs/design.md §5) but the decomposition's (`analysis.decomposition_section`): the
fit tables with their verdicts, the joint forms and the Nyquist companion's law; every sentence
computed from the run's fits.json.
"""

import math

from analysis import forms, powerlaw


def fmt(v, digits=3):
  if v is None or (isinstance(v, float) and not math.isfinite(v)):
    return '–'
  return f'{v:.{digits}g}'


def table(header, rows):
  out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  out += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(out)


def verdict(c) -> str:
  """A fitted curve's goodness-of-fit verdict against the seeds' scatter (powerlaw.goodness_of_fit)."""
  g = c['gof']
  if g['fits'] is None:
    if c['success']:
      return 'undetermined (too few points with a seed scatter)'
    points = len(powerlaw.usable(c['x'], c['mean'])[0]) if 'mean' in c else None
    if points is not None and points < powerlaw.min_points():
      return f'not fitted: {points} converged point{"s" * (points != 1)}'
    return 'fit failed'
  weak = ''
  if powerlaw.weak_test(g):
    weak = f'; a weak test: {g["open_points"]} of {g["points"]} points\' 95% intervals reach 0'
  return f'{"fits" if g["fits"] else "does not fit"} (χ²/dof = {fmt(g["chi2_per_dof"])}, p = {fmt(g["p"], 4)}{weak})'


def _exponent(c) -> str:
  """The exponent with its interval, quoted only for a curve that fits."""
  if not c['gof']['fits']:
    return '– (not quoted)'
  lo_hi = c['interval'].get('alpha')
  return fmt(c['fit']['alpha']) + (f' [{fmt(lo_hi[0])}, {fmt(lo_hi[1])}]' if lo_hi else '')


def fit_tables(fv) -> list[str]:
  out = ['**Learning curves** ε(n) = a n^(−α) + c (95% intervals: bootstrap over seeds, t-corrected; '
         'verdict: χ² of the log residuals against the seeds\' standard errors, fits at p > 0.05, a weak test where most points\' 95% intervals reach 0; exponents '
         'and Hestness regions (small-data below n_small, irreducible from n_irreducible) only where it fits, only boundaries inside the measured range, '
         'and n_irreducible only where the offset c\'s interval excludes 0):', '']
  rows = []
  for m, c in fv['learning_curves'].items():
    boundary = lambda v: '–' if v is None else fmt(v)
    rows.append([m, f'{c["P"]:.0f}', verdict(c), _exponent(c), fmt(c['fit']['a']), fmt(c['fit']['c']),
                 fmt(c['rmse_log']), boundary(c['regions']['quoted']['n_small']),
                 boundary(c['regions']['quoted']['n_irreducible'])])
  out += [table(['m', 'P(m)', 'verdict', 'α [95% CI]', 'a', 'c', 'rms log residual', 'n_small', 'n_irreducible'],
                 rows), '']
  out += ['**Width curves** ε(m) = b m^(−β) + c (same verdict):', '']
  rows = [[n, verdict(c), _exponent(c), fmt(c['fit']['a']), fmt(c['fit']['c']), fmt(c['rmse_log'])]
          for n, c in fv['width_curves'].items()]
  out += [table(['n', 'verdict', 'β [95% CI]', 'b', 'c', 'rms log residual'], rows), '']
  out += _joint_forms(fv['joint'], fv.get('outcomes', {}).get('mixture'))
  return out


def _cv_cell(cv) -> str:
  """'rms (μ, σ of δ)', or '–' where no fold could be scored."""
  if not math.isfinite(cv['rms_log10']):
    return '–'
  return f'{fmt(cv["rms_log10"])} (μ {cv["mu"]:+.2g}, σ {cv["sigma"]:.2g})'


def _joint_forms(j, mixture=None) -> list[str]:
  """The joint forms compared out of sample (`analysis.selection`) and the selected one, beside the
  seed mean predicted from the outcomes (`analysis.outcome_mixture`) where there is one."""
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
  rows = [[name, f'ε = {forms.FORMS[name].formula}', verdict(e), fmt(e['in_sample']['rms_log10']),
           _cv_cell(e['cv']),
           fmt(e['extrapolation']['rms_log10']), fmt(e['extrapolate_n']['rms_log10']),
           fmt(e['extrapolate_m']['rms_log10'])] for name, e in j['forms'].items()]
  if mixture:
    rows.append(['outcome mixture', f'ε = Σ share × outcome mean, on its {mixture["cells"]} cells (m at or above the '
                 f'teacher\'s width, past the collapse, n/P(m) >= {mixture["ratio_from"]:.3g})', 'see the outcomes section',
                 fmt(mixture['in_sample']['rms_log10']), fmt(mixture['cv']['rms_log10']), '–',
                 fmt(mixture['extrapolate_n']['rms_log10']), fmt(mixture['extrapolate_m']['rms_log10'])])
  out += [table(['form', 'formula', 'verdict', 'in-sample', f'{first["cv"]["folds"]}-fold CV (δ)', 'corner',
                  'in n', 'in m'], rows), '']
  scatter = j.get('seed_scatter', {}).get('rms_log10', math.nan)
  if math.isfinite(scatter):
    sc = j['seed_scatter']
    out += [f'The yardstick: resampling each cell\'s seeds moves log10 of its mean by {fmt(scatter)} decades RMS '
            f'over {sc["cells"]} cells (median {fmt(sc["median_log10"])}; {sc.get("over_half_decade", "?")} cells by '
            'more than half a decade). A form that were the true mean '
            'would still miss these cells by about that much in RMS.', '']
  name = j['selected']
  if name is None:
    return out + ['No form could be scored out of sample.', '']
  e = j['forms'][name]
  interval = e.get('interval', {})
  params = ', '.join(f'{p} = {fmt(v)}' + (f' [{fmt(interval[p][0])}, {fmt(interval[p][1])}]' if p in interval else '')
                     for p, v in e['params'].items())
  fits = e['gof']['fits']
  # Exponents of a law the data do not follow are not results (docs/design.md §5): they stay in fits.json.
  said = {True: f'It fits the cells within the seeds\' scatter; its parameters (95% intervals: bootstrap over '
                   f'seeds): {params}.',
             False: 'It does not fit the cells within the seeds\' scatter, so its parameters (in fits.json) describe '
                    'its closest fit, not a law the data follow, and are not quoted here.',
             None: f'No goodness-of-fit test was possible; its parameters: {params}.'}[fits]
  cv = e['cv']['rms_log10']
  out += [f'**Selected: {name}** (the simplest form within one standard error of the lowest cross-validated error). '
          f'{said} Held out, it misses by {fmt(cv)} decades (cross-validation; {_against(cv, scatter)}) and by '
          f'{fmt(e["extrapolation"]["rms_log10"])}, {fmt(e["extrapolate_n"]["rms_log10"])} and '
          f'{fmt(e["extrapolate_m"]["rms_log10"])} decades extrapolating from the corner, in n and in m.', '']
  return out


def _against(error: float, scatter: float) -> str:
  """A held-out error read against the cells' own seed scatter."""
  if not (math.isfinite(error) and math.isfinite(scatter) and scatter > 0):
    return 'no seed scatter to compare with'
  if error <= scatter:
    return (f'no more than the cells\' own seed scatter of {fmt(scatter)} decades RMS: by this score alone the '
            'form cannot be told from the cells\' true means; the χ² verdict, cell by cell, is the sharper test')
  return f'{error / scatter:.1f}× the cells\' own seed scatter of {fmt(scatter)} decades RMS'


def _companion_laws(c) -> list[str]:
  """Which law, if any, the companion's trained students follow past n = B (docs/design.md §2)."""
  parts = []
  for m, law in sorted(c['laws_past_b'].items(), key=lambda kv: int(kv[0])):
    cells = sum(k > 0 for k in law['seeds'])
    text = f'm = {m} ({cells} of {len(law["x"])} sample counts with a converged seed): {verdict(law)}'
    if law['gof']['fits']:
      lo_hi = law['interval'].get('c')
      text += f', α = {_exponent(law)}, c = {fmt(law["fit"]["c"])}' + (
          f' [{fmt(lo_hi[0])}, {fmt(lo_hi[1])}]' if lo_hi else '')
      if lo_hi and lo_hi[0] > 0:
        text += ': the error levels off above 0 (c\'s interval excludes 0)'
    parts.append(text)
  nyquist = [v for n, v in zip(c['ns_exact'], c['nyquist']) if n >= c['B']]
  return [f'**The trained students\' law past n = B** (ε(n) = a n^(−α) + c through the converged seeds\' means at '
          f'n >= {c["B"]}, verdict as for the learning curves; the Nyquist learner\'s error there is at most '
          f'{fmt(max(nyquist))}): ' + '; '.join(parts) + '.', '']


def companion_section(c) -> list[str]:
  """The Nyquist companion's table (the closed-form learners and the trained students' means ±
  standard errors per n) and the students' law past n = B."""
  lines = [f'## Nyquist companion (band-limited teacher, K = {c["K"]}, d = {c["d"]}, B = {c["B"]})', '']
  rows = []
  for j, n in enumerate(c['ns_exact']):
    cells = [n, fmt(c['nyquist'][j]), fmt(c['U'][j])]
    for m, (mean, se) in sorted(c['students'].items(), key=lambda kv: int(kv[0])):
      cells.append(f'{fmt(mean[c["ns"].index(n)])} ± {fmt(se[c["ns"].index(n)], 2)}' if n in c['ns'] else '–')
    rows.append(cells)
  lines += [table(['n', 'Nyquist learner', 'U(n)'] + [f'MLP m={m}' for m in sorted(c['students'], key=int)], rows), '']
  return lines + _companion_laws(c)
