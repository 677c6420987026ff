"""The report renders every figure from a small synthetic workdir; the CSVs hold the numbers."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from experiments import results, study
from helpers import FIRST_ORDER, ROOT, tiny_config

# One worker runs this module, so its module fixture ('report') is built once (./run.sh test
# distributes by xdist group).
pytestmark = pytest.mark.xdist_group('test_report')

LAW = lambda m, n, seed: (0.5 * n ** -0.8 + 0.2 * m ** -1.0 + 1e-4) * (1 + 0.05 * (seed - 0.5))


def synthetic_workdir(path):
  """Every cell of a tiny ablation study (teacher depth 1, 2), with errors from LAW, no training;
  seed 1's student at m = 2, n = 8 did not converge (its error ×100 must not be averaged in)."""
  config = tiny_config(ablation__knob='teacher.depth', ablation__levels=(1, 2), students__widths=(2, 4, 8),
                       data__ns=(8, 32, 128), decomposition__ensemble_members=2, nyquist__cutoff=1,
                       nyquist__dim=2, nyquist__widths=(4,))
  plan = study.plan(config)
  recs = []
  for g in plan.groups:
    for m, n, (seed, member) in plan.cells(g):
      eps = LAW(m, float('inf') if n is None else n, seed)
      stuck = g.kind == 'student' and (m, n, seed) == (2, 8, 1)
      recs.append({'config_hash': plan.config_hash, 'kind': g.kind, 'variant': plan.variants[g.variant].label,
                   'teacher': {}, 'm': m, 'n': n, 'seed': seed, 'member': member, 'P': 6 * m + 1,
                   'steps': 100, 'stop': 'budget' if stuck else 'tolerance',
                   'status': 'not_converged' if stuck else 'ok', 'train_error': eps / 10,
                   'test_error': eps * 100 if stuck else eps, 'test_se': eps / 100, 'learning_rate': 0.01, 'retries': 0,
                   'wall_seconds': 0.1, 'group_seconds': 1.0, 'group_compile_seconds': 0.5, 'group_cells': 4,
                   'device': 'cpu:synthetic', 'shard': [0, 1], 'finished_at': '2026-01-01T00:00:00+00:00',
                   **({'ensemble_variance': eps / 2, 'members': 2, 'members_ok': 2} if g.kind == 'ensemble' else {})})
  with results.Writer(path, config) as w:
    w.write(recs)
  return recs


@pytest.fixture(scope='module')
def report(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('synthetic')
  recs = synthetic_workdir(workdir)
  out = subprocess.run([sys.executable, '-m', 'analysis.report', f'--workdir={workdir}', '--n_boot=20'],
                       cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-3000:]
  return workdir, recs


def _csv(workdir, name):
  return list(csv.DictReader(open(workdir / 'figures' / f'{name}.csv')))


def _mean(recs, **where):
  """The mean test error of the converged cells that match `where`."""
  return np.mean([r['test_error'] for r in recs if r['status'] == 'ok' and all(r[k] == v for k, v in where.items())])


def test_every_figure_is_drawn(report):
  workdir, _ = report
  names = ['fig1_learning_curves', 'fig2_width_curves', 'fig3_joint_fit', 'fig4_decomposition',
           'fig5_exponents', 'fig6_nyquist', 'fig7_outcomes']
  for name in names:
    png = workdir / 'figures' / f'{name}.png'
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert _csv(workdir, name)
  text = (workdir / 'report.md').read_text()
  assert all(f'figures/{n}.png' in text for n in names) and 'Not drawn' not in text
  assert 'config hash' in text and 'Decomposition' in text and 'n_irreducible' in text


def test_learning_and_width_curve_csvs_hold_the_seed_means(report):
  workdir, recs = report
  base = {'teacher.depth': 1}
  for row in _csv(workdir, 'fig1_learning_curves'):
    n = None if row['n'] == 'inf' else int(float(row['n']))
    want = _mean(recs, kind='student', variant=base, m=int(row['m']), n=n)
    assert float(row['eps_mean']) == pytest.approx(want, rel=1e-12)
  rows = _csv(workdir, 'fig2_width_curves')
  assert len(rows) == 3 * 4          # 3 widths × (3 n + online)
  for row in rows:
    n = None if row['n'] == 'online' else int(row['n'])
    assert float(row['eps_mean']) == pytest.approx(_mean(recs, kind='student', variant=base, m=int(float(row['m'])), n=n))


def test_joint_decomposition_exponent_and_nyquist_csvs(report):
  workdir, recs = report
  joint = _csv(workdir, 'fig3_joint_fit')
  assert len(joint) == 3 * 3 and sum(r['in_corner'] == 'True' for r in joint) > 0   # finite n only
  fits = json.loads((workdir / 'fits.json').read_text())
  j = fits['variants'][0]['joint']
  assert j['selected'] in j['forms'] and set(j['forms'][j['selected']]['cv']) >= {'rms_log10', 'mu', 'sigma'}
  assert f'**Selected: {j["selected"]}**' in (workdir / 'report.md').read_text()
  assert j['seed_scatter']['cells'] > 0 and 'The yardstick: resampling' in (workdir / 'report.md').read_text()
  for row in _csv(workdir, 'fig4_decomposition'):
    assert float(row['D']) == pytest.approx(float(row['eps']) - float(row['R']) - float(row['U']), abs=1e-12)
    # D_optimization is the training error in excess of R, D_bias the rest of D.
    assert float(row['D_optimization']) + float(row['D_bias']) == pytest.approx(float(row['D']), rel=1e-9, abs=1e-12)
  text = (workdir / 'report.md').read_text()
  assert '| 2 | 8 | 1 | 0 | 1 | 0 |' in text   # m = 2, n = 8: one seed at the floor, one not converged
  levels = _csv(workdir, 'fig5_exponents')
  assert [int(r['level']) for r in levels] == [1, 2]
  assert float(levels[0]['alpha']) == pytest.approx(fits['variants'][0]['learning_curves']['8']['fit']['alpha'])
  nyq = _csv(workdir, 'fig6_nyquist')
  exact = {int(float(r['n'])): float(r['eps']) for r in nyq if r['learner'] == 'nyquist'}
  assert exact[8] < 1e-10 and exact[7] > 1e-6                   # B = (2·1+1)² − 1 = 8
  students = [r for r in nyq if r['learner'] == 'mlp_m4']
  assert [float(r['eps']) for r in students] == pytest.approx(
      [_mean(recs, kind='nyquist', m=4, n=n) for n in (8, 32, 128)])
  # Hollow points: the mean of the seeds that did not converge, where there are any.
  stuck = {int(float(r['n'])): float(r['eps']) for r in nyq if r['learner'] == 'mlp_m4_not_converged'}
  for n in (8, 32, 128):
    errs = [r['test_error'] for r in recs if r['kind'] == 'nyquist' and r['m'] == 4 and r['n'] == n
            and r['status'] == 'not_converged']
    assert (n in stuck) == bool(errs) and (not errs or stuck[n] == pytest.approx(np.mean(errs)))


def test_report_says_what_it_cannot_draw(tmp_path):
  """A sweep where every cell stopped on its budget (300 first-order steps, no second phase): the
  report is written, draws the unconverged means, and says why the rest is not drawn."""
  from experiments import runner
  runner.run(tiny_config(data__online=False, **FIRST_ORDER), tmp_path, progress=False)
  assert {r['status'] for r in results.load(tmp_path)} == {'not_converged'}
  out = subprocess.run([sys.executable, '-m', 'analysis.report', f'--workdir={tmp_path}', '--n_boot=20'],
                       cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  text = (tmp_path / 'report.md').read_text()
  for reason in ('Figure 2: no converged cell', 'Figure 3: no joint form could be scored',
                 'Figure 5: needs an ablation', 'Figure 6: no band-limited companion',
                 'Joint forms:** none could be fitted', 'no converged cells to decompose',
                 '| 2 | 13 | not fitted: 0 converged points |'):   # m = 2's learning curve, P = 13
    assert reason in text, reason
  assert (tmp_path / 'figures' / 'fig1_learning_curves.png').exists()


def test_ablation_command(report):
  workdir, _ = report
  out = subprocess.run([sys.executable, '-m', 'analysis.ablation', f'--workdir={workdir}', '--n_boot=20'],
                       cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  points = json.loads((workdir / 'ablation.json').read_text())
  assert [p['level'] for p in points] == [1, 2] and points[0]['knob'] == 'teacher.depth'
  for p in points:
    assert p['d_measured'] == pytest.approx(4, rel=0.15)         # Gaussian inputs, D = 4
    assert p['alpha'] == pytest.approx(0.8, rel=0.05)            # LAW's exponents
    assert p['beta'] == pytest.approx(1.0, rel=0.05)
    assert p['beta_P'] == pytest.approx(p['beta'], rel=0.15)     # depth 1: P = 6m + 1, nearly ∝ m
    # Three n's (or widths) for three parameters: no degrees of freedom left for a verdict.
    assert p['alpha_fits'] is None and p['beta_fits'] is None and p['beta_P_fits'] is None
  assert 'beta_P' in _csv(workdir, 'fig5_exponents')[0]
  assert 'undetermined' in out.stdout


def test_figure_5_draws_only_exponents_whose_curves_fit(tmp_path, monkeypatch):
  """Two levels × three exponents, one curve failing its test: 5 of 6 drawn (the legend counts them
  per exponent), all 6 in the CSV."""
  from analysis import figures
  points = [{'level': level, **{f'{k}{s}': v for k in ('alpha', 'beta', 'beta_P')
                                for s, v in (('', 1.0), ('_lo', 0.8), ('_hi', 1.2), ('_fits', True))}}
            for level in (1, 2)]
  points[1]['alpha_fits'] = False
  saved, save = [], figures._save
  monkeypatch.setattr(figures, '_save', lambda fig, *a: saved.append(fig) or save(fig, *a))
  _, path, caption = figures.exponents(points, 'teacher.depth', tmp_path)
  assert '(5 of 6;' in caption
  legend = [t.get_text() for t in saved[0].axes[0].get_legend().get_texts()]
  assert [t.split(': ')[-1] for t in legend] == ['fits at 1 of 2 levels', 'fits at 2 of 2 levels', 'fits at 2 of 2 levels']
  rows = list(csv.DictReader(open(path)))
  assert [r['alpha_fits'] for r in rows] == ['True', 'False'] and rows[1]['alpha'] == '1.0'


def _d_bias_rows(d_bias_at_n, rel_se=0.01, seeds=6):
  """Decomposition rows of one realizable width past n*, D_bias with standard error rel_se · D_bias."""
  return [{'m': 8, 'n': n, 'R_source': 'certificate', 'past_n_star': True, 'seeds': seeds, 'D_bias': v,
           'D_bias_se': rel_se * v} for n, v in d_bias_at_n.items()]


def test_d_bias_law_quotes_the_exponent_only_where_the_power_law_fits():
  from analysis import decomposition_section
  ns = [64, 128, 256, 512, 1024, 2048]
  rng = np.random.default_rng(0)
  noisy = {n: 3.0 * n**-1.5 * np.exp(0.01 * rng.standard_normal()) for n in ns}   # 1% scatter, 1% se
  text = ' '.join(decomposition_section._d_bias_laws(_d_bias_rows(noisy)))
  alpha = float(text.split('α = ')[1].split(',')[0])
  assert alpha == pytest.approx(1.5, rel=0.02) and 'fits' in text
  kinked = {n: 3.0 * n**-1.5 if n <= 256 else 3.0 * 256**-1.5 * (n / 256) ** -4.0 for n in ns}
  text = ' '.join(decomposition_section._d_bias_laws(_d_bias_rows(kinked)))
  assert 'does not fit' in text and 'α =' not in text


def test_recovery_counts_interpolants_and_recoveries_per_width():
  """Hand count: width 8 has 3 + 2 students at the training floor (one more stationary), 1 of them
  recovered; the others' smallest test error is the smaller of the two cells' minima."""
  from analysis import decomposition_section
  rows = [{'m': 8, 'ok': 4, 'stationary': 1, 'recovered': 1, 'interpolant_min': 3e-9, 'tau': 3e-15},
          {'m': 8, 'ok': 2, 'stationary': 0, 'recovered': 0, 'interpolant_min': 2e-8, 'tau': 3e-15},
          {'m': 16, 'ok': 3, 'stationary': 3, 'recovered': 0, 'interpolant_min': float('nan'), 'tau': 3e-15}]
  text = ' '.join(decomposition_section._recovery(rows))
  assert 'm = 8: 1 of 5 (the others\' test errors from 3e-09)' in text and 'τ = 3e-15' in text
  assert 'm = 16: none at the training floor' in text


def test_companion_law_says_whether_the_trained_error_levels_off():
  """Past n = B: six seeds of 0.3 + 2 n^(−1) with 1% noise fit, with c's interval around 0.3 and
  away from 0 (the error levels off); a width with one converged seed per n has no seed scatter
  for a verdict."""
  from analysis import fit, sections
  ns = np.asarray([128.0, 256, 512, 1024, 2048])
  rng = np.random.default_rng(0)
  y_sx = (0.3 + 2.0 / ns) * np.exp(0.01 * rng.standard_normal((6, len(ns))))
  lone = np.full((6, len(ns)), np.nan)
  lone[0] = 0.3 + 2.0 / ns
  companion = {'B': 80, 'ns_exact': [79, 80, 128], 'nyquist': [0.01, 3e-25, 5e-30],
               'laws_past_b': {'8': fit.curve(ns, y_sx, 100, 0.0), '16': fit.curve(ns, lone, 100, 0.0)}}
  text = ' '.join(sections._companion_laws(companion))
  c_lo, c_hi = (float(v) for v in text.split('c = ')[1].split('[')[1].split(']')[0].split(', '))
  assert c_lo < 0.3 < c_hi and c_lo > 0.25 and 'levels off above 0' in text
  assert 'm = 16 (5 of 5 sample counts with a converged seed): undetermined' in text
  assert 'at most 3e-25' in text


def _interpolant_rows(log_mean_at_n, log_se):
  return [{'m': 8, 'n': n, 'R_source': 'certificate', 'past_n_star': True, 'interpolants': 6,
           'interp_log_mean': v, 'interp_log_se': log_se} for n, v in log_mean_at_n.items()]


def test_interpolant_law_is_fitted_past_the_collapse_and_only_where_a_tail_fits():
  """Geometric means 0.1 at n = 32, 64 (before the collapse), then 1e-2 n^(−2) with 0.2 scatter in
  log and log standard error 0.2: the law is found from n = 128 with α near 2. A curve bending at
  every point (log ε = −(ln n)²/2, log standard error 0.01) has no straight tail of 4 points."""
  from analysis import decomposition_section, interpolants
  rng = np.random.default_rng(1)
  ns = [32, 64, 128, 256, 512, 1024, 2048, 4096]
  collapse = {n: np.log(0.1) if n < 128 else np.log(1e-2) - 2.0 * np.log(n) + 0.2 * rng.standard_normal()
              for n in ns}
  law = interpolants.tail_law(_interpolant_rows(collapse, 0.2))
  assert law['n_from'] == 128 and law['points'] == 6
  assert law['interval'][0] < 2.0 < law['interval'][1] and law['alpha'] == pytest.approx(2.0, abs=0.3)
  curved = {n: -0.5 * np.log(n) ** 2 for n in ns}
  assert interpolants.tail_law(_interpolant_rows(curved, 0.01)) is None
  text = ' '.join(decomposition_section._interpolant_laws(_interpolant_rows(curved, 0.01)))
  assert 'm = 8: no tail of 4 or more of its 8 sample counts fits' in text


def test_provenance_names_the_software_and_a_mix_of_it():
  from analysis import report as report_module
  old = {'python': '3.11.7', 'platform': 'Linux', 'jax': '0.10.1', 'numpy': '2.4.6'}
  new = {**old, 'jax': '0.10.2'}
  one = report_module.software([{'software': new}] * 2)
  assert one == 'python 3.11.7, platform Linux, jax 0.10.2, numpy 2.4.6'
  mixed = report_module.software([{'software': new}] * 3 + [{'software': old}] + [{}])
  assert mixed == ('python 3.11.7, platform Linux, jax 0.10.2, numpy 2.4.6 (3 cells); '
                   'python 3.11.7, platform Linux, jax 0.10.1, numpy 2.4.6 (1 cells); not recorded (1 cells)')


def test_decomposition_rows_against_hand_computed_values(report):
  """ε, R, D_optimization and the outcome counts of decomposition.csv, computed here from LAW: the
  records' test errors are LAW(m, n, seed), their training errors a tenth of that (above the floor:
  every converged student is stationary), and seed 1 at m = 2, n = 8 did not converge."""
  workdir, _ = report
  rows = {(r['variant'], int(r['m']), int(r['n'])): r for r in csv.DictReader(open(workdir / 'decomposition.csv'))}
  variant = json.dumps({'teacher.depth': 1})
  for m in (2, 4, 8):
    # R: 0 by certificate from the teacher's width 4; below it the best online seed (seed 0's
    # factor 1 − 0.025 is the smaller).
    big_r = 0.0 if m >= 4 else LAW(m, float('inf'), 0)
    for n in (8, 32, 128):
      r = rows[variant, m, n]
      seeds = [0] if (m, n) == (2, 8) else [0, 1]
      eps = [LAW(m, n, s) for s in seeds]
      assert float(r['eps']) == pytest.approx(np.mean(eps), rel=1e-12)
      assert float(r['R']) == pytest.approx(big_r, rel=1e-12, abs=0)
      assert float(r['D_optimization']) == pytest.approx(np.mean(eps) / 10 - big_r, rel=1e-9, abs=1e-15)
      assert float(r['D']) == pytest.approx(np.mean(eps) - big_r - float(r['U']), rel=1e-9, abs=1e-15)
      assert (int(r['stationary_count']), int(r['interpolant_count']), int(r['recovered_count'])) == (len(seeds), 0, 0)
      assert float(r['stationary_share']) == 1.0 and float(r['stationary_mean']) == pytest.approx(np.mean(eps))
      # Wilson's interval for k = n: [n / (n + z²), 1].
      assert float(r['stationary_share_lo']) == pytest.approx(len(seeds) / (len(seeds) + 1.959963984540054 ** 2))


def test_outcome_counts_are_of_the_finite_n_students_at_realizable_widths(report):
  """Widths 4 and 8 hold the width-4 teacher: 2 widths × 3 n × 2 seeds = 12 students per variant,
  all converged. The online column's students (4 more) have no training error to classify and are
  not counted; nor is width 2 (below the teacher's)."""
  workdir, _ = report
  o = json.loads((workdir / 'fits.json').read_text())['variants'][0]['outcomes']
  assert o['teacher_width'] == 4
  for counts in o['tau_sensitivity'].values():
    assert sum(counts.values()) == 12 and counts['stationary'] == 12   # training errors above the floor
