"""The second phase: drives a first-order-trained student to its floor (docs/design.md §2, "Converged
learner").

Levenberg–Marquardt on the student's residuals r(θ), L(θ) = Σ r² the normalized training error:
each step solves (JᵀJ + λI) δ = −Jᵀr on the normal matrix (P × P, so for students of at most
`train.second_order_max_params` parameters; larger ones get the same step in its N × N dual form,
`dual_lm`, where the Jacobian is as small, else L-BFGS, `lbfgs`), accepts δ if L decreases and
otherwise retries with a larger λ. ReLU students also try a step that holds the points sitting on
a unit's kink there (`kink_rows`) and take the better of the two: their minima often lie on kinks,
where a free step bounces off the V-shaped valley; their λ shrinks only after a decrease of at
least loop.PROGRESS_RTOL (`loop.lm_damping`). Smooth students' λ follows the gain ratio
(`loop.gain_ratio_damping`). It stops on
  'tolerance'   L <= train.floor (the interpolating learner, at float precision);
  'stationary'  a certified stationary point: no step decreases L any further, either with
                ‖∇L‖ <= train.stationary_tol (steps lower L by < loop.STALL_RTOL relative), or by
                loop.PROGRESS_RTOL relative at no damping up to loop.LAMBDA_MAX and along none of
                2P random directions of relative length 1e-3, 1e-4, ..., 1e-7 (a local minimum at
                that resolution where L is not differentiable, as on a ReLU kink; ‖∇L‖ is recorded);
                or, for smooth students, every GAP_EVERY steps, the optimality gap: the exact
                Hessian is positive definite and its quadratic model's minimum lies within
                GAP_RTOL · L of L (`optimality_gap`; docs/design.md §2.6);
  'budget'      `train.second_order_steps` steps without either (not converged).
Hand-written rather than optimistix's LevenbergMarquardt, which made no progress on an
over-parameterized student (P > n: a singular normal matrix, which λ > 0 keeps solvable here) and
has no stationarity certificate to stop on.
"""

from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from teacher_student import cholesky
from teacher_student import dual_lm
from teacher_student import inputs as inputs_lib
from teacher_student import lbfgs
from teacher_student import loop
from teacher_student import mlp as mlp_lib
from teacher_student.train_spec import TrainSpec

ONLINE_POINTS = 2048  # fresh samples the online column is refined on (a fixed sample, n = ∞'s proxy)
ONLINE_STREAM = (1 << 31) - 1   # their key: beyond any first-order step's fold_in
PROBES = 2            # random directions per parameter tried where LM finds no descent
PROBE_RADII = (1e-3, 1e-7)   # their first and smallest length, relative to ‖θ‖ (at least 1)
PROBE_SEED = 17
PROBE_BATCH = 8        # directions evaluated together
KINK_PAIRS = 64       # (point, unit) pairs nearest a ReLU kink that a step may hold on it
KINK_RTOL = 1e-4      # |z| below this, relative to the rms unit input, is on the kink
KINK_WEIGHT = 1e4     # the hold's weight, relative to the normal matrix's largest entry


HESSIAN_BATCH = 64   # Hessian–vector products evaluated together when forming a Hessian
GAP_EVERY = 25       # LM steps between a smooth student's optimality-gap checks
GAP_RTOL = 1e-5      # the local model's remaining decrease of L, relative to L, that certifies
GAP_RIDGE = 1e-12    # the Hessian's ridge in that check, relative to its largest diagonal entry


def hessian(loss, theta, active):
  """∇²loss(θ) (P × P), by P Hessian–vector products, restricted to the `active` parameters (the
  identity elsewhere: inert padding units have cross terms ∂²L/∂a∂w ≠ 0 that would add a unit)."""
  hvp = lambda v: jax.jvp(jax.grad(loss), (theta,), (v,))[1]
  eye = jnp.eye(theta.shape[0], dtype=theta.dtype)
  h = jax.lax.map(hvp, eye, batch_size=HESSIAN_BATCH)
  both = active[:, None] & active[None, :]
  return jnp.where(both, 0.5 * (h + h.T), eye)


def model_decrease(grad, delta, damping) -> jax.Array:
  """The decrease of L = ‖r‖² that the Gauss–Newton model ‖r + Jδ‖² predicts for the LM step δ,
  (JᵀJ + damping · I) δ = −grad, grad = Jᵀr: −gradᵀδ + damping · ‖δ‖² (exact for linear r)."""
  return damping * (delta @ delta) - grad @ delta


def optimality_gap(half_loss, theta, grad, active) -> jax.Array:
  """gᵀH⁻¹g: the decrease of L = 2·half_loss to the minimum of its local quadratic model at θ
  (g = ∇half_loss, H = ∇²half_loss plus a GAP_RIDGE ridge); inf where H is not positive
  (semi)definite, a saddle or a valley whose floor still falls (docs/design.md §2.6)."""
  h = hessian(half_loss, theta, active)
  ridge = GAP_RIDGE * jnp.max(jnp.diag(h))
  gap = grad @ cholesky.solve(h + ridge * jnp.eye(h.shape[0], dtype=h.dtype), grad)
  return jnp.where(jnp.isfinite(gap) & (gap >= 0), gap, jnp.inf)


class Refined(NamedTuple):
  """The second phase's result: parameters, steps run, its stop ('tolerance', 'stationary',
  'budget': `loop` codes), the final normalized training loss and gradient norm ‖∇L‖."""
  params: Any
  steps: jax.Array
  reason: jax.Array
  loss: jax.Array
  grad_norm: jax.Array


def applies(train: TrainSpec) -> bool:
  """Whether students get the second phase (every student, whatever its size, when it is on)."""
  return bool(train.second_order)


def method(num_params: int, rows: int, train: TrainSpec) -> str:
  """The second phase for a student of num_params parameters on `rows` residuals: 'lm' up to
  train.second_order_max_params parameters, else 'dual_lm' where its N × P Jacobian is as small
  (`dual_lm.fits`), else 'lbfgs'."""
  if num_params <= train.second_order_max_params:
    return 'lm'
  return 'dual_lm' if dual_lm.fits(rows, num_params, train) else 'lbfgs'


class Problem(NamedTuple):
  """One student's least-squares problem: residuals(θ_flat) -> (N,) with Σ r² the normalized
  training error, jacobian(θ_flat) -> (N, P) its Jacobian, the flat starting θ0 and its unravel,
  and the rows x_nd it spans (the first n)."""
  residuals: Any
  jacobian: Any
  theta0: jax.Array
  unravel: Any
  x_nd: jax.Array
  n: Any


def problem(student, train: TrainSpec, params, x_nd, y_nk, n, y_var, batch_key, online) -> Problem:
  """The second phase's problem. Finite n: the first n points of the pool (rows beyond n weigh
  0). Online (a Python bool): ONLINE_POINTS fresh samples drawn from the replicate's batch key."""
  dtype = train.jnp_dtype
  flat0, unravel = jax.flatten_util.ravel_pytree(params)
  if online:
    x_nd = inputs_lib.sample(student.teacher.inputs, jax.random.fold_in(batch_key, ONLINE_STREAM), ONLINE_POINTS, dtype)
    y_nk, n = student.teacher(x_nd).astype(dtype), ONLINE_POINTS
  k = y_nk.shape[1]
  w_n = (jnp.arange(x_nd.shape[0]) < n).astype(dtype) / (n * k * y_var)

  def residuals(theta):
    return ((student.apply(unravel(theta), x_nd) - y_nk) * jnp.sqrt(w_n)[:, None]).ravel()

  def jacobian(theta):
    # Row by row in reverse mode (about 3 forward passes of work per row), not forward mode over
    # all P parameters at once (P passes, and a P × N × width tangent held in memory).
    def row(x_d, sw):
      return jax.jacrev(lambda th: student.apply(unravel(th), x_d[None])[0] * sw)(theta)
    return jax.vmap(row)(x_nd, jnp.sqrt(w_n)).reshape(-1, theta.shape[0])
  return Problem(residuals, jacobian, flat0, unravel, x_nd, n)


def kink_rows(student, prob: Problem, theta) -> tuple[jax.Array, jax.Array]:
  """The kinks θ sits on: (c_kp, z_k), the gradients and values of the KINK_PAIRS hidden-unit
  inputs z nearest 0, zeroed where |z| > KINK_RTOL · rms(z) (not on a kink).

  A ReLU student's minimum often lies where some point sits exactly on a unit's kink (z = 0):
  the loss is V-shaped across it, so an unconstrained step bounces off and the phase crawls.
  Steps that keep those z at 0 (c δ = -z) move along the valley's floor, where L is smooth."""
  z_nu, live_u = mlp_lib.preactivations(prob.unravel(theta), prob.x_nd, student.spec.activation)
  rows, units = z_nu.shape
  valid = live_u[None, :] & (jnp.arange(rows) < prob.n)[:, None]
  scale = jnp.sqrt(jnp.sum(jnp.where(valid, z_nu**2, 0.0)) / jnp.maximum(jnp.sum(valid), 1))
  dist_nu = jnp.where(valid, jnp.abs(z_nu), jnp.inf)
  # The KINK_PAIRS nearest pairs lie in at most KINK_PAIRS rows, those of the smallest row minima:
  # two small top_k's instead of one over every (row, unit) pair, which dominated a step at large n.
  _, row_r = jax.lax.top_k(-jnp.min(dist_nu, axis=1), min(KINK_PAIRS, rows))
  near, pick = jax.lax.top_k(-dist_nu[row_r].ravel(), min(KINK_PAIRS, row_r.shape[0] * units))
  idx = row_r[pick // units] * units + pick % units
  on_kink = -near <= KINK_RTOL * scale

  def gradient(i, u):
    return jax.grad(lambda th: mlp_lib.preactivations(prob.unravel(th), prob.x_nd[i][None], student.spec.activation)[0][0, u])(theta)
  c_kp = jax.vmap(gradient)(idx // units, idx % units)
  return c_kp * on_kink[:, None], jnp.where(on_kink, z_nu.ravel()[idx], 0.0)


def refine(student, train: TrainSpec, params, x_nd, y_nk, n, y_var, batch_key, online: bool = False,
           first_reason=loop.RUNNING, on_steps=None, gap_rtol: float = GAP_RTOL) -> Refined:
  """Runs the second phase from `params` on the same sample as the first (see `problem`).
  first_reason: the first phase's stop code; a diverged student is left as it is. on_steps: a host
  function called every PROGRESS_STEPS steps (LM's primal form), for a progress display. gap_rtol:
  the optimality-gap certificate's threshold (0 turns it off)."""
  prob = problem(student, train, params, x_nd, y_nk, n, y_var, batch_key, online)
  residuals, theta0, unravel = prob.residuals, prob.theta0, prob.unravel
  dtype = theta0.dtype
  start = jnp.where(jnp.asarray(first_reason) == loop.DIVERGED, loop.DIVERGED, loop.RUNNING).astype(jnp.int32)
  how = method(theta0.shape[0], jax.eval_shape(residuals, theta0).shape[0], train)
  if how != 'lm':
    done = (dual_lm.minimize(residuals, prob.jacobian, theta0, train, cholesky.solve, start) if how == 'dual_lm'
            else lbfgs.minimize(residuals, theta0, train, start))
    return Refined(unravel(done.theta), done.steps, done.reason, done.loss, done.grad_norm)

  half_loss = lambda th: 0.5 * jnp.sum(residuals(th) ** 2)
  # Smooth students crawl along curved valleys where residuals stay non-zero (JᵀJ misses Σ rᵢ∇²rᵢ):
  # their damping follows the gain ratio and they also certify by the optimality gap.
  smooth = not student.kinked

  def normal_and_grad(theta, r):
    jac = prob.jacobian(theta)    # (N, P)
    return jac.T @ jac, jac.T @ r

  def lm_step(carry):
    theta, r, normal, grad, lam, t, reason, stalled, radius = carry
    loss = jnp.sum(r**2)
    eye = jnp.eye(theta.shape[0], dtype=dtype)
    scale = jnp.maximum(jnp.max(jnp.diag(normal)), jnp.finfo(dtype).tiny)
    damped = normal + lam * scale * eye
    candidate = theta + cholesky.solve(damped, -grad)
    r_new = residuals(candidate)
    loss_new = jnp.sum(r_new**2)
    if student.kinked:   # also a step that keeps kinked points on their kinks (`kink_rows`); the better one
      c_kp, z_k = kink_rows(student, prob, theta)
      mu = KINK_WEIGHT * scale / jnp.maximum(jnp.max(jnp.sum(c_kp**2, axis=1)), jnp.finfo(dtype).tiny)
      held = theta + cholesky.solve(damped + mu * c_kp.T @ c_kp, -(grad + mu * c_kp.T @ z_k))
      r_held = residuals(held)
      loss_held = jnp.sum(r_held**2)
      use = jnp.isfinite(loss_held) & ~(loss_held >= loss_new)
      candidate, r_new, loss_new = jnp.where(use, held, candidate), jnp.where(use, r_held, r_new), jnp.where(use, loss_held, loss_new)
    if smooth:
      predicted = model_decrease(grad, candidate - theta, lam * scale)
      better, stalled, lam = loop.gain_ratio_damping(loss, loss_new, predicted, lam)
    else:
      # A step that helps by less than PROGRESS_RTOL counts as failed: damping grows until the probe
      # asks whether leaving the kinks a step holds (or a smooth plateau) lowers L.
      better, stalled, lam = loop.lm_damping(loss, loss_new, lam)
    theta, r = jnp.where(better, candidate, theta), jnp.where(better, r_new, r)
    normal, grad = jax.lax.cond(better, lambda: normal_and_grad(theta, r), lambda: (normal, grad))
    return theta, r, normal, grad, lam, t + 1, reason, stalled, radius

  def probe_step(carry):
    """No LM step helps at any damping: try PROBES·P random directions of length radius·‖θ‖ (a
    kink of a ReLU student can hide descent from the linearization). The best one that lowers L
    restarts LM there; if none does, the radius shrinks tenfold, down to PROBE_RADII[1]."""
    theta, r, normal, grad, lam, t, reason, stalled, radius = carry
    loss = jnp.sum(r**2)
    key = jax.random.fold_in(jax.random.key(PROBE_SEED), t)
    # Only the student's own parameters (`active`), so a narrow student stays the width it is.
    d = jax.random.normal(key, (PROBES * theta.shape[0], theta.shape[0]), dtype) * active
    d = d / jnp.linalg.norm(d, axis=1, keepdims=True) * radius * jnp.maximum(jnp.linalg.norm(theta), 1.0)
    # In batches: all 2P at once hold 2P copies of the hidden activations (memory-bound, 3x slower).
    losses = jax.lax.map(lambda di: jnp.sum(residuals(theta + di) ** 2), d, batch_size=PROBE_BATCH)
    best = jnp.argmin(jnp.where(jnp.isfinite(losses), losses, jnp.inf))
    better = losses[best] < loss
    theta = jnp.where(better, theta + d[best], theta)
    r = jax.lax.cond(better, lambda: residuals(theta), lambda: r)
    normal, grad = jax.lax.cond(better, lambda: normal_and_grad(theta, r), lambda: (normal, grad))
    # As for LM steps, a descent below PROGRESS_RTOL (relative) is taken but counts as none, so
    # a crawl of ever tinier descents along a kink ends in a certificate instead of the budget.
    progress = better & (loss - losses[best] >= loop.PROGRESS_RTOL * loss)
    lam = jnp.where(progress, jnp.asarray(1e-3, dtype), lam)
    radius = jnp.where(progress, jnp.minimum(radius * 10, PROBE_RADII[0]), radius / 10)
    return theta, r, normal, grad, lam, t + 1, reason, stalled, radius

  def decide(carry):
    theta, r, normal, grad, lam, t, reason, stalled, radius = carry
    loss = jnp.sum(r**2)
    gnorm = 2 * jnp.linalg.norm(grad)
    certified = (stalled & (gnorm <= train.stationary_tol)) | (radius < PROBE_RADII[1])
    if smooth:
      check = (reason == loop.RUNNING) & (t > 0) & (t % GAP_EVERY == 0)
      gap = jax.lax.cond(check, lambda: optimality_gap(half_loss, theta, grad, active), lambda: jnp.asarray(jnp.inf, dtype))
      certified = certified | (gap <= gap_rtol * loss)
    reason = loop.second_phase_stop(reason, loss, certified, t >= train.second_order_steps, train.floor)
    return theta, r, normal, grad, lam, t, reason, stalled, radius

  def step(carry):
    if on_steps is not None:   # every PROGRESS_STEPS steps, for a progress display
      t = carry[5]
      jax.lax.cond(t % PROGRESS_STEPS == PROGRESS_STEPS - 1, lambda: jax.debug.callback(lambda _: on_steps(), t),
                   lambda: None)
    return decide(jax.lax.cond(carry[4] > loop.LAMBDA_MAX, probe_step, lm_step, carry))

  r0 = residuals(theta0)
  normal0, grad0 = normal_and_grad(theta0, r0)
  # The student's own parameters: inert padding units (exactly 0, with zero Jacobian columns) stay 0.
  active = (theta0 != 0) | (jnp.diag(normal0) > 0)
  carry = decide((theta0, r0, normal0, grad0, jnp.asarray(1e-3, dtype), jnp.int32(0), start, jnp.asarray(False),
                  jnp.asarray(PROBE_RADII[0], dtype)))
  carry = jax.lax.while_loop(lambda c: c[6] == loop.RUNNING, step, carry)
  theta, r, _, grad, _, t, reason, _, _ = carry
  return Refined(unravel(theta), t, reason, jnp.sum(r**2), 2 * jnp.linalg.norm(grad))


class Converged(NamedTuple):
  """A student trained by both phases: parameters, first-order steps, the final stop reason
  (`loop` codes), second-order steps (0 when the phase does not apply) and ‖∇L‖ (NaN then)."""
  params: Any
  steps: jax.Array
  reason: jax.Array
  second_order_steps: jax.Array
  grad_norm: jax.Array


def train_to_floor(student, train: TrainSpec, params, x_nd, y_nk, n, batch_key, y_var, online=False,
                   flat_params: bool = True, blocks=None) -> Converged:
  """`loop.train_one` (same arguments), then `refine` where it `applies`. A diverged first
  phase stays diverged."""
  first = loop.train_one(student, train, params, x_nd, y_nk, n, batch_key, y_var, online, flat_params=flat_params,
                         blocks=blocks)
  if not applies(train):
    return skipped(first, train.jnp_dtype)
  second = refine(student, train, first.params, x_nd, y_nk, n, y_var, batch_key, online, first.reason)
  return Converged(second.params, first.steps, second.reason, second.steps, second.grad_norm)


PROGRESS_STEPS = 50   # LM steps between progress callbacks (`refine`'s on_steps)
SMALL_ROWS = 128   # n's up to this are refined together, on the pool's first SMALL_ROWS rows


def grid_refinement(student, train: TrainSpec, ns, progress=None) -> Any:
  """The grid program's second phase, a program of its own: fn(teacher, trained, batch_kd_s,
  pool_s, x_pool_u, y_pool_u, y_var) -> Converged, every array (n, replicate, ...) in the order
  of ns (None: online). Each n's residuals span only its own rows: the n's up to SMALL_ROWS in
  one loop (n traced, rows beyond n weigh 0), each larger n and the online column in a loop of
  its own. progress: a host function called (`jax.debug.callback`) with 'second' as each student
  finishes and 'second_steps' every PROGRESS_STEPS LM steps of LM's primal form (`refine`)."""
  small = [j for j, n in enumerate(ns) if n is not None and n <= SMALL_ROWS]
  groups = ([(tuple(small), SMALL_ROWS, False)] if small else []) + [
      ((j,), n or 1, n is None) for j, n in enumerate(ns) if n is None or n > SMALL_ROWS]
  restore = np.argsort(np.concatenate([cols for cols, _, _ in groups]))
  n_col = np.asarray([0 if n is None else n for n in ns], np.int32)

  def fn(teacher, trained, batch_kd_s, pool_s, x_pool_u, y_pool_u, y_var):
    st = student.replace(teacher=teacher)
    x_pool, y_pool = x_pool_u[pool_s], y_pool_u[pool_s]   # (S, n_max, D), (S, n_max, k)
    batch_key = jax.random.wrap_key_data(batch_kd_s)
    parts = []
    for cols, rows, online in groups:
      idx = np.asarray(cols)
      def at_n(column, rows=rows, online=online):
        params_s, reason_s, n = column
        # One student after another, not vmapped: each stops after its own steps (most within
        # tens) instead of all waiting for the slowest of the batch.
        def one(a):
          done = refine(st, train, a[0], a[1], a[2], n, y_var, a[3], online, a[4],
                        progress and (lambda: progress('second_steps')))
          if progress is not None:
            jax.debug.callback(lambda _: progress('second'), done.steps)
          return done
        return jax.lax.map(one, (params_s, x_pool[:, :rows], y_pool[:, :rows], batch_key, reason_s))
      sub = jax.tree.map(lambda a: a[idx], (trained.params, trained.reason))
      parts.append(jax.lax.map(at_n, (*sub, jnp.asarray(n_col[idx]))))
    done = jax.tree.map(lambda *a: jnp.concatenate(a)[restore], *parts)
    return Converged(done.params, trained.steps, done.reason, done.steps, done.grad_norm)
  return fn


def skipped(trained: loop.Trained, dtype) -> Converged:
  """A first phase's result as a Converged one, where the second phase does not apply."""
  return Converged(trained.params, trained.steps, trained.reason, jnp.zeros_like(trained.steps),
                   jnp.full(jnp.shape(trained.steps), jnp.nan, dtype))
