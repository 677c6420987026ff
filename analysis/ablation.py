r"""Scaling exponents per level of an ablation knob (DESIGN §5, figure 5).

  python -m analysis.ablation --workdir=runs/ablation_intrinsic_dim

Per level: α, the data exponent of the widest student's learning curve ε(n) = a n^(−α) + c;
β, the width exponent of the online (data-rich) width curve ε(m) = b m^(−β) + c (of the
largest n when there is no online column); β_P, the exponent of the same curve against the
parameter count, ε(P) = b P^(−β_P) + c — the model-size exponent that Sharma & Kaplan's (2020)
4/d is about — each with its bootstrap interval over seeds; and the intrinsic dimension of the
level's inputs measured by TwoNN (analysis.intrinsic_dim). Writes DIR/ablation.json and figure 5.
"""

import json
import pathlib
import sys

from absl import app, flags

import jax
import ml_collections
import numpy as np

from analysis import figures, fit, intrinsic_dim, powerlaw, tables
from experiments import cli, results, study
from teacher_student import inputs


def _interval(curve, key):
  lo, hi = curve['interval'].get(key, [float('nan'), float('nan')])
  return curve['fit'][key], lo, hi


def measured_dimension(config, variant_label, n=4000) -> float:
  """TwoNN intrinsic dimension of n inputs of the level's input distribution."""
  plan = study.plan(config)
  variant = next(v for v in plan.variants if v.label == variant_label)
  x = inputs.sample(variant.inputs, jax.random.key(12345), n)
  return intrinsic_dim.two_nn(np.asarray(x))


def parameter_exponent(records, variant, column, n_boot=200) -> tuple:
  """β_P and its interval: the width curve of `column` ('online' or an n) against P(m)."""
  g = tables.grid(records, variant=variant)
  j = len(g['ns']) - 1 if column == 'online' else list(g['ns']).index(float(column))
  b = powerlaw.bootstrap(g['P'], g['values'][:, :, j].T, n_boot=n_boot)
  lo, hi = b['interval'].get('alpha', [float('nan')] * 2)
  return b['fit'].alpha, lo, hi


def exponents(fits, config=None, records=None) -> list[dict]:
  """One point per variant (ablation level) from `fit.analyze` output; with the study's config,
  also the measured intrinsic dimension of each level's inputs (d_measured), and with its
  records the parameter-count exponent β_P."""
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
                   'beta_n': data_rich,
                   'd_measured': measured_dimension(config, v['variant']) if config is not None else None})
    if records is not None:
      points[-1].update(zip(('beta_P', 'beta_P_lo', 'beta_P_hi'), parameter_exponent(records, v['variant'], data_rich)))
  return points


def main(argv):
  del argv
  cli.require('workdir')
  fits = cli.or_fail(fit.analyze, flags.FLAGS.workdir, flags.FLAGS.n_boot)
  config = ml_collections.ConfigDict(results.read_config(flags.FLAGS.workdir)['config'])
  points = exponents(fits, config, results.load(flags.FLAGS.workdir))
  if not points:
    cli.fail(f'{flags.FLAGS.workdir} holds no ablation (config.ablation.knob is empty)')
  workdir = pathlib.Path(flags.FLAGS.workdir)
  (workdir / 'ablation.json').write_text(json.dumps(points, indent=1) + '\n')
  figures.exponents(points, points[0]['knob'], workdir / 'figures')
  print(f'{"level":>10} {"alpha (n) [95% CI]":>26} {"beta (m) [95% CI]":>26} {"beta_P (P) [95% CI]":>26} '
        f'{"d (TwoNN)":>10} {"4/d":>6}')
  ci = lambda p, k: f'{p[k]:7.3f} [{p[k + "_lo"]:6.3f}, {p[k + "_hi"]:6.3f}]'
  for p in points:
    print(f'{str(p["level"]):>10} {ci(p, "alpha"):>26} {ci(p, "beta"):>26} {ci(p, "beta_P"):>26} '
          f'{p["d_measured"]:10.2f} {4 / p["d_measured"]:6.3f}')
  print(f'written to {workdir / "ablation.json"} and {workdir / "figures" / "fig5_exponents.png"}', file=sys.stderr)


if __name__ == '__main__':
  # Flags belong to the entry point: the module is also imported by others.
  flags.DEFINE_string('workdir', None, 'A sweep workdir with an ablation.')
  flags.DEFINE_integer('n_boot', 200, 'Bootstrap resamples over seeds (0: no intervals).', lower_bound=0)
  app.run(main, flags_parser=cli.parse_flags)
