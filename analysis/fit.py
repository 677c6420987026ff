r"""Fits the scaling laws of a sweep and writes DIR/fits.json (docs/design.md §5).

  python -m analysis.fit --workdir=runs/quick

Per variant (ablation level): for every width m, the learning curve ε(n) = a n^(−α) + c with
bootstrap intervals over seeds and its Hestness regions; for every n (and the online column),
the width curve ε(m) = b m^(−β) + c; the Rosenfeld joint law ε̂(m, n) fitted on δ, with μ, σ of δ
in-sample, in 5-fold cross-validation and extrapolated from the small corner of the grid; and the
joint forms of `analysis.forms` compared out of sample (`analysis.selection`): joint.forms,
joint.selected, the selected form's bootstrap intervals.
"""

import json
import math
import pathlib
import sys

import ml_collections
import numpy as np
from absl import app, flags

from analysis import forms, joint, outcome_fit, powerlaw, regions, selection, tables
from experiments import cli, results, study


def curve(x, y_sx, n_boot: int, floor: float) -> dict:
  """A power law with offset through seed means, censored at `floor`; the χ² verdict leaves the
  censored points out (bounds, not measurements)."""
  b = powerlaw.bootstrap(x, y_sx, n_boot=n_boot, floor=floor)
  mean, se, count = tables.mean_se(y_sx)
  measured = np.where(mean > floor, mean, np.nan)
  return {'fit': b['fit'].params(), 'interval': b['interval'], 'rmse_log': b['fit'].rmse_log,
          'success': b['fit'].success, 'gof': powerlaw.goodness_of_fit(b['fit'], x, measured, se, count),
          'x': x.tolist(), 'mean': mean.tolist(), 'se': se.tolist(), 'seeds': count.tolist()}


def joint_cells(g):
  """(m, n, seed-mean ε) of every cell with a finite mean (the online column has n = inf)."""
  mean, _, _ = tables.mean_se(g['values'], axis=1)          # (M, N)
  mm, nn = np.meshgrid(g['ms'], g['ns'], indexing='ij')
  ok = np.isfinite(mean) & (mean > 0)
  return mm[ok], nn[ok], mean[ok]


def joint_forms(g, floor: float, n_boot: int) -> tuple[dict, forms.Cells]:
  """The joint forms compared on the finite-n cells (`selection.compare`), R(m) the online
  column's seed mean, the cells' own seed scatter, and bootstrap intervals for the selected form."""
  finite = np.isfinite(g['ns'])
  values_msn, ns = g['values'][:, :, finite], g['ns'][finite]
  r_m = tables.mean_se(g['values'][:, :, ~finite][:, :, 0], axis=1)[0] if (~finite).any() else np.full(len(g['ms']), np.nan)
  cells = selection.cells_of(values_msn, g['ms'], ns, r_m, floor)
  out = selection.compare(cells)
  out.update(floor=floor, censored_cells=int(cells.censored.sum()), seed_scatter=selection.seed_scatter(values_msn, floor),
             r_m=dict(zip(map(str, g['ms'].astype(int)), r_m.tolist())))
  if out['selected']:
    out['forms'][out['selected']]['interval'] = selection.bootstrap(out['selected'], values_msn, g['ms'], ns, r_m, floor,
                                                                    n_boot=n_boot)
  return out, cells


def analyze_variant(records, variant, n_boot=200, floor=forms.precision_floor('float64'), joint_law=True,
                    spec=None) -> dict:
  """The variant's learning and width curves; with `joint_law`, also the joint law and forms
  (most of the cost: every form is cross-validated and extrapolated) and, given its study.Variant
  `spec`, the training outcomes and their laws (`analysis.outcome_fit`)."""
  g = tables.grid(records, variant=variant)
  finite = np.isfinite(g['ns'])
  ns = g['ns'][finite]
  out = {'variant': variant, 'diverged_cells': g['diverged'], 'learning_curves': {}, 'width_curves': {}}
  for i, m in enumerate(g['ms']):
    law = curve(ns, g['values'][i][:, finite], n_boot, floor)
    law['P'] = float(g['P'][i])
    # Cells whose learner did not converge: not fitted, drawn hollow (mean of those seeds).
    law['unconverged_mean'] = tables.mean_se(g['unconverged'][i][:, finite])[0].tolist()
    law['regions'] = regions.classify(ns, **law['fit'])
    law['regions']['quoted'] = regions.quoted(law['regions'], ns, fits=law['gof']['fits'],
                                              c_interval=law['interval'].get('c'))
    out['learning_curves'][str(int(m))] = law
  for j, n in enumerate(g['ns']):
    label = 'online' if math.isinf(n) else str(int(n))
    out['width_curves'][label] = curve(g['ms'], g['values'][:, :, j].T, n_boot, floor)
  if not joint_law:
    return out
  m, n, eps = joint_cells(g)
  fitted = joint.fit(m, n, eps)
  ms_sorted, ns_sorted = np.unique(g['ms']), np.unique(ns)
  corner_m = ms_sorted[max(len(ms_sorted) // 2 - 1, 0)]
  corner_n = ns_sorted[max(len(ns_sorted) // 2 - 1, 0)]
  compared, cells = joint_forms(g, floor, n_boot // 2)
  out['joint'] = {
      'in_sample': fitted.to_json(),
      'in_sample_log_objective': joint.fit(m, n, eps, objective='log').to_json(),
      'cross_validation': joint.cross_validate(m, n, eps),
      'extrapolation': joint.extrapolate(m, n, eps, m_max=corner_m, n_max=corner_n),
      **compared,
  }
  if spec is not None:
    out['outcomes'] = outcome_fit.analyze(records, spec, g, out['joint'], cells)
  return out


def analyze(workdir, n_boot=200, joint_law=True) -> dict:
  records = results.load(workdir)
  if not records:
    raise ValueError(f'{workdir} has no finished cells yet')
  cfg = results.read_config(workdir)
  floor = forms.precision_floor(cfg['config']['train']['dtype'])
  specs = {json.dumps(v.label, sort_keys=True): v for v in study.plan(ml_collections.ConfigDict(cfg['config'])).variants}
  return {'config_hash': cfg['hash'], 'cells': len(records), 'status': tables.status_counts(records),
          'variants': [analyze_variant(records, v, n_boot, floor, joint_law, specs.get(json.dumps(v, sort_keys=True)))
                       for v in tables.variants(records)]}


def _fmt(v, interval=None):
  s = f'{v:.3g}'
  return s + (f' [{interval[0]:.3g}, {interval[1]:.3g}]' if interval else '')


def summary(fits) -> str:
  lines = []
  for v in fits['variants']:
    lines.append(f'variant {v["variant"] or "(base)"}: learning curves ε(n) = a n^-α + c')
    lines.append(f'  {"m":>5} {"P":>6}  {"alpha [95% CI]":>26}  {"c":>9}  {"rmse_log":>8}  n_small  n_irreducible')
    for m, c in v['learning_curves'].items():
      r = c['regions']['quoted']
      lines.append(f'  {m:>5} {c["P"]:>6.0f}  {_fmt(c["fit"]["alpha"], c["interval"].get("alpha")):>26}  '
                   f'{c["fit"]["c"]:9.2e}  {c["rmse_log"]:8.3f}  {_fmt(r["n_small"]) if r["n_small"] else "-":>7}  '
                   f'{_fmt(r["n_irreducible"]) if r["n_irreducible"] else "-"}')
    j = v['joint']
    lines.append(f'  joint law: in-sample μ={j["in_sample"]["mu"]:+.3f} σ={j["in_sample"]["sigma"]:.3f} '
                 f'(log-objective fit: μ={j["in_sample_log_objective"]["mu"]:+.3f} σ={j["in_sample_log_objective"]["sigma"]:.3f}); '
                 f'5-fold CV μ={j["cross_validation"]["mu"]:+.3f} σ={j["cross_validation"]["sigma"]:.3f}; '
                 f'extrapolation from m<={j["extrapolation"]["m_max"]:.0f}, n<={j["extrapolation"]["n_max"]:.0f}: '
                 f'μ={j["extrapolation"]["mu"]:+.3f} σ={j["extrapolation"]["sigma"]:.3f}')
    if j['selected']:
      e = j['forms'][j['selected']]
      lines.append(f'  selected joint form: {j["selected"]} (CV {e["cv"]["rms_log10"]:.3f} decades RMS, corner '
                   f'{e["extrapolation"]["rms_log10"]:.3f}, in n {e["extrapolate_n"]["rms_log10"]:.3f}, in m '
                   f'{e["extrapolate_m"]["rms_log10"]:.3f}; χ² fits: {e["gof"]["fits"]})')
  return '\n'.join(lines)


def main(argv):
  del argv
  cli.require('workdir')
  fits = cli.or_fail(analyze, flags.FLAGS.workdir, flags.FLAGS.n_boot)
  path = pathlib.Path(flags.FLAGS.workdir) / 'fits.json'
  path.write_text(json.dumps(fits, indent=1, allow_nan=True) + '\n')
  print(summary(fits))
  print(f'written to {path}', file=sys.stderr)


if __name__ == '__main__':
  # Flags belong to the entry point: the module is also imported by others.
  flags.DEFINE_string('workdir', None, 'A sweep workdir.')
  flags.DEFINE_integer('n_boot', 200, 'Bootstrap resamples over seeds (0: no intervals).', lower_bound=0)
  app.run(main, flags_parser=cli.parse_flags)
