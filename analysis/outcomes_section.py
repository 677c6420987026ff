"""The report's outcomes section (docs/design.md §2.7, §5) and its findings: the recovery threshold,
which outcome sets the seed mean where, where the collapse sits, the law of each outcome and the
seed mean predicted from them; every sentence computed from fits.json's `outcomes` and the
decomposition rows.
"""

import math

from analysis import outcomes
from analysis.sections import fmt, table


def _ns(ns) -> str:
  return ', '.join(str(n) for n in ns)


def _gof(g) -> str:
  if g is None or g.get('fits') is None:
    return 'undetermined (too few cells)'
  return f'{"fits" if g["fits"] else "does not fit"} (χ²/dof = {fmt(g["chi2_per_dof"])}, p = {fmt(g["p"], 3)})'


def _interval(e, p) -> str:
  lo, hi = e['interval'][p]
  return f'{fmt(e["params"][p])} [{fmt(lo)}, {fmt(hi)}]'


def width_term(law) -> str | None:
  """What the width term's interval says, in the form with both n and m (None without it)."""
  e = law['forms'].get('n_m')
  if e is None:
    return None
  lo, hi = e['interval']['gamma']
  where = '' if law.get('selected') == 'n_m' else 'in the form with both terms, '
  if lo <= 0 <= hi:
    return f'{where}γ = {_interval(e, "gamma")}: its interval includes 0, no dependence on width is detected'
  worse = 'worse' if e['params']['gamma'] < 0 else 'better'
  return (f'{where}γ = {_interval(e, "gamma")}: at fixed n a wider student\'s interpolants are {worse}, '
          f'ε ∝ m^{-e["params"]["gamma"]:.2g}')


def collapse_sentences(rows, teacher_width) -> list[str]:
  if not rows:
    return []
  parts = []
  for c in outcomes.collapse(rows, teacher_width, rows[0]['n_star']):
    where = 'which bracket P(m)' if c['brackets_P'] else f'which do not bracket P(m) = {c["P"]}'
    if c['brackets_n_star']:
      where += ' and n*'
    parts.append(f'm = {c["m"]} (P = {c["P"]}): by {c["decades"]:.1f} decades between n = {c["n_from"]} and '
                 f'{c["n_to"]}, {where}')
  return parts


def _dominant(rows) -> list[str]:
  found = outcomes.dominant(rows)
  out = []
  for m in sorted({d['m'] for d in found}):
    by = {}
    for d in found:
      if d['m'] == m:
        by.setdefault(d['outcome'], []).append(d['n'])
    out.append(f'- m = {m}: ' + '; '.join(f'{k} at n = {_ns(v)}' for k, v in by.items()) + '.')
  return out


def section(o: dict, rows) -> list[str]:
  """Markdown lines for one variant's outcomes (`analysis.outcome_fit.analyze`) and its
  decomposition rows (`analysis.decompose`: the per-(m, n) outcome columns)."""
  t = o['tau']
  sens = o['tau_sensitivity']
  moved = {k: v for k, v in sens.items() if v != sens['tau']}
  counts = ' / '.join(str(sens['tau'][k]) for k in outcomes.OUTCOMES)
  out = ['### Training outcomes', '',
         f'Each converged student is recovered (training error at the floor {o["floor"]:g}, test error at or below τ), '
         'an interpolant (training error at the floor, test error above τ) or stationary (a certified stationary '
         f'point above the floor). τ = {t["tau"]:.2g} is the midpoint of the widest gap between the floor students\' '
         f'log10 test errors at realizable widths: from {10 ** t["gap_lo"]:.2g} to {10 ** t["gap_hi"]:.2g} '
         f'({t["gap_hi"] - t["gap_lo"]:.1f} decades). At realizable widths, recovered / interpolant / stationary: '
         f'{counts}; ' + ('moving τ 100× either way moves no student.' if not moved else
                          'moving τ 100× either way gives ' + '; '.join(
                              f'{k}: ' + ' / '.join(str(v[q]) for q in outcomes.OUTCOMES) for k, v in moved.items()) + '.'),
         '', '**Which outcome sets the seed mean** (the largest share × mean test error per (m, n)):', '']
  out += _dominant(rows) + ['']
  if o.get('teacher_width') is None:
    return out + ['No width is certified realizable: the outcome laws need realizable widths.', '']
  parts = collapse_sentences(rows, o['teacher_width'])
  if parts:
    out += [f'**Where the interpolants\' error collapses** (the largest fall of their geometric-mean test error between '
            f'consecutive sample counts, per width above the teacher\'s; n* = {rows[0]["n_star"]}): ' + '; '.join(parts) + '.', '']
  out += interpolants_lines(o['interpolants'])
  out += share_lines(o['stationary_share'], o['teacher_width'])
  out += stationary_error_lines(o['stationary_error'])
  out += mixture_lines(o.get('mixture', {}))
  return out


def interpolants_lines(law) -> list[str]:
  if not law.get('selected'):
    return [f'**The interpolants\' joint law:** no fit: of {law["cells_available"]} cells with enough interpolants '
            'above the teacher\'s width, no tail of them passes the χ² test.', '']
  e = law
  head = (f'**The interpolants\' joint law** (widths {_ns(law["widths"])}, n = {_ns(law["ns"])}: the {law["cells"]} cells '
          f'with four or more interpolants past their width\'s collapse and from n/P(m) >= {law["ratio_from"]:.3g}, where '
          f'the law starts to fit; each cell\'s geometric-mean test error with its log standard error): selected by 5-fold '
          f'CV (one-standard-error rule), log ε = {e["formula"]}; '
          f'{_gof(e["gof"])}. ')
  if e['gof'].get('fits'):
    wt = width_term(law)
    head += f'α = {_interval(e, "alpha")} (95%)' + (f'; {wt}. ' if wt else '. ')
  else:
    head += 'Its exponents are not quoted. '
  head += (f'Held out, it misses by {fmt(e["cv"]["rms_log10"])} decades RMS (CV), against its cells\' RMS seed standard '
           f'error of {fmt(law["seed_se_log10"])}; extrapolated in n ({e["extrapolate_n"]["fit_on"]}) by '
           f'{_held(e["extrapolate_n"])}, in m ({e["extrapolate_m"]["fit_on"]}) by {_held(e["extrapolate_m"])}.')
  rows = [[name, f['formula'], _gof(f['gof']), fmt(f['cv']['rms_log10']), _held(f['extrapolate_n']),
           _held(f['extrapolate_m'])] for name, f in law['forms'].items()]
  return [head, '', table(['form', 'log ε =', 'verdict', 'CV', 'in n', 'in m'], rows), '']


def _held(h) -> str:
  return fmt(h['rms_log10']) if h.get('determined', True) else 'not determined (one width in the fit set)'


def share_lines(s, teacher_width) -> list[str]:
  if not s.get('fitted'):
    return [f'**Stationary share:** too few students at realizable widths ({s["students"]}) to model.', '']
  m, c, lr = s['model'], s['constant'], s['n_terms_lr']
  depends = s['beats_constant'] and lr['p'] < 0.05
  verdict = ('it depends on n/P(m): the model beats the constant share held out, and its n-dependent terms are needed '
             f'(likelihood ratio {lr["statistic"]:.1f} on {lr["dof"]} dof, p = {fmt(lr["p"], 2)})' if depends else
             'no dependence on n is claimed: ' + ('the model does not beat the constant share held out' if not s['beats_constant']
                                                 else f'its n-dependent terms are not needed (p = {fmt(lr["p"], 2)})'))
  return [f'**Stationary share** at realizable widths (m >= {teacher_width}): {s["share"]:.2f} of {s["students"]} students. '
          f'A logistic model in log(n/P(m)) (with a peak) and log(m/{teacher_width}) predicts held-out cells\' students '
          f'with Brier score {m["brier"]:.3f} and log-likelihood {m["log_lik"]:.3f} per student, against the constant '
          f'share\'s {c["brier"]:.3f} and {c["log_lik"]:.3f}: {verdict}.', '']


def stationary_error_lines(laws) -> list[str]:
  parts = []
  for m, e in laws.items():
    if e['law'] == 'flat':
      parts.append(f'm = {m}: flat at {math.exp(e["flat"]["theta"][0]):.2g} ({_gof(e["flat"]["gof"])})')
    elif e['law'] == 'power':
      parts.append(f'm = {m}: a power law, α = {fmt(e["power"]["theta"][1])} ({_gof(e["power"]["gof"])}; flat '
                   f'{_gof(e["flat"]["gof"])})')
    elif e['cells'] >= 2:
      parts.append(f'm = {m}: neither flat nor a power law fits ({e["cells"]} cells)')
    else:
      parts.append(f'm = {m}: {e["cells"]} cell(s) with two or more stationary students, no law')
  return ['**Stationary error per width** (geometric mean of the stationary students\' test errors per n, flat or '
          'a n^(−α)): ' + '; '.join(parts) + '.', '']


def _or_undetermined(v) -> str:
  return fmt(v) if math.isfinite(v) else 'not determined (a part of the mixture cannot be fitted on the fit set)'


def mixture_lines(x) -> list[str]:
  if not x:
    return []
  scatter = x['seed_scatter']['rms_log10']
  one = x.get('one_form', {})
  cv = x['cv']['rms_log10']
  line = (f'**The seed mean predicted from the outcomes** (ε̂ = Σ share × outcome mean, on the {x["cells"]} cells at '
          f'realizable widths past their width\'s collapse and from n/P(m) >= {x["ratio_from"]:.3g}; every part refitted '
          'without the held-out cells): '
          f'{fmt(cv)} decades RMS held out (CV), {_or_undetermined(x["extrapolate_n"]["rms_log10"])} extrapolated in n '
          f'({x["extrapolate_n"]["fit_on"]}), {_or_undetermined(x["extrapolate_m"]["rms_log10"])} in m '
          f'({x["extrapolate_m"]["fit_on"]}); '
          f'the same cells\' seed scatter is {fmt(scatter)} decades RMS, so CV is {cv / scatter:.2f}× it')
  if one:
    line += f'; the selected single form ({one["form"]}) misses these cells by {fmt(one["rms_log10"])} in its own CV'
  line += '.'
  if cv > 1.2 * scatter:
    own = x['with_cell_shares']['rms_log10']
    line += (f' It misses by more than 1.2× the scatter. With each cell\'s own measured outcome shares in place of the '
             f'share models, it misses by {fmt(own)}: ' +
             (f'{1 - own ** 2 / cv ** 2:.0%} of its mean squared miss is in the shares, which {x["seeds_per_cell"]} '
              f'seeds per cell measure in steps of '
              f'1/{x["seeds_per_cell"]}' + (f', while a stationary student\'s error sits {fmt(x["stationary_over_interpolant_log10"], 2)} '
              'decades above the interpolants\' in the cells that have both (median), so one such student more or less '
              'moves the cell\'s mean by about that much.' if math.isfinite(x['stationary_over_interpolant_log10']) else '.')
              if own < 0.75 * cv else 'the outcome laws themselves, not only the shares, miss these cells.'))
    if own < 0.75 * cv and own > 1.2 * scatter:
      line += ' The rest is in the outcome laws.'
  return [line, '']


def findings(o: dict) -> list[str]:
  """The outcomes' findings for the report's opening list (each computed)."""
  out = []
  law = o.get('interpolants', {})
  if law.get('selected') and law['gof'].get('fits'):
    wt = width_term(law)
    out.append(f'Interpolants (training error at the floor, teacher not recovered) at widths above the teacher\'s follow '
               f'log ε = {law["formula"]} past their collapse: α = {_interval(law, "alpha")}'
               + (f'; {wt}' if wt else '') + f'; held out within {fmt(law["cv"]["rms_log10"])} decades '
               f'(their cells\' seed SE: {fmt(law["seed_se_log10"])}).')
  s = o.get('stationary_share', {})
  if s.get('fitted'):
    out.append(f'{s["share"]:.0%} of the converged students at realizable widths end at stationary points; '
               + ('their share depends on n/P(m) and m (held-out Brier ' f'{s["model"]["brier"]:.3f} vs '
                  f'{s["constant"]["brier"]:.3f} for a constant share).' if s['beats_constant'] and s['n_terms_lr']['p'] < 0.05
                  else 'no dependence of their share on n is detected.'))
  x = o.get('mixture', {})
  if x:
    out.append(f'The seed mean predicted from the outcome laws misses held-out cells by {fmt(x["cv"]["rms_log10"])} '
               f'decades ({x["cv"]["rms_log10"] / x["seed_scatter"]["rms_log10"]:.2f}× their seed scatter)'
               + (f'; the selected single form by {fmt(x["one_form"]["rms_log10"])} on the same cells.' if x.get('one_form') else '.'))
  return out
