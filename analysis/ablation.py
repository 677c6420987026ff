r"""Scaling exponents per level of an ablation knob (DESIGN §5, figure 5).

  python -m analysis.ablation --workdir=runs/ablation_intrinsic_dim

Per level: α, the data exponent of the widest student's learning curve ε(n) = a n^(−α) + c,
and β, the width exponent of the online (data-rich) width curve ε(m) = b m^(−β) + c (of the
largest n when there is no online column), each with its bootstrap interval over seeds. Writes
DIR/ablation.json and figure 5.
"""

import json
import pathlib
import sys

from absl import app, flags

from analysis import figures, fit
from experiments import results


def _interval(curve, key):
  lo, hi = curve['interval'].get(key, [float('nan'), float('nan')])
  return curve['fit'][key], lo, hi


def exponents(fits) -> list[dict]:
  """One point per variant (ablation level) from `fit.analyze` output."""
  points = []
  for v in fits['variants']:
    if not v['variant']:
      continue
    (knob, level), = v['variant'].items()
    lcs = v['learning_curves']
    widest = max(lcs, key=int)
    wcs = v['width_curves']
    data_rich = 'online' if 'online' in wcs else max(wcs, key=int)
    alpha, alpha_lo, alpha_hi = _interval(lcs[widest], 'alpha')
    beta, beta_lo, beta_hi = _interval(wcs[data_rich], 'alpha')
    points.append({'knob': knob, 'level': level, 'alpha': alpha, 'alpha_lo': alpha_lo, 'alpha_hi': alpha_hi,
                   'alpha_width': int(widest), 'beta': beta, 'beta_lo': beta_lo, 'beta_hi': beta_hi,
                   'beta_n': data_rich})
  return points


def main(argv):
  del argv
  from experiments import cli
  if not flags.FLAGS.workdir:
    cli.fail('--workdir is required')
  try:
    fits = fit.analyze(flags.FLAGS.workdir, flags.FLAGS.n_boot)
  except (OSError, ValueError, KeyError) as e:
    cli.fail(cli.first_line(e))
  points = exponents(fits)
  if not points:
    cli.fail(f'{flags.FLAGS.workdir} holds no ablation (config.ablation.knob is empty)')
  workdir = pathlib.Path(flags.FLAGS.workdir)
  (workdir / 'ablation.json').write_text(json.dumps(points, indent=1) + '\n')
  figures.exponents(points, points[0]['knob'], workdir / 'figures')
  print(f'{"level":>10} {"alpha [95% CI]":>28} {"beta [95% CI]":>28}')
  for p in points:
    print(f'{str(p["level"]):>10} {p["alpha"]:8.3f} [{p["alpha_lo"]:7.3f}, {p["alpha_hi"]:7.3f}]   '
          f'{p["beta"]:8.3f} [{p["beta_lo"]:7.3f}, {p["beta_hi"]:7.3f}]')
  print(f'written to {workdir / "ablation.json"} and {workdir / "figures" / "fig5_exponents.png"}', file=sys.stderr)


if __name__ == '__main__':
  # Flags belong to the entry point: the module is also imported by others.
  flags.DEFINE_string('workdir', None, 'A sweep workdir with an ablation.')
  flags.DEFINE_integer('n_boot', 200, 'Bootstrap resamples over seeds.')
  app.run(main)
