"""The outcome figures (docs/design.md §5): figure 7, the outcome shares on the (m, n) grid, and the
interpolants' law held out, drawn beside figure 3's joint form."""

import math

import numpy as np

from analysis import figures, outcomes

COLORS = {'recovered': 'tab:green', 'interpolant': 'tab:blue', 'stationary': 'tab:red'}


def shares(o: dict, cells, out_dir, n_star=None):
  """Figure 7: per (m, n) cell a bar of the outcome shares (recovered, interpolant, stationary,
  stacked bottom to top), the curve n = P(m) and the teacher's width. o: the variant's outcomes
  (fits.json); cells: its decomposition rows (the per-(m, n) outcome columns)."""
  cells = [c for c in cells if c['recovered_count'] + c['interpolant_count'] + c['stationary_count']]
  if not cells:
    raise figures.CannotDraw('no converged student cells')
  ms, ns = sorted({c['m'] for c in cells}), sorted({c['n'] for c in cells})
  fig, ax = figures.plt.subplots(figsize=(8.5, 0.7 * len(ms) + 2.2))
  for c in cells:
    x, y, bottom = ns.index(c['n']), ms.index(c['m']), 0.0
    for o_name in outcomes.OUTCOMES:
      h = c[f'{o_name}_share'] if math.isfinite(c[f'{o_name}_share']) else 0.0
      ax.bar(x, 0.8 * h, bottom=y - 0.4 + 0.8 * bottom, width=0.8, color=COLORS[o_name], edgecolor='none')
      bottom += h
  # Columns are spaced by log n: a value's column position is read off a straight line through
  # (log n, column index), so that n = P(m) and n* fall between (or beyond) the columns.
  slope, icpt = np.polyfit(np.log(ns), np.arange(len(ns)), 1) if len(ns) > 1 else (0.0, 0.0)
  column = lambda v: icpt + slope * math.log(v)
  p_of = {c['m']: c['P'] for c in cells}
  ax.plot([column(p_of[m]) for m in ms], range(len(ms)), 'k-', lw=1.5, label='n = P(m)')
  if n_star is not None:
    ax.axvline(column(n_star), color='grey', ls=':', lw=1.2, label=f'n* = {n_star}')
  tw = o.get('teacher_width')
  if tw in ms:
    ax.axhline(ms.index(tw), color='k', ls='--', lw=1, label=f'teacher width {tw}')
  for o_name in outcomes.OUTCOMES:
    ax.bar([0], [0], color=COLORS[o_name], label=o_name)
  ax.set(xticks=range(len(ns)), xticklabels=ns, yticks=range(len(ms)), yticklabels=ms, xlabel=figures.N_LABEL,
         ylabel=figures.M_LABEL, xlim=(-0.6, len(ns) - 0.4), ylim=(-0.6, len(ms) - 0.4))
  ax.grid(False)
  ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0))
  columns = ['m', 'n', 'P'] + [f'{o}_{k}' for o in outcomes.OUTCOMES for k in ('count', 'share', 'share_lo', 'share_hi')]
  png, path = figures._save(fig, out_dir, 'fig7_outcomes', [{k: c[k] for k in columns} for c in cells], columns)
  t = cells[0]['tau']
  return png, path, (f'The outcome shares of the converged students per (m, n): recovered (green; test error at or below '
                     f'τ = {t:.2g}), interpolant (blue; training error at the floor, test error above τ), stationary (red; '
                     'a certified stationary point above the floor), stacked in each cell to its full height; the black '
                     'curve is n = P(m), the student\'s parameter count' + (', the dotted line n*' if n_star else '')
                     + (', the dashed line the teacher\'s width' if tw in ms else '') + '. 95% Wilson intervals of the '
                     'shares are in the CSV.')


def interpolants_panel(ax, law: dict) -> list[dict]:
  """Figure 3's interpolants' law: each cell's geometric mean against its out-of-fold prediction."""
  t = law['table']
  measured = np.exp(np.asarray(t['log_mean']))
  predicted = np.exp(np.asarray(law['cv']['log_pred']))
  lo, hi = min(measured.min(), predicted.min()) / 2, max(measured.max(), predicted.max()) * 2
  ax.plot([lo, hi], [lo, hi], 'k--', lw=1)
  err = measured * (np.exp(np.asarray(t['log_se'])) - 1)
  ax.errorbar(measured, predicted, xerr=[np.minimum(err, 0.9 * measured), err], fmt='o', ms=4, color='tab:blue', lw=0.8)
  ax.set(xscale='log', yscale='log', xlim=(lo, hi), ylim=(lo, hi), xlabel='measured geometric mean of interpolants',
         ylabel='predicted, held out (5-fold CV)')
  ax.set_title(f'interpolants\' law ({law["selected"]}), held out: {law["cv"]["rms_log10"]:.2f} decades RMS\n'
               f'(their seed SE: {law["seed_se_log10"]:.2f})')
  return [{'m': m, 'n': n, 'interp_geomean': a, 'interp_pred_cv': b} for m, n, a, b in zip(t['m'], t['n'], measured, predicted)]
