r"""Regenerates the figure set and DIR/report.md from a sweep workdir (docs/design.md §5).

  python -m analysis.report --workdir=runs/quick

Runs the fits (fits.json) and the decomposition (decomposition.csv), draws every figure the
workdir supports into DIR/figures/ (PNG + CSV each), and writes report.md with the fit table,
the decomposition table, the regions and the run's provenance. Figures it cannot draw are
listed with the reason.
"""

import collections
import datetime
import json
import math
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
from absl import app, flags

from analysis import (ablation, decompose, decomposition_section, figures, fit, forms, outcome_figures, outcomes,
                      outcomes_section, sections, tables)
from experiments import cli, host, results, study
from teacher_student import teachers


def code_version() -> str:
  root = pathlib.Path(__file__).resolve().parents[1]
  try:
    rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=root, capture_output=True, text=True,
                         check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=root,
                           capture_output=True, text=True).stdout.strip()
    return rev + (' (with uncommitted changes)' if dirty else '')
  except (OSError, subprocess.CalledProcessError):
    return 'unknown (not a git checkout)'


def sweep_times(workdir, config_hash) -> dict:
  """Wall time of the sweep runs that wrote the workdir, summed over runs and shards, and how
  much of it JAX compiled (on CPU every program first; elsewhere the next program while one
  trains: `runner.run`) and training waited."""
  runs = results.load_summaries(workdir, config_hash)
  if not runs:
    return {}
  total = lambda key: sum(r[key] for r in runs)
  return {'sweep runs': str(len(runs)), 'sweep wall time (s)': f'{total("wall_seconds"):.1f}',
          'JAX compiling, of the wall time (s)': f'{total("compile_seconds"):.1f}',
          'training waiting for compilation (s)': f'{total("compile_wait_seconds"):.1f}'}


def software(records) -> str:
  """The Python, platform and package versions the cells were trained with; several sets if a
  resumed sweep ran on other versions (each with its cell count)."""
  sets = collections.Counter(json.dumps(r.get('software'), sort_keys=True) for r in records)
  def line(s):
    s = json.loads(s)
    order = ('python', 'platform', *host.PACKAGES)
    return 'not recorded' if s is None else ', '.join(f'{k} {s[k]}' for k in order if k in s)
  if len(sets) == 1:
    return line(next(iter(sets)))
  return '; '.join(f'{line(s)} ({k} cells)' for s, k in sets.most_common())


def provenance(workdir, records, cfg) -> dict:
  # One training program writes all its cells (several widths when merged) with the same
  # finish time and group timings; count each program once.
  groups = {}
  for r in records:
    groups[(r['kind'], json.dumps(r['variant'], sort_keys=True), r['finished_at'], r['group_seconds'],
            r['group_cells'])] = r
  times = sorted(r['finished_at'] for r in records)
  return {
      'workdir': str(workdir), 'preset': cfg['config'].get('name', ''), 'config hash': cfg['hash'],
      'code version': code_version(), 'devices': ', '.join(sorted({r['device'] for r in records})),
      'software': software(records),
      'cells': len(records),
      'status': '; '.join(f'{kind}: ' + ', '.join(f'{k} {v}' for k, v in sorted(tables.status_counts(records, kind).items()))
                          for kind in study.KINDS if any(r['kind'] == kind for r in records)),
      'programs, compile + run (s)': f'{sum(r["group_seconds"] for r in groups.values()):.1f}',
      'of which compilation (s)': f'{sum(r["group_compile_seconds"] for r in groups.values()):.1f}',
      **sweep_times(workdir, cfg['hash']),
      'first / last cell finished': f'{times[0]} / {times[-1]}',
      'report written': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
  }


def nyquist_companion(records, config, n_boot: int = 200):
  """Figure 6's numbers: the companion's trained students, the Nyquist learner and U(n), and
  per width the power law with offset through the students' converged errors at n >= B."""
  if not any(r['kind'] == 'nyquist' for r in records):
    return None
  variant = next(v for v in study.plan(config).variants if v.label == study.NYQUIST_LABEL)
  g = tables.grid(records, kind='nyquist', variant=variant.label)
  ns = g['ns'].astype(int).tolist()
  basis = teachers.num_basis(variant.teacher, variant.inputs.dim)
  # The closed-form learners are also evaluated at n = B − 1 and B, which the grid may skip.
  ns_exact = sorted(set(ns) | {basis - 1, basis})
  tq = decompose.teacher_quantities(variant, config, len(g['replicates']), ns_exact)
  students, unconverged = {}, {}
  for i, m in enumerate(g['ms']):
    mean, se, _ = tables.mean_se(g['values'][i])
    students[str(int(m))] = (mean.tolist(), se.tolist())
    unconverged[str(int(m))] = tables.mean_se(g['unconverged'][i])[0].tolist()
  past_b = np.asarray(ns) >= basis
  cells = (int(g['counts']['ok'][:, past_b].sum()), int(sum(c[:, past_b].sum() for c in g['counts'].values())))
  floor = forms.precision_floor(config.train.dtype)
  laws = {str(int(m)): fit.curve(g['ns'][past_b], g['values'][i][:, past_b], n_boot, floor)
          for i, m in enumerate(g['ms'])}
  return {'ns': ns, 'ns_exact': ns_exact, 'B': basis, 'K': variant.teacher.cutoff, 'd': variant.inputs.dim,
          'nyquist': tq['nyquist'].tolist(), 'U': tq['U'].tolist(), 'students': students,
          'unconverged': unconverged, 'converged_past_b': cells, 'laws_past_b': laws}


def build(workdir, n_boot=200) -> dict:
  workdir = pathlib.Path(workdir)
  records = results.load(workdir)
  if not records:
    raise ValueError(f'{workdir} has no finished cells yet')
  cfg = results.read_config(workdir)
  config = ml_collections.ConfigDict(cfg['config'])
  fig_dir = workdir / 'figures'
  fits = fit.analyze(workdir, n_boot)
  (workdir / 'fits.json').write_text(json.dumps(fits, indent=1) + '\n')
  rows = decompose.decompose(workdir)
  decompose.write(workdir, rows)
  base = fits['variants'][0]
  t_width = config.teacher.width if config.teacher.family == 'mlp' else None
  g = tables.grid(records, variant=base['variant'])
  base_rows = [r for r in rows if r['variant'] == json.dumps(base['variant'], sort_keys=True)]
  companion = nyquist_companion(records, config, n_boot)
  drawn, missing = [], []
  jobs = [
      ('1', lambda: figures.learning_curves(base, fig_dir, t_width)),
      ('2', lambda: figures.width_curves(base, fig_dir, t_width)),
      ('3', lambda: figures.joint_fit(base, fit.joint_cells(g), fig_dir)),
      ('4', lambda: figures.decomposition(base_rows, fig_dir)),
      ('5', lambda: figures.exponents(ablation.exponents(fits, config, records), config.ablation.knob, fig_dir)),
      ('6', lambda: figures.nyquist(companion, fig_dir)),
      ('7', lambda: outcome_figures.shares(base.get('outcomes', {}), base_rows, fig_dir,
                                           base_rows[0]['n_star'] if base_rows else None)),
  ]
  for number, draw in jobs:
    try:
      png, path_csv, caption = draw()
      drawn.append((number, png, path_csv, caption))
    except figures.CannotDraw as e:
      missing.append((number, str(e)))
  return {'workdir': workdir, 'records': records, 'cfg': cfg, 'fits': fits, 'rows': rows,
          'drawn': drawn, 'missing': missing, 'companion': companion}


def findings(b) -> list[str]:
  """The report's opening list, for the base variant: each sentence computed from this run."""
  base = b['fits']['variants'][0]
  label = json.dumps(base['variant'], sort_keys=True)
  rows = [r for r in b['rows'] if r['variant'] == label and r['ok'] > 0 and math.isfinite(r['eps'])]
  out = []
  past = [r for r in rows if r['R_source'] == 'certificate' and r['past_n_star']]
  if past:
    out.append(f'Past n* = {past[0]["n_star"]} (U < {decompose.ZERO:g}) at realizable widths, R = 0 by certificate and '
               f'U = 0, yet ε spans {min(r["eps"] for r in past):.2g} to {max(r["eps"] for r in past):.2g} over '
               f'{len(past)} (m, n) cells: all of it learning deficiency.')
  o = base.get('outcomes', {})
  if o.get('teacher_width') is not None:
    collapses = outcomes.collapse(rows, o['teacher_width'], rows[0]['n_star']) if rows else []
    if collapses:
      bracket = [c for c in collapses if c['brackets_P']]
      out.append(f'For {len(bracket)} of {len(collapses)} widths above the teacher\'s, the interpolants\' error falls most '
                 '(by ' + ', '.join(f'{c["decades"]:.1f}' for c in collapses) + ' decades) between the two sample '
                 'counts that bracket the student\'s own parameter count P(m)' +
                 (f', not the teacher\'s n* = {rows[0]["n_star"]}.' if not any(c['brackets_n_star'] for c in bracket) else '.'))
    out += outcomes_section.findings(o)
  j = base.get('joint', {})
  if j.get('selected'):
    e = j['forms'][j['selected']]
    scatter = j['seed_scatter']['rms_log10']
    out.append(f'The best single joint form of the seed mean ({j["selected"]}) '
               + ('fits' if e['gof']['fits'] else 'does not fit') + f' its χ² test; held out it misses by '
               f'{sections.fmt(e["cv"]["rms_log10"])} decades ({e["cv"]["rms_log10"] / scatter:.2f}× the seed scatter).')
  return out


def markdown(b) -> str:
  workdir, cfg = b['workdir'], b['cfg']
  lines = [f'# Teacher–student scaling study: {cfg["config"].get("name") or workdir.name}', '']
  found = findings(b)
  if found:
    lines += ['## Findings', ''] + [f'- {f}' for f in found] + ['']
  lines += ['## Provenance', '', sections.table(['', ''], list(provenance(workdir, b['records'], cfg).items())), '']
  lines += ['## Figures', '']
  for number, png, path_csv, caption in b['drawn']:
    lines += [f'### Figure {number}', '', f'![figure {number}](figures/{png.name})', '',
              f'{caption} Numbers: [`figures/{path_csv.name}`](figures/{path_csv.name}).', '']
  if b['missing']:
    lines += ['**Not drawn:**', ''] + [f'- Figure {n}: {why}.' for n, why in b['missing']] + ['']
  for v in b['fits']['variants']:
    label = json.dumps(v['variant'], sort_keys=True)
    lines += [f'## Fits — variant {v["variant"] or "(base)"}', ''] + sections.fit_tables(v)
    lines += [f'## Decomposition — variant {v["variant"] or "(base)"}', '']
    lines += decomposition_section.section([r for r in b['rows'] if r['variant'] == label])
    if 'outcomes' in v:
      lines += outcomes_section.section(v['outcomes'], [r for r in b['rows'] if r['variant'] == label])
  if b['companion']:
    lines += sections.companion_section(b['companion'])
  lines += ['## Config', '', '```json', json.dumps(cfg['config'], indent=1, sort_keys=True), '```', '']
  return '\n'.join(lines)


def main(argv):
  del argv
  cli.require('workdir')
  b = cli.or_fail(build, flags.FLAGS.workdir, flags.FLAGS.n_boot)
  path = b['workdir'] / 'report.md'
  path.write_text(markdown(b))
  for number, png, _, _ in b['drawn']:
    print(f'figure {number}: {png}')
  for number, why in b['missing']:
    print(f'figure {number}: not drawn ({why})')
  print(f'report: {path}', file=sys.stderr)


if __name__ == '__main__':
  # Flags belong to the entry point: the module is also imported by others.
  flags.DEFINE_string('workdir', None, 'A sweep workdir.')
  flags.DEFINE_integer('n_boot', 200, 'Bootstrap resamples over seeds (0: no intervals).', lower_bound=0)
  app.run(main, flags_parser=cli.parse_flags)
