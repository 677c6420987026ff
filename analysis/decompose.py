r"""Splits a sweep's error into realizability, uncertainty and learning deficiency (docs/design.md §2).

  python -m analysis.decompose --workdir=runs/quick

Writes DIR/decomposition.csv (one row per variant, width m and n) and DIR/decomposition.json,
and prints a summary. Per row:
  eps, eps_se          ε(m, n): mean test error over seeds, and its standard error
  R                    realizability: 0 by the embedding certificate when the student contains
                       the MLP teacher (same depth and activation, m >= teacher width), else the
                       online estimate (an upper bound); R_online: best of the online restarts
  U                    uncertainty: closed form (a) for linear teachers, linearized (b) for MLPs,
                       averaged over the sweep's own training samples; U_ens: estimator (c)
                       over the members that interpolate (ens_interpolating of ens_members)
  D = eps − R − U      learning deficiency, with a 95% interval (never clipped: estimator noise
                       can make it slightly negative); D_share = D / eps
  D_optimization       per seed, the final normalized training error in excess of R(m): at
                       realizable widths (R = 0) what a better optimizer would remove (the training
                       error is at the floor or at a certified stationary point); at the others
                       negative where a small sample is fitted better than the class fits the
                       population (train < R: the sample's optimism, carried by D_bias)
  D_bias               per seed, D − D_optimization = test error − training error − U: with the
                       training error at the floor, the test error of the interpolant the learner
                       picked; both with 95% intervals over seeds (_lo, _hi), D_bias also with its standard error
  ok, not_converged, diverged, stationary
                       cell counts by status (only 'ok' cells are averaged in; stationary: ok
                       cells that stopped at a certified stationary point above the floor)
  tau                  the recovery threshold τ of the variant (`outcomes.recovery_threshold`)
  recovered            ok cells at the training floor whose test error is at most τ: the student
                       computes the teacher's function up to rounding and conditioning
  interpolant_min      the smallest test error of the ok cells at the training floor that did not
                       recover the teacher (NaN where none): how far an interpolant can stay off
  interpolants, interp_log_mean, interp_log_se
                       those cells' count and the mean and standard error of their natural-log test
                       errors (log of the geometric mean): their errors span decades within a cell
  <outcome>_count, _share, _share_lo, _share_hi, _mean, _geomean
                       per outcome (recovered, interpolant, stationary): count, share of the ok
                       cells with its 95% Wilson interval, mean and geometric mean of test errors
  n_star               the teacher's identifiability threshold (rank of its whitened Jacobian);
  past_n_star          U(n) < U_ZERO: past n* in the sense of the uncertainty, not of n >= rank
  nyquist              the Nyquist learner's error (band-limited and random-feature teachers)
"""

import csv
import json
import math
import pathlib
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import scipy.stats
from absl import app, flags

from analysis import outcomes, tables, uncertainty
from experiments import cli, results, study
from teacher_student import data, evaluation, students, teachers


COLUMNS = ('variant', 'm', 'P', 'n', 'seeds', 'eps', 'eps_se', 'R', 'R_source', 'R_online', 'R_online_se',
           'U', 'U_source', 'U_se', 'U_ens', 'U_ens_se', 'ens_members', 'ens_interpolating', 'ens_not_converged', 'D', 'D_lo', 'D_hi', 'D_share', 'D_optimization',
           'D_optimization_lo', 'D_optimization_hi', 'D_bias', 'D_bias_lo', 'D_bias_hi', 'D_bias_se',
           'ok', 'not_converged',
           'diverged', 'stationary', 'tau', 'recovered', 'interpolant_min',
           'interpolants', 'interp_log_mean', 'interp_log_se', *outcomes.COLUMNS, 'n_star', 'past_n_star', 'nyquist')
ZERO = 1e-10   # U below this (float64) counts as 0: 'past n*'


def _interval(se, count):
  t = scipy.stats.t.ppf(0.975, max(count - 1, 1))
  return t * se


def teacher_quantities(variant, config, n_seeds: int, ns) -> dict:
  """U(n) (mean and SE over the sweep's seeds), n* and the Nyquist learner's error, in float64.

  The teacher, pools and test set are rebuilt exactly as the sweep drew them (same dtype, same
  seeds), then cast to float64; labels are recomputed in float64 from those inputs and teacher
  parameters, so the ideal learners see f* itself, not its float32 rounding (which would put a
  floor of ~1e-14 under the Nyquist learner, and amplify it at n = B where its system is square).
  Label noise, if the study has any, is added again in float64.
  """
  dtype = jnp.dtype(config.train.dtype)
  with jax.enable_x64(config.train.dtype == 'float64'):   # as the sweep drew them
    teacher = teachers.make_teacher(variant.teacher, variant.inputs, dtype)
    x_test, y_test = data.test_set(teacher, config.data.n_test, config.data.test_seed, dtype)
    x_pools = [data.train_pool(teacher, s, max(ns), 0.0, dtype)[0] for s in range(n_seeds)]
  linear = variant.teacher.family in teachers.LINEAR_FAMILIES
  with jax.enable_x64(True):
    t64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), teacher)
    x_test = jnp.asarray(x_test, jnp.float64)
    y_test = t64(x_test)
    y_var = float(evaluation.output_variance(y_test))
    estimate = uncertainty.closed_form if linear else uncertainty.linearized
    x_pools = [jnp.asarray(x, jnp.float64) for x in x_pools]
    u_sn = np.array([estimate(t64, x, x_test, ns, y_var) for x in x_pools])
    # The rank of ψ over 4096 test points (n* can only exceed it for ReLU by a few points).
    n_star = uncertainty.identifiability_threshold(t64, x_test[:4096])
    nyq = None
    if linear:
      nyq = np.array([uncertainty.nyquist(t64, x, _labels(t64, x, s, config.data.noise_std), x_test, y_test, ns, y_var)
                      for s, x in enumerate(x_pools)]).mean(0)
  u_mean, u_se, _ = tables.mean_se(u_sn)
  return {'U': u_mean, 'U_se': np.nan_to_num(u_se), 'U_source': 'closed_form' if linear else 'linearized',
          'n_star': n_star, 'nyquist': nyq, 'teacher_width': variant.teacher.width if not linear else None}


def _labels(teacher, x_nd, seed, noise_std):
  """f*(x) (+ the study's label noise, redrawn from the seed's noise stream) in x's dtype."""
  y = teacher(x_nd)
  if noise_std:
    y = y + noise_std * jax.random.normal(data.stream_key(seed, data.NOISE), y.shape, y.dtype)
  return y


def decompose_variant(records, variant, config) -> list[dict]:
  g = tables.grid(records, variant=variant.label)
  tr = tables.grid(records, variant=variant.label, field='train_error')
  se_test = tables.grid(records, variant=variant.label, field='test_se')
  finite = np.isfinite(g['ns'])
  ns = g['ns'][finite].astype(int).tolist()
  if not ns:
    return []
  tq = teacher_quantities(variant, config, len(g['replicates']), ns)
  ens = tables.grid(records, kind='ensemble', variant=variant.label, field='ensemble_variance')
  online = ~finite
  stationary = tables.stop_counts(records, 'stationary', variant=variant.label)
  label = json.dumps(variant.label, sort_keys=True)
  ens_records = [r for r in records if r['kind'] == 'ensemble' and json.dumps(r['variant'], sort_keys=True) == label]
  members = lambda n, key: sum(r.get(key, 0) for r in ens_records if r['n'] == n)
  floor = variant.train.floor
  tau = outcomes.of_variant(g, tr, variant).threshold.tau   # the outcome laws' (outcome_fit)
  rows = []
  for i, m in enumerate(g['ms']):
    r_online = r_online_se = float('nan')
    if online.any():
      errs = g['values'][i][:, online][:, 0]
      if np.isfinite(errs).any():
        best = int(np.nanargmin(errs))
        r_online, r_online_se = float(errs[best]), float(se_test['values'][i][best, online][0])
    certified = students.certified_realizable(variant.student(int(m)), variant.teacher)
    r, r_se = (0.0, 0.0) if certified else (r_online, r_online_se)
    for j, n in enumerate(ns):
      col = list(g['ns']).index(n)
      eps_mean, eps_se, count = tables.mean_se(g['values'][i][:, col])
      train_s, test_s = tr['values'][i][:, col], g['values'][i][:, col]
      outcome_s = outcomes.classify(train_s, test_s, np.isfinite(test_s), floor, tau)
      interpolants = test_s[outcome_s == 'interpolant']
      log_mean, log_se, _ = (float(v) for v in tables.mean_se(np.log(interpolants))) if interpolants.size else (
          float('nan'),) * 3
      d_opt, d_opt_se, _ = (float(v) for v in tables.mean_se(train_s - r))
      d_bias, d_bias_se, _ = (float(v) for v in tables.mean_se(test_s - train_s - float(tq['U'][j])))
      counts = {s: int(g['counts'][s][i, col]) for s in tables.STATUSES}
      u, u_se = float(tq['U'][j]), float(tq['U_se'][j])
      u_ens = u_ens_se = float('nan')
      if len(ens['ns']) and n in ens['ns'].tolist():
        u_ens, u_ens_se, _ = (float(v) for v in tables.mean_se(ens['values'][0][:, list(ens['ns']).index(n)]))
      d = float(eps_mean) - r - u
      d_half = _interval(math.sqrt(float(eps_se if np.isfinite(eps_se) else 0) ** 2 + r_se**2 + u_se**2), int(count))
      rows.append({
          'variant': json.dumps(variant.label, sort_keys=True), 'm': int(m), 'P': int(g['P'][i]), 'n': n,
          'seeds': int(count), 'eps': float(eps_mean), 'eps_se': float(eps_se),
          'R': r, 'R_source': 'certificate' if certified else 'online', 'R_online': r_online,
          'R_online_se': r_online_se, 'U': u, 'U_source': tq['U_source'], 'U_se': u_se,
          'U_ens': u_ens, 'U_ens_se': u_ens_se, 'ens_members': members(n, 'members'),
          'ens_interpolating': members(n, 'members_ok'),
          'ens_not_converged': sum(r.get('member_status', []).count('not_converged') for r in ens_records if r['n'] == n),
          'D': d, 'D_lo': d - d_half, 'D_hi': d + d_half,
          'D_share': d / float(eps_mean) if eps_mean > 0 else float('nan'),
          'D_optimization': d_opt, 'D_optimization_lo': d_opt - _interval(np.nan_to_num(d_opt_se), int(count)),
          'D_optimization_hi': d_opt + _interval(np.nan_to_num(d_opt_se), int(count)),
          'D_bias': d_bias, 'D_bias_lo': d_bias - _interval(np.nan_to_num(d_bias_se), int(count)),
          'D_bias_hi': d_bias + _interval(np.nan_to_num(d_bias_se), int(count)), 'D_bias_se': d_bias_se,
          **counts, 'stationary': stationary.get((int(m), n), 0), 'tau': tau,
          'recovered': int(np.sum(outcome_s == 'recovered')),
          'interpolant_min': float(interpolants.min()) if interpolants.size else float('nan'),
          'interpolants': int(interpolants.size), 'interp_log_mean': log_mean, 'interp_log_se': log_se,
          **outcomes.cell_columns(outcome_s, test_s),
          'n_star': tq['n_star'], 'past_n_star': u < ZERO,
          'nyquist': float(tq['nyquist'][j]) if tq['nyquist'] is not None else float('nan'),
          'teacher_width': tq['teacher_width']})
  return rows


def decompose(workdir) -> list[dict]:
  records = results.load(workdir)
  if not any(r['kind'] == 'student' for r in records):
    raise ValueError(f'{workdir} has no finished student cells yet')
  config = ml_collections.ConfigDict(results.read_config(workdir)['config'])
  plan = study.plan(config)
  present = {json.dumps(v, sort_keys=True) for v in tables.variants(records)}
  rows = []
  for variant in plan.variants:
    if json.dumps(variant.label, sort_keys=True) in present:
      rows += decompose_variant(records, variant, config)
  return rows


def summary(rows) -> str:
  lines = []
  for variant in dict.fromkeys(r['variant'] for r in rows):
    vr = [r for r in rows if r['variant'] == variant]
    n_star = vr[0]['n_star']
    lines.append(f'variant {variant}: n* = {n_star} (teacher Jacobian rank), U = {vr[0]["U_source"]}')
    lines.append(f'  {"m":>4} {"n":>6} {"eps":>9} {"R":>9} {"U":>9} {"U_ens":>9} {"D":>9} {"D share":>8}')
    for r in vr:
      lines.append(f'  {r["m"]:>4} {r["n"]:>6} {r["eps"]:9.2e} {r["R"]:9.2e} {r["U"]:9.2e} {r["U_ens"]:9.2e} '
                   f'{r["D"]:9.2e} {r["D_share"]:8.3f}' + ('  (R certified 0)' if r['R_source'] == 'certificate' and r['n'] == vr[0]['n'] else ''))
    past = [r for r in vr if r['R_source'] == 'certificate' and r['past_n_star']]
    if past:
      lines.append(f'  realizable widths past n*: {len(past)} cells, U < {ZERO:g} in '
                   f'{sum(r["U"] < ZERO for r in past)}, median D share {np.median([r["D_share"] for r in past]):.3f}, '
                   f'min eps {min(r["eps"] for r in past):.2e}')
  return '\n'.join(lines)


def write(workdir, rows) -> None:
  workdir = pathlib.Path(workdir)
  with open(workdir / 'decomposition.csv', 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=list(COLUMNS) + ['teacher_width'])
    w.writeheader()
    w.writerows(rows)
  (workdir / 'decomposition.json').write_text(json.dumps(rows, indent=1) + '\n')


def main(argv):
  del argv
  cli.require('workdir')
  rows = cli.or_fail(decompose, flags.FLAGS.workdir)
  write(flags.FLAGS.workdir, rows)
  print(summary(rows))
  print(f'written to {pathlib.Path(flags.FLAGS.workdir) / "decomposition.csv"}', file=sys.stderr)


if __name__ == '__main__':
  # Flags belong to the entry point: the module is also imported by others.
  flags.DEFINE_string('workdir', None, 'A sweep workdir.')
  app.run(main, flags_parser=cli.parse_flags)
