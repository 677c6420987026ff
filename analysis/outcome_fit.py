"""Everything fits.json says about training outcomes, per variant (docs/design.md §2.7, §5):
fits.json's variants[i].outcomes.

  tau, tau_sensitivity   the recovery threshold, its gap, and the outcome counts at τ/100, τ, τ·100
                         (the per-(m, n) shares are decomposition.csv's, `analysis.decompose`)
  interpolants           the interpolants' joint law: the selected form's params, intervals, gof,
                         cv, extrapolate_n, extrapolate_m (each with rms_log10), seed_se_log10,
                         and every form under 'forms'
  stationary_share       the logistic share model against the constant share, held out
  stationary_error       per width: flat or power law, with verdicts
  mixture                the seed mean predicted from the outcomes, scored out of sample, beside
                         the selected joint form's CV on the same cells
"""

import numpy as np

from analysis import forms, outcome_laws, outcome_mixture, outcomes, selection, tables


def _one_form_on(joint: dict, g_cells: forms.Cells, domain: dict) -> dict:
  """The selected joint form's 5-fold CV error on the mixture's domain cells (same folds as its
  own CV over all cells)."""
  name = joint.get('selected')
  if not name or not len(domain['m']):
    return {}
  res = selection.cv_residuals(name, g_cells)
  at = {(m, n): i for i, (m, n) in enumerate(zip(g_cells.m.tolist(), g_cells.n.tolist()))}
  idx = [at[c] for c in zip(domain['m'].tolist(), domain['n'].tolist()) if c in at]
  r = res[idx]
  r = r[np.isfinite(r)]
  return {'form': name, 'cells': len(r), 'rms_log10': outcome_laws.rms_log10(r)}


def analyze(records, variant, g, joint: dict, g_cells: forms.Cells) -> dict:
  """The outcomes of `variant` (a study.Variant) from its records; g: its `tables.grid`; joint:
  its joint-forms entry (for the comparison on the mixture's cells); g_cells: the cells the joint
  forms were fitted to."""
  floor = variant.train.floor
  students = outcomes.of_variant(g, tables.grid(records, variant=variant.label, field='train_error'), variant)
  seeds = outcome_laws.seeds_of(g, students, floor)
  train, test = students.train[students.realizable], students.test[students.realizable]
  teacher_width = students.teacher_width
  out = {'tau': students.threshold._asdict(), 'floor': floor, 'teacher_width': teacher_width,
         'tau_sensitivity': outcomes.sensitivity(train, test, np.isfinite(test), floor, students.threshold.tau)}
  if teacher_width is None:
    return out
  law = outcome_laws.interpolant_law(outcome_laws.interpolant_cells(seeds, teacher_width))
  out['interpolants'] = law
  out['stationary_share'] = outcome_laws.stationary_share(seeds, teacher_width)
  out['stationary_error'] = outcome_laws.stationary_error(seeds)
  mixture = outcome_mixture.scores(seeds, teacher_width, law)
  if mixture:
    domain = outcome_mixture.domain_cells(seeds, teacher_width, law['ratio_from'])
    mixture['one_form'] = _one_form_on(joint, g_cells, domain)
  out['mixture'] = mixture
  return out
