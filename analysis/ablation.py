r"""Scaling exponents per level of an ablation knob (docs/design.md §5, figure 5).

  python -m analysis.ablation --workdir=runs/ablation_intrinsic_dim

Per level: α, the data exponent of the widest student's learning curve ε(n) = a n^(−α) + c;
β, the width exponent of the online (data-rich) width curve ε(m) = b m^(−β) + c (of the
largest n when there is no online column); β_P, the exponent of the same curve against the
parameter count, ε(P) = b P^(−β_P) + c — the model-size exponent that Sharma & Kaplan's (2020)
4/d is about — each with its bootstrap interval over seeds; and the intrinsic dimension of the
level's inputs measured by TwoNN (analysis.intrinsic_dim). Each exponent carries its curve's
goodness-of-fit verdict (<key>_fits: True, False or None, undetermined); figure 5 draws only the
exponents whose curves fit (docs/design.md §5). Writes DIR/ablation.json and figure 5.
"""

import json
import pathlib
import sys

from absl import app, flags

import jax
import ml_collections
import numpy as np

from analysis import figures, fit, forms, intrinsic_dim, tables
from experiments import cli, results, study
from teacher_student import inputs


def _exponent(curve) -> tuple:
  """(exponent, lo, hi, fits) of a `fit.curve` result."""
  lo, hi = curve['interval'].get('alpha', [float('nan'), float('nan')])
  return curve['fit']['alpha'], lo, hi, curve['gof']['fits']


def measured_dimension(config, variant_label, n=4000) -> float:
  """TwoNN intrinsic dimension of n inputs of the level's input distribution."""
  plan = study.plan(config)
  variant = next(v for v in plan.variants if v.label == variant_label)
  x = inputs.sample(variant.inputs, jax.random.key(12345), n)
  return intrinsic_dim.two_nn(np.asarray(x))


def parameter_exponent(records, variant, column, floor: float, n_boot=200) -> tuple:
  """(β_P, lo, hi, fits): the width curve of `column` ('online' or an n) against P(m), fitted and
  judged as every width curve (`fit.curve`)."""
  g = tables.grid(records, variant=variant)
  j = len(g['ns']) - 1 if column == 'online' else list(g['ns']).index(float(column))
  return _exponent(fit.curve(g['P'], g['values'][:, :, j].T, n_boot, floor))


EXPONENT_FIELDS = {key: (key, f'{key}_lo', f'{key}_hi', f'{key}_fits') for key in ('alpha', 'beta', 'beta_P')}


def exponents(fits, config=None, records=None) -> list[dict]:
  """One point per variant (ablation level) from `fit.analyze` output; with the study's config,
  also the measured intrinsic dimension of each level's inputs (d_measured), and with its
  records the parameter-count exponent β_P."""
  floor = forms.precision_floor(config.train.dtype if config is not None else 'float64')
  points = []
  for v in fits['variants']:
    if not v['variant']:
      continue
    (knob, level), = v['variant'].items()
    lcs = v['learning_curves']
    widest = max(lcs, key=int)
    wcs = v['width_curves']
    data_rich = 'online' if 'online' in wcs else max(wcs, key=int)
    point = {'knob': knob, 'level': level, 'alpha_width': int(widest), 'beta_n': data_rich,
             'd_measured': measured_dimension(config, v['variant']) if config is not None else None}
    point.update(zip(EXPONENT_FIELDS['alpha'], _exponent(lcs[widest])))
    point.update(zip(EXPONENT_FIELDS['beta'], _exponent(wcs[data_rich])))
    if records is not None:
      point.update(zip(EXPONENT_FIELDS['beta_P'], parameter_exponent(records, v['variant'], data_rich, floor)))
    points.append(point)
  return points


def main(argv):
  del argv
  cli.require('workdir')
  fits = cli.or_fail(fit.analyze, flags.FLAGS.workdir, flags.FLAGS.n_boot, joint_law=False)
  config = ml_collections.ConfigDict(results.read_config(flags.FLAGS.workdir)['config'])
  points = exponents(fits, config, results.load(flags.FLAGS.workdir))
  if not points:
    cli.fail(f'{flags.FLAGS.workdir} holds no ablation (config.ablation.knob is empty)')
  workdir = pathlib.Path(flags.FLAGS.workdir)
  (workdir / 'ablation.json').write_text(json.dumps(points, indent=1) + '\n')
  figures.exponents(points, points[0]['knob'], workdir / 'figures')
  print(f'{"level":>10} {"alpha (n) [95% CI]":>26} {"beta (m) [95% CI]":>26} {"beta_P (P) [95% CI]":>26} '
        f'{"d (TwoNN)":>10} {"4/d":>6}')
  ci = lambda p, k: (f'{p[k]:7.3f} [{p[k + "_lo"]:6.3f}, {p[k + "_hi"]:6.3f}]' if p[k + '_fits']
                     else 'does not fit' if p[k + '_fits'] is False else 'undetermined')
  for p in points:
    print(f'{str(p["level"]):>10} {ci(p, "alpha"):>26} {ci(p, "beta"):>26} {ci(p, "beta_P"):>26} '
          f'{p["d_measured"]:10.2f} {4 / p["d_measured"]:6.3f}')
  print(f'written to {workdir / "ablation.json"} and {workdir / "figures" / "fig5_exponents.png"}', file=sys.stderr)


if __name__ == '__main__':
  # Flags belong to the entry point: the module is also imported by others.
  flags.DEFINE_string('workdir', None, 'A sweep workdir with an ablation.')
  flags.DEFINE_integer('n_boot', 200, 'Bootstrap resamples over seeds (0: no intervals).', lower_bound=0)
  app.run(main, flags_parser=cli.parse_flags)
