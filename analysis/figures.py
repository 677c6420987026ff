"""The study's figures (docs/design.md §5). Each writes figN_<name>.png and the CSV of the numbers it
plots beside it, and returns a caption; a figure that the workdir cannot support raises
CannotDraw with the reason.

  1 learning curves ε(n), one per width, with fits     2 width curves ε(m), one per n, with fits
  3 joint law: predicted vs measured, extrapolation    4 decomposition R, U, D vs n
  5 fitted exponents vs the ablation knob              6 Nyquist learner vs trained students
  7 outcome shares on the (m, n) grid (`analysis.outcome_figures`)
"""

import csv
import math
import pathlib

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis import forms, powerlaw, selection  # noqa: E402

ERR_LABEL = 'normalized test error ε  (MSE / Var f*)'
N_LABEL = 'training samples n'
M_LABEL = 'student width m (hidden units per layer)'
FLOOR = 1e-12   # values below are drawn at the floor (exact to float precision); CSVs keep them

plt.rcParams.update({'figure.dpi': 110, 'savefig.dpi': 150, 'font.size': 10, 'axes.grid': True,
                     'grid.alpha': 0.3, 'legend.fontsize': 8, 'axes.titlesize': 11})


class CannotDraw(Exception):
  pass


def _save(fig, out_dir, name, rows, columns):
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  png, path_csv = out_dir / f'{name}.png', out_dir / f'{name}.csv'
  fig.savefig(png, bbox_inches='tight')
  plt.close(fig)
  with open(path_csv, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=columns)
    w.writeheader()
    w.writerows(rows)
  return png, path_csv


def _colors(values, cmap):
  logs = np.log(np.asarray(values, float))
  span = logs.max() - logs.min() or 1.0
  return [plt.get_cmap(cmap)(0.1 + 0.8 * (v - logs.min()) / span) for v in logs]


def _yerr(mean, se):
  """Error bars for a log axis: the lower bar stops at 10% of the mean instead of crossing 0."""
  se = np.nan_to_num(np.asarray(se, float))
  return [np.minimum(se, 0.9 * np.asarray(mean, float)), se]


def _law(curve: dict) -> powerlaw.PowerLaw:
  """The fitted law of a `fit.curve` result, callable on x."""
  return powerlaw.PowerLaw(**curve['fit'], rmse_log=curve['rmse_log'], success=curve['success'])


def _exponent_label(symbol: str, law, gof: dict) -> str:
  """'  α=3.70' for a legend, only where the fit passes its test; '*' marks a weak test."""
  if not gof.get('fits'):
    return ''
  return f'  {symbol}={law.alpha:.2f}' + ('*' if powerlaw.weak_test(gof) else '')


def _dense(x):
  x = np.asarray(x, float)
  return np.geomspace(x.min(), x.max(), 200)


def _finite(v):
  return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def learning_curves(fits_variant, out_dir, teacher_width=None):
  curves = fits_variant['learning_curves']
  if not curves:
    raise CannotDraw('no learning curves (no student cells)')
  ms = sorted(curves, key=int)
  online = fits_variant['width_curves'].get('online')
  fig, ax = plt.subplots(figsize=(6.4, 4.6))
  rows = []
  for color, m in zip(_colors([int(m) for m in ms], 'viridis'), ms):
    c = curves[m]
    x, y, se = (np.asarray(c[k], float) for k in ('x', 'mean', 'se'))
    ok = np.isfinite(y) & (y > 0)
    law = _law(c)
    label = f'm={m}' + _exponent_label('α', law, c.get('gof', {}))
    ax.errorbar(x[ok], np.maximum(y[ok], FLOOR), yerr=_yerr(y[ok], se[ok]), fmt='o', ms=4, color=color,
                capsize=2, label=label)
    stuck = np.asarray(c.get('unconverged_mean', [np.nan] * len(x)), float)
    hollow = np.isfinite(stuck) & (stuck > 0)
    ax.plot(x[hollow], np.maximum(stuck[hollow], FLOOR), 'o', ms=6, mfc='none', color=color)
    if c['success']:
      xd = _dense(x[ok])
      ax.plot(xd, np.maximum(law(xd), FLOOR), '-', color=color, lw=1.2, alpha=0.8)
    if online is not None:
      k = [int(v) for v in online['x']].index(int(m))
      if _finite(online['mean'][k]):
        ax.axhline(max(online['mean'][k], FLOOR), color=color, ls=':', lw=1)
    for xi, yi, si in zip(x, y, se):
      rows.append({'m': int(m), 'P': c['P'], 'n': xi, 'eps_mean': yi, 'eps_se': si,
                   'fit_a': law.a, 'fit_alpha': law.alpha, 'fit_c': law.c,
                   'fit_value': float(law(xi)) if c['success'] else float('nan')})
    if online is not None:
      k = [int(v) for v in online['x']].index(int(m))
      rows.append({'m': int(m), 'P': c['P'], 'n': float('inf'), 'eps_mean': online['mean'][k],
                   'eps_se': online['se'][k], 'fit_a': law.a, 'fit_alpha': law.alpha, 'fit_c': law.c,
                   'fit_value': law.c})
  ax.set(xscale='log', yscale='log', xlabel=N_LABEL, ylabel=ERR_LABEL,
         title='Learning curves: points = mean ± s.e. over seeds, lines = a n^-α + c'
         + ('\n(dotted: online, n = ∞)' if online is not None else ''))
  ax.legend(ncol=2, loc='lower left', title='student width' + (f' (teacher {teacher_width})' if teacher_width else ''))
  png, path = _save(fig, out_dir, 'fig1_learning_curves', rows,
                    ['m', 'P', 'n', 'eps_mean', 'eps_se', 'fit_a', 'fit_alpha', 'fit_c', 'fit_value'])
  return png, path, ('ε vs n on log–log axes, one colour per width m (mean ± standard error over the converged '
                     'seeds), with the fitted power law with offset per width (α in the legend only where the fit '
                     'passes its goodness-of-fit test; * where that is a weak test, most points\' 95% intervals '
                     'reaching 0); hollow circles: the mean of seeds whose '
                     'learner did not converge (not fitted); dotted lines are the online (n = ∞) errors.')


def width_curves(fits_variant, out_dir, teacher_width=None):
  curves = fits_variant['width_curves']
  if not curves or len(fits_variant['learning_curves']) < 2:
    raise CannotDraw('fewer than two widths')
  labels = sorted(curves, key=lambda k: math.inf if k == 'online' else int(k))
  if not any(len(powerlaw.usable(curves[k]['x'], curves[k]['mean'])[0]) for k in labels):
    raise CannotDraw('no converged cell')
  finite = [k for k in labels if k != 'online']
  colors = dict(zip(finite, _colors([int(k) for k in finite], 'plasma')))
  colors['online'] = 'black'
  fig, ax = plt.subplots(figsize=(6.4, 4.6))
  rows = []
  for k in labels:
    c = curves[k]
    x, y, se = (np.asarray(c[q], float) for q in ('x', 'mean', 'se'))
    ok = np.isfinite(y) & (y > 0)
    law = _law(c)
    name = 'online (n=∞)' if k == 'online' else f'n={k}'
    ax.errorbar(x[ok], np.maximum(y[ok], FLOOR), yerr=_yerr(y[ok], se[ok]), fmt='s' if k == 'online' else 'o',
                ms=4, color=colors[k], capsize=2, label=name + _exponent_label('β', law, c.get('gof', {})))
    if c['success'] and ok.sum() > 1:
      xd = _dense(x[ok])
      ax.plot(xd, np.maximum(law(xd), FLOOR), '-', color=colors[k], lw=1.2, alpha=0.8)
    for xi, yi, si in zip(x, y, se):
      rows.append({'n': 'online' if k == 'online' else int(k), 'm': xi, 'eps_mean': yi, 'eps_se': si,
                   'fit_b': law.a, 'fit_beta': law.alpha, 'fit_c': law.c,
                   'fit_value': float(law(xi)) if c['success'] else float('nan')})
  if teacher_width:
    ax.axvline(teacher_width, color='gray', ls='--', lw=1)
    ax.text(teacher_width, ax.get_ylim()[1], ' teacher width', va='top', fontsize=8, color='gray')
  ax.set(xscale='log', yscale='log', xlabel=M_LABEL, ylabel=ERR_LABEL,
         title='Width curves: points = mean ± s.e., lines = b m^-β + c')
  ax.legend(ncol=2, loc='lower left', title='sample count')
  png, path = _save(fig, out_dir, 'fig2_width_curves', rows,
                    ['n', 'm', 'eps_mean', 'eps_se', 'fit_b', 'fit_beta', 'fit_c', 'fit_value'])
  return png, path, ('ε vs m on log–log axes, one colour per n (squares: online, n = ∞), with fitted '
                     'b m^(−β) + c (β in the legend only where it passes its goodness-of-fit test, * where that '
                     'is a weak test); the dashed line marks the teacher width, from which R(m) = 0.')


def joint_fit(fits_variant, cells, out_dir):
  """The selected joint form (`analysis.selection`): predicted vs measured, in-sample and fitted on
  the small corner only. cells: (m, n, ε) seed means; the online column (n = ∞) is left out."""
  j = fits_variant['joint']
  name = j.get('selected')
  if name is None:
    raise CannotDraw('no joint form could be scored')
  m, n, eps = (np.asarray(v, float) for v in cells)
  m, n, eps = m[np.isfinite(n)], n[np.isfinite(n)], eps[np.isfinite(n)]
  r = np.asarray([j['r_m'].get(str(int(mi)), np.nan) for mi in m])
  c = forms.Cells(m, n, eps, np.zeros_like(eps), np.ones_like(eps), r, eps <= j['floor'])
  entry, ex = j['forms'][name], j['forms'][name]['extrapolation']
  pred = np.exp(selection.as_fit(name, entry).log_predict(c))
  pred_ex = np.exp(selection.as_fit(name, ex).log_predict(c)) if ex['success'] else np.full_like(eps, np.nan)
  corner = selection.splits(c)['extrapolation'][0]
  law = fits_variant.get('outcomes', {}).get('interpolants', {})
  panels = 3 if law.get('selected') else 2
  fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.6))
  lo, hi = max(min(eps.min(), np.nanmin(pred)), FLOOR), max(eps.max(), np.nanmax(pred)) * 1.5
  for ax in axes[:2]:
    ax.plot([lo, hi], [lo, hi], 'k--', lw=1)
    ax.set(xscale='log', yscale='log', xlim=(lo, hi), ylim=(lo, hi), xlabel='measured ε',
           ylabel='predicted ε̂')
  sc = axes[0].scatter(eps, np.maximum(pred, FLOOR), c=np.log2(m), cmap='viridis', s=18)
  fig.colorbar(sc, ax=axes[0], label='log2 m')
  axes[0].set_title(f'{name}, in-sample: {entry["in_sample"]["rms_log10"]:.2f} decades RMS\n'
                    f'{entry["cv"]["folds"]}-fold CV: {entry["cv"]["rms_log10"]:.2f} decades RMS')
  axes[1].scatter(eps[corner], np.maximum(pred_ex[corner], FLOOR), s=18, color='tab:blue', label=f'fitted: {ex["fit_on"]}')
  axes[1].scatter(eps[~corner], np.maximum(pred_ex[~corner], FLOOR), s=18, color='tab:orange', label='extrapolated')
  axes[1].set_title(f'{name}, from the small corner: {ex["rms_log10"]:.2f} decades RMS on the rest')
  axes[1].legend(loc='upper left')
  rows = [{'m': mi, 'n': ni, 'eps': ei, 'pred_in_sample': pi, 'in_corner': bool(ci), 'pred_extrapolation': qi}
          for mi, ni, ei, pi, ci, qi in zip(m, n, eps, pred, corner, pred_ex)]
  if panels == 3:
    from analysis import outcome_figures   # it draws with this module's helpers
    rows += outcome_figures.interpolants_panel(axes[2], law)
  png, path = _save(fig, out_dir, 'fig3_joint_fit', rows,
                    ['m', 'n', 'eps', 'pred_in_sample', 'in_corner', 'pred_extrapolation', 'interp_geomean', 'interp_pred_cv'])
  verdict = {True: 'passes', False: 'fails', None: 'has no'}[entry['gof']['fits']]
  third = ''
  if panels == 3:
    lv = {True: 'passes', False: 'fails', None: 'has no'}[law['gof']['fits']]
    third = (f'; third panel: the interpolants\' joint law (log ε = {law["formula"]}, which {lv} its χ² test), each cell\'s '
             'geometric-mean error of its interpolants against its prediction by the fit without its fold')
  return png, path, (f'The joint form selected by cross-validation, {name} (ε = {forms.FORMS[name].formula}), which {verdict} '
                     'its χ² goodness-of-fit test: predicted vs measured seed-mean errors at finite n (left, fitted '
                     'on all cells; middle, fitted on the small corner and extrapolated to the rest)' + third +
                     '. Points on the dashed line are predicted exactly.')


DECOMPOSITION_LINES = (('eps', 'k', 'o', 'ε (measured)'), ('R', 'tab:red', 's', 'realizability R'),
                       ('U', 'tab:blue', '^', 'uncertainty U'), ('D_optimization', 'tab:orange', 'v', 'D_optimization'),
                       ('D_bias', 'tab:gray', 'D', 'D_bias'))


def decomposition(rows, out_dir):
  if not rows:
    raise CannotDraw('no decomposition rows')
  widths = sorted({r['m'] for r in rows})
  realizable = [m for m in widths if any(r['m'] == m and r['R_source'] == 'certificate' for r in rows)]
  under = [m for m in widths if m not in realizable]
  picks = ([max(realizable)] if realizable else []) + ([min(under)] if under else [])
  if not picks:
    raise CannotDraw('no width to decompose')
  fig, axes = plt.subplots(1, len(picks), figsize=(6.2 * len(picks), 4.4), squeeze=False,
                           gridspec_kw={'wspace': 0.3})
  out_rows = []
  for ax, m in zip(axes[0], picks):
    rr = sorted((r for r in rows if r['m'] == m), key=lambda r: r['n'])
    n = np.asarray([r['n'] for r in rr], float)
    for key, color, marker, label in DECOMPOSITION_LINES:
      y = np.asarray([r[key] for r in rr], float)
      shown = np.isfinite(y) & (y > 0)   # log axis: zeros and (noise-)negative values are in the CSV only
      ax.plot(n[shown], np.maximum(y[shown], FLOOR), color=color, marker=marker, ms=4, lw=1.3, label=label)
    past = [r['n'] for r in rr if r['past_n_star']]
    if past:
      ax.axvline(past[0], color='k', ls='--', lw=1)
      ax.text(past[0], FLOOR * 10, ' U ≈ 0 from here', fontsize=8)
    ax.set(xscale='log', yscale='log', xlabel=N_LABEL, ylabel='normalized error',
           title=f'm = {m} ({"realizable: R = 0 certified" if m in realizable else "under-parameterized"})')
    ax.legend(fontsize=7)
    out_rows += [{k: r[k] for k in DECOMPOSITION_CSV} for r in rr]
  png, path = _save(fig, out_dir, 'fig4_decomposition', out_rows, list(DECOMPOSITION_CSV))
  return png, path, ('The error ε(m, n) and its sources R, U, D_optimization (training error above R) and D_bias '
                     '(the rest of D), converged cells only, for a realizable and an under-parameterized width; '
                     f'values at or below {FLOOR:g} are drawn at {FLOOR:g}, non-positive ones only in the CSV; the '
                     'dashed line is the first n where U is 0 to float precision.')


DECOMPOSITION_CSV = ('m', 'n', 'eps', 'R', 'U', 'D', 'D_lo', 'D_hi', 'D_optimization', 'D_bias', 'ok', 'not_converged',
                     'n_star', 'past_n_star')


def exponents(points, knob, out_dir):
  """points: `ablation.exponents` ({'level', 'alpha', 'alpha_lo', 'alpha_hi', 'alpha_fits', 'beta', ...}).
  Only exponents whose curves pass their goodness-of-fit test are drawn; all are in the CSV."""
  if len(points) < 2:
    raise CannotDraw('needs an ablation with at least two levels (this workdir has none)')
  fig, ax = plt.subplots(figsize=(6.4, 4.4))
  numeric = all(isinstance(p['level'], (int, float)) for p in points)
  xs = [p['level'] if numeric else i for i, p in enumerate(points)]
  series = [('alpha', 'tab:blue', 'α (data exponent, widest student)'),
            ('beta', 'tab:orange', 'β (width exponent, online)')]
  if all('beta_P' in p for p in points):
    series.append(('beta_P', 'tab:green', 'β_P (parameter-count exponent, online)'))
  # Intervals can be far wider than the estimates (few seeds, a realizable cliff instead of a power
  # law); the axis follows the estimates and an interval running past the top ends in an arrow.
  drawn = lambda key: np.asarray([p.get(f'{key}_fits') is True for p in points])
  estimates = np.asarray([p[key] for key, *_ in series for p in points if p.get(f'{key}_fits') is True], float)
  top = 1.5 * max(np.nanmax(estimates, initial=0.0), 4 / min(xs) if numeric and min(xs) > 0 else 0.0, 0.1)
  step = 0.015 * (max(xs) - min(xs) or 1)
  clipped = False
  for s, (key, color, label) in enumerate(series):
    x = np.asarray(xs, float) + (s - (len(series) - 1) / 2) * step
    y, lo, hi = (np.where(drawn(key), np.asarray([p[k] for p in points], float), np.nan)
                 for k in (key, f'{key}_lo', f'{key}_hi'))
    over = hi > top
    clipped |= bool(over.any())
    hi = np.where(over, top, hi)
    ax.errorbar(x, y, yerr=[np.nan_to_num(y - lo), np.nan_to_num(hi - y)], fmt='o-', color=color,
                capsize=3, label=f'{label}: fits at {drawn(key).sum()} of {len(points)} levels')
    ax.plot(x[over], np.full(over.sum(), top), '^', color=color, ms=6, clip_on=False)
  ax.set_ylim(0, top)
  shown = sum(int(drawn(key).sum()) for key, *_ in series)
  if not shown:
    ax.text(0.5, 0.5, 'no exponent\'s curve passes its goodness-of-fit test\n(the estimates and verdicts are in the CSV)',
            transform=ax.transAxes, ha='center', va='center', color='gray')
  if knob in ('inputs.intrinsic_dim', 'inputs.dim') and numeric:
    d = np.linspace(min(xs), max(xs), 100)
    ax.plot(d, 4 / d, 'k--', lw=1, label='4/d (Sharma & Kaplan 2020), d as set')
    if all(p.get('d_measured') for p in points):
      ax.plot(xs, [4 / p['d_measured'] for p in points], 'kx', ms=7, label='4/d with d measured (TwoNN)')
  if not numeric or all(isinstance(p['level'], int) for p in points):
    ax.set_xticks(xs, [str(p['level']) for p in points])
  ax.set(xlabel=f'ablation knob: {knob}', ylabel='fitted exponent', title='Scaling exponents vs teacher complexity')
  ax.legend()
  cols = ['level', 'alpha', 'alpha_lo', 'alpha_hi', 'alpha_fits', 'beta', 'beta_lo', 'beta_hi', 'beta_fits', 'beta_P',
          'beta_P_lo', 'beta_P_hi', 'beta_P_fits', 'd_measured', 'four_over_d']
  rows = [{**{k: p.get(k) for k in cols}, 'four_over_d': 4 / p['level'] if numeric and p['level'] else None}
          for p in points]
  png, path = _save(fig, out_dir, 'fig5_exponents', rows, cols)
  return png, path, ('Fitted exponents per level of the ablated knob with 95% intervals: α from the widest '
                     'student\'s learning curve, β (in width) and β_P (in parameter count) from the online '
                     f'width curve; drawn only where the curve passes its goodness-of-fit test ({shown} of '
                     f'{len(series) * len(points)}; all are in the CSV with their verdicts).'
                     + (' Triangles at the top: the interval continues above the axis (see the CSV).' if clipped else ''))


def nyquist(companion, out_dir):
  """companion: {'ns', 'ns_exact', 'B', 'K', 'd', 'nyquist', 'U' (at ns_exact),
  'students': {m: (mean, se) at ns}, 'unconverged': {m: mean of the seeds not converged, at ns},
  'converged_past_b': (ok cells, all cells) at n >= B, 'laws_past_b': {m: `fit.curve` at n >= B}}."""
  if companion is None:
    raise CannotDraw('no band-limited companion runs (config.nyquist.cutoff = 0)')
  ns = np.asarray(companion['ns'], float)
  fig, ax = plt.subplots(figsize=(6.4, 4.6))
  rows = []
  colors = _colors([int(m) for m in companion['students']], 'viridis')
  for color, (m, (mean, se)) in zip(colors, sorted(companion['students'].items(), key=lambda kv: int(kv[0]))):
    mean, se = np.asarray(mean, float), np.asarray(se, float)
    law = companion['laws_past_b'][m]
    fits = law['gof']['fits'] and law['success']
    ax.errorbar(ns, np.maximum(mean, FLOOR), yerr=_yerr(mean, se), fmt='o' if fits else 'o-', ms=4, color=color,
                capsize=2, label=f'trained MLP, m={m}' + (f', c={law["fit"]["c"]:.2g}' if fits else ''))
    stuck = np.asarray(companion['unconverged'][m], float)
    hollow = np.isfinite(stuck) & (stuck > 0)
    ax.plot(ns[hollow], np.maximum(stuck[hollow], FLOOR), 'o', ms=6, mfc='none', color=color)
    if fits:
      xd = _dense(np.asarray(law['x'], float))
      ax.plot(xd, _law(law)(xd),
              '--', color=color, lw=1.2)
    rows += [{'learner': f'mlp_m{m}', 'n': n, 'eps': e, 'eps_se': s} for n, e, s in zip(ns, mean, se)]
    rows += [{'learner': f'mlp_m{m}_not_converged', 'n': n, 'eps': e, 'eps_se': float('nan')}
             for n, e in zip(ns[hollow], stuck[hollow])]
  exact = np.asarray(companion['ns_exact'], float)
  nyq = np.asarray(companion['nyquist'], float)
  u = np.asarray(companion['U'], float)
  ax.plot(exact, np.maximum(nyq, FLOOR), 'k-s', ms=5, lw=2,
          label='Nyquist learner (least squares on the basis;\n exact from n = B, drawn at the 1e-12 floor)')
  ax.plot(exact, np.maximum(u, FLOOR), 'k:', lw=1.2, label='uncertainty U(n) (Bayes risk)')
  rows += [{'learner': 'nyquist', 'n': n, 'eps': e, 'eps_se': 0.0} for n, e in zip(exact, nyq)]
  rows += [{'learner': 'uncertainty_U', 'n': n, 'eps': e, 'eps_se': 0.0} for n, e in zip(exact, u)]
  ax.axvline(companion['B'], color='gray', ls='--', lw=1)
  ax.set(xscale='log', yscale='log', xlabel=N_LABEL, ylabel=ERR_LABEL,
         title=f'Band-limited teacher (K={companion["K"]}, d={companion["d"]}): Nyquist learner vs trained students')
  ax.text(companion['B'], 1e-9, f'n = B = {companion["B"]} ', fontsize=9, color='gray', ha='right')
  ax.legend(loc='center right', fontsize=7.5)
  png, path = _save(fig, out_dir, 'fig6_nyquist', rows, ['learner', 'n', 'eps', 'eps_se'])
  ns_exact = [int(n) for n in companion['ns_exact']]
  at_b = companion['nyquist'][ns_exact.index(companion['B'])] if companion['B'] in ns_exact else float('nan')
  past_b = [mean[j] for mean, _ in companion['students'].values() for j, n in enumerate(companion['ns'])
            if n >= companion['B'] and _finite(mean[j])]
  ok, total = companion['converged_past_b']
  students = (f'trained MLP students keep errors from {min(past_b):.2g} to {max(past_b):.2g} at n >= B, averaged '
              f'over the {ok} of {total} cells there whose learner converged (the others are not averaged)'
              if past_b else f'none of the {total} trained MLP cells at n >= B converged')
  return png, path, (f'On a band-limited teacher with B = {companion["B"]} basis functions, the learner that '
                     f'knows the basis has error {at_b:.2g} at n = B (drawn at the {FLOOR:g} floor when below it); '
                     f'{students}; hollow circles: the mean of the seeds whose learner did not converge; dashed: '
                     f'a n^(−α) + c through the converged means at n >= B, drawn where it passes its goodness-of-fit test '
                     f'(c in the legend).')
