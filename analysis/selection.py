"""Which joint form describes a sweep: every form of `analysis.forms` scored out of sample, the
best one chosen by cross-validation, its parameters bootstrapped over seeds (docs/design.md §5).

Scores are on held-out cells above the precision floor (censored cells are fitted as bounds,
never scored): rms_log10, the RMS of log10(ε̂/ε) in decades, and μ, σ of δ = (ε̂ − ε)/ε.
  cv             K-fold cross-validation over cells
  extrapolation  fit the small corner (m and n up to their grid's middle), predict the rest
  extrapolate_n  fit n <= n_max/8 at every width, predict the larger n's
  extrapolate_m  fit the narrower half of the widths, predict the wider ones
The selected form: the simplest within one standard error of the lowest cv error (`select`).
The yardstick for all of them is `seed_scatter`: how far the cells' own seed means move when the
seeds are resampled. A form that were the true mean would still miss the cells by about that much.
"""

import math

import numpy as np
import scipy.stats

from analysis import forms, powerlaw, tables

FOLDS = 5


def cells_of(values_msn, ms, ns, r_m, floor: float) -> forms.Cells:
  """Cells from per-seed errors values_msn (M, S, N) at finite ns (N,), widths ms (M,), R(m) r_m
  (M,): seed means, standard errors and counts; cells at or below `floor` censored."""
  mean, se, count = tables.mean_se(values_msn, axis=1)
  mm, nn = np.meshgrid(np.asarray(ms, float), np.asarray(ns, float), indexing='ij')
  rr = np.broadcast_to(np.asarray(r_m, float)[:, None], mm.shape)
  ok = np.isfinite(mean) & (mean > 0)
  return forms.Cells(mm[ok], nn[ok], mean[ok], se[ok], count[ok], rr[ok], mean[ok] <= floor)


def _summary(res) -> dict:
  """Scores of log residuals res (natural log) of held-out cells; NaN if any is missing."""
  if not len(res) or not np.all(np.isfinite(res)):
    return {'rms_log10': float('nan'), 'mu': float('nan'), 'sigma': float('nan'), 'cells': len(res)}
  delta, sq = np.expm1(res), (res / math.log(10)) ** 2
  return {'rms_log10': float(np.sqrt(np.mean(sq))), 'mse_se': float(np.std(sq) / np.sqrt(len(sq))),
          'mu': float(np.mean(delta)), 'sigma': float(np.std(delta)), 'cells': len(res)}


def _residuals(fit: forms.FormFit, test: forms.Cells) -> np.ndarray:
  """log(ε̂/ε) at the test cells above the floor (NaN where the fit failed)."""
  scored = test.subset(~test.censored)
  return forms.residuals(fit, scored) if fit.success else np.full(len(scored.eps), np.nan)


def cv_residuals(name: str, cells: forms.Cells, *, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
  """log(ε̂/ε) per cell (C,), each predicted by the fit without its fold (K-fold over cells); NaN
  at censored cells (bounds, not scored) and where a fit failed."""
  fold = np.random.default_rng(seed).permutation(len(cells.eps)) % folds
  out = np.full(len(cells.eps), np.nan)
  for k in range(folds):
    held = (fold == k) & ~cells.censored
    out[held] = _residuals(forms.fit(name, cells.subset(fold != k)), cells.subset(held))
  return out


def cross_validate(name: str, cells: forms.Cells, *, folds: int = FOLDS, seed: int = 0) -> dict:
  """Out-of-fold scores, K-fold over cells (every cell predicted by the fit without its fold)."""
  res = cv_residuals(name, cells, folds=folds, seed=seed)
  return {**_summary(res[~cells.censored]), 'folds': folds}


def splits(cells: forms.Cells) -> dict:
  """The extrapolation tests' fitted cells (boolean masks) and what they mean."""
  ms, ns = np.unique(cells.m), np.unique(cells.n)
  m_mid, n_mid = ms[max(len(ms) // 2 - 1, 0)], ns[max(len(ns) // 2 - 1, 0)]
  return {'extrapolation': ((cells.m <= m_mid) & (cells.n <= n_mid), f'm <= {m_mid:g}, n <= {n_mid:g}'),
          'extrapolate_n': (cells.n <= ns.max() / 8, f'n <= {ns.max() / 8:g}'),
          'extrapolate_m': (cells.m <= m_mid, f'm <= {m_mid:g}')}


def extrapolate(name: str, cells: forms.Cells, fitted, label: str) -> dict:
  """Fits the cells where `fitted`, scores the others."""
  fit = forms.fit(name, cells.subset(fitted))
  return {**_summary(_residuals(fit, cells.subset(~fitted))), 'fit_on': label, 'fit_cells': int(np.sum(fitted)),
          'params': fit.params(), 'scale': fit.scale._asdict(), 'success': fit.success}


def as_fit(name: str, entry: dict) -> forms.FormFit:
  """The FormFit a fits.json entry ('params', 'scale', 'success') describes."""
  theta = np.asarray([entry['params'][p] for p in forms.FORMS[name].params], float)
  return forms.FormFit(name, theta, forms.Scale(**entry['scale']), bool(entry['success']))


def compare(cells: forms.Cells) -> dict:
  """Every applicable form: in-sample fit, its χ² verdict, cv and the three extrapolations;
  'selected': `select` on the cv scores (None when no form could be scored)."""
  if not len(cells.eps):   # no converged cell above zero: nothing to fit or score
    return {'forms': {}, 'selected': None}
  out = {}
  for name, form in forms.FORMS.items():
    if not forms.applicable(form, cells):
      continue
    fit = forms.fit(name, cells)
    live = ~cells.censored
    gof = powerlaw.chi2_verdict(fit.log_predict(cells.subset(live)) if fit.success else np.full(int(live.sum()), np.nan),
                                cells.eps[live], cells.se[live], cells.seeds[live], params=len(form.params))
    entry = {'params': fit.params(), 'success': fit.success, 'in_sample': _summary(_residuals(fit, cells)), 'gof': gof,
             'cv': cross_validate(name, cells), 'scale': fit.scale._asdict()}
    for key, (mask, label) in splits(cells).items():
      entry[key] = extrapolate(name, cells, mask, label)
    out[name] = entry
  return {'forms': out, 'selected': select({n: e['cv'] for n, e in out.items()})}


def select(cv: dict, sizes: dict | None = None) -> str | None:
  """The one-standard-error rule (Breiman et al. 1984): of the forms whose cv mean squared log10
  error is within one standard error of the lowest, the one with the fewest parameters (a form
  nesting another fits noise a little better; that is no reason to choose it). sizes: {form:
  parameter count}, default the joint forms'."""
  sizes = sizes or {n: len(f.params) for n, f in forms.FORMS.items()}
  scored = {n: c for n, c in cv.items() if math.isfinite(c['rms_log10'])}
  if not scored:
    return None
  best = min(scored, key=lambda n: scored[n]['rms_log10'])
  bound = scored[best]['rms_log10'] ** 2 + scored[best]['mse_se']
  near = [n for n in scored if scored[n]['rms_log10'] ** 2 <= bound]
  return min(near, key=lambda n: (sizes[n], scored[n]['rms_log10']))


def seed_scatter(values_msn, floor: float, *, n_boot: int = 1000, seed: int = 0) -> dict:
  """The cells' own sampling scatter in decades: per cell (M, N) above `floor` with >= 2 seeds, the
  standard deviation of log10(seed mean) over bootstrap resamples of its seeds (values_msn (M, S, N));
  'rms_log10' is its RMS over those cells, 'median_log10' its median, 'over_half_decade' how many
  cells scatter by more than 0.5 decades."""
  values_msn = np.asarray(values_msn, float)
  rng = np.random.default_rng(seed)
  sds = []
  for values in np.moveaxis(values_msn, 1, -1).reshape(-1, values_msn.shape[1]):
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.mean() <= floor:
      continue
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    sds.append(np.std(np.log10(np.maximum(means, floor))))
  if not sds:
    return {'rms_log10': float('nan'), 'median_log10': float('nan'), 'over_half_decade': 0, 'cells': 0}
  return {'rms_log10': float(np.sqrt(np.mean(np.square(sds)))), 'median_log10': float(np.median(sds)),
          'over_half_decade': int(np.sum(np.asarray(sds) > 0.5)), 'cells': len(sds)}


def bootstrap(name: str, values_msn, ms, ns, r_m, floor: float, *, n_boot: int = 100, seed: int = 0,
              level: float = 0.95) -> dict:
  """{param: [lo, hi]} for form `name`, resampling seeds (whole rows of values_msn (M, S, N)) and
  refitting from the central fit: estimate ± t_{S−1} · sqrt(S/(S−1)) · sd, as `powerlaw.bootstrap`."""
  values_msn = np.asarray(values_msn, float)
  n_seeds = values_msn.shape[1]
  central = forms.fit(name, cells_of(values_msn, ms, ns, r_m, floor))
  if not central.success or n_seeds < 2 or not n_boot:
    return {}
  rng = np.random.default_rng(seed)
  draws = []
  for _ in range(n_boot):
    rows = rng.integers(0, n_seeds, n_seeds)
    f = forms.fit(name, cells_of(values_msn[:, rows], ms, ns, r_m, floor), start=central)
    if f.success:
      draws.append(f.theta)
  if len(draws) < 2:
    return {}
  half = scipy.stats.t.ppf((1 + level) / 2, n_seeds - 1) * np.std(draws, axis=0) * np.sqrt(n_seeds / (n_seeds - 1))
  return {p: [float(v - h), float(v + h)] for p, v, h in zip(forms.FORMS[name].params, central.theta, half)}
