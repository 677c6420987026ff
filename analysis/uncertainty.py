"""Uncertainty U(n) and the Nyquist learner, in JAX (docs/design.md §2). Run under 64-bit JAX.

For a model linear in its parameters, f_θ(x) = ψ(x)ᵀ w with w ~ N(0, I) after whitening
(ψ = Σ0^{1/2} φ), the posterior covariance after S_n is I − P_n, P_n the projector onto the row
space of Ψ_n (the n training rows of ψ). That is docs/design.md §2's Σ0 − Σ0Φᵀ(ΦΣ0Φᵀ)⁺ΦΣ0 in whitened
coordinates, and
    U(n) = E_x ‖(I − P_n) ψ(x)‖² / Var f*.
  (a) closed form: ψ = σ0 φ for random-feature and band-limited teachers (isotropic prior);
  (b) linearized: ψ(x) = J(x) Σ0^{1/2}, J the Jacobian of the teacher's outputs w.r.t. its
      parameters at θ*, Σ0 = diag(prior_std²). U drops to 0 once the rows of Ψ_n span all of
      {ψ(x)}: n* = rank of ψ over a large sample (the identifiability threshold).
The projector comes from an SVD whose rank cut-off is NumPy's (σ > σ_max · max(rows, cols) · ε).
All n of a nested sample are done at once: rows beyond n are masked to zero, which leaves the
row space of the first n rows unchanged. Outputs k > 1 contribute k rows per point.
"""

import jax
import jax.flatten_util
import jax.numpy as jnp

from teacher_student import teachers as teachers_lib


def _rank_tol(s, shape):
  return s[..., :1] * max(shape) * jnp.finfo(s.dtype).eps


def _row_basis(a_rp):
  """(P, P) right singular vectors of a and a (P,) mask of those spanning its row space."""
  _, s, vt = jnp.linalg.svd(a_rp, full_matrices=False)
  keep = s > _rank_tol(s, a_rp.shape)
  vt_full = jnp.zeros((a_rp.shape[1], a_rp.shape[1]), a_rp.dtype).at[: vt.shape[0]].set(vt)
  keep_full = jnp.zeros(a_rp.shape[1], bool).at[: keep.shape[0]].set(keep)
  return vt_full, keep_full


def residual_energy(train_rp, test_tp):
  """mean_t ‖(I − P) test_t‖², P the projector onto the row space of train_rp."""
  vt, keep = _row_basis(train_rp)
  coef_tp = (test_tp @ vt.T) * keep
  resid = test_tp - coef_tp @ vt
  return jnp.mean(jnp.sum(resid**2, axis=-1))


def _nested(fn, rows_nkp, ns):
  """fn(rows masked to the first n points) for every n: (N,)."""
  n_max = rows_nkp.shape[0]

  def one(n):
    mask = (jnp.arange(n_max) < n)[:, None, None]
    return fn(jnp.where(mask, rows_nkp, 0.0).reshape(-1, rows_nkp.shape[-1]))
  return jax.vmap(one)(jnp.asarray(ns))


@jax.jit   # one program per teacher and sample shape, not one per primitive of jacfwd
def whitened_features(teacher, x_nd):
  """ψ(x): (n, k, P) rows of the linearized teacher, whitened by its prior (docs/design.md §2 (b)).

  For linear-in-parameter teachers this is exactly σ0 φ(x) placed in each output's block, so
  (a) and (b) coincide there.
  """
  params = teacher.params
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  std, _ = jax.flatten_util.ravel_pytree(teacher.prior_std)

  def f(theta, x):
    return teachers_lib.apply(teacher.spec, unravel(theta), teacher.feature_params, x[None])[0]

  jac_nkp = jax.vmap(jax.jacfwd(f), in_axes=(None, 0))(flat, x_nd)
  return jac_nkp * std


@jax.jit
def _uncertainty(psi_pool_nkp, psi_test_tkp, ns, y_var):
  """U(n) from whitened rows, for (a) and (b) alike: (N,)."""
  # The mean over test rows is over points and outputs, as in the normalized error.
  test = psi_test_tkp.reshape(-1, psi_test_tkp.shape[-1])
  return _nested(lambda rows: residual_energy(rows, test), psi_pool_nkp, ns) / y_var


def linearized(teacher, x_pool, x_test, ns, y_var):
  """U(n) by estimator (b) (equal to (a) on linear teachers) for nested samples: (N,)."""
  return _uncertainty(whitened_features(teacher, x_pool), whitened_features(teacher, x_test),
                      jnp.asarray(ns), y_var)


def closed_form(teacher, x_pool, x_test, ns, y_var):
  """U(n) by estimator (a), from the basis φ of a linear-in-parameter teacher: (N,)."""
  sigma0 = jnp.ravel(teacher.prior_std['theta'])[0]
  psi = lambda x: (sigma0 * teacher.features(x))[:, None, :]   # one row per point
  return _uncertainty(psi(x_pool), psi(x_test), jnp.asarray(ns), y_var)


def identifiability_threshold(teacher, x_nd) -> int:
  """n*: the rank of the whitened Jacobian rows over a sample of points (k rows per point are
  counted in points: n* = ceil(rank / k))."""
  psi = whitened_features(teacher, x_nd)
  k = psi.shape[1]
  rows = psi.reshape(-1, psi.shape[-1])
  s = jnp.linalg.svd(rows, compute_uv=False)
  rank = int(jnp.sum(s > _rank_tol(s, rows.shape)))
  return -(-rank // k)


@jax.jit
def _nyquist(phi_pool_nb, y_pool_nk, phi_test_tb, y_test_tk, ns, y_var):
  n_max = phi_pool_nb.shape[0]

  def one(n):
    mask = (jnp.arange(n_max) < n)[:, None]
    theta_bk = jnp.linalg.pinv(jnp.where(mask, phi_pool_nb, 0.0)) @ jnp.where(mask, y_pool_nk, 0.0)
    return jnp.mean((phi_test_tb @ theta_bk - y_test_tk) ** 2) / y_var
  return jax.vmap(one)(jnp.asarray(ns))


def nyquist(teacher, x_pool, y_pool, x_test, y_test, ns, y_var):
  """Normalized test error of the Nyquist learner (least squares, minimum norm, on the teacher's
  known basis) for nested samples: (N,). Exact (0 to float precision) once n >= B."""
  return _nyquist(teacher.features(x_pool), y_pool, teacher.features(x_test), y_test, jnp.asarray(ns), y_var)
