"""The second-order phase: drives a first-order-trained student to its floor (DESIGN §2, "Converged
learner").

Levenberg–Marquardt on the student's residuals r(θ), L(θ) = Σ r² the normalized training error:
each step solves (JᵀJ + λI) δ = −Jᵀr on the normal matrix (P × P, so for students of at most
`train.second_order_max_params` parameters), accepts δ if L decreases (λ shrinks) and otherwise
retries with a larger λ. It stops on
  'tolerance'   L <= train.floor (the interpolating learner, at float precision);
  'stationary'  a certified stationary point: ‖∇L‖ <= train.stationary_tol and no step decreases L
                any further (λ has grown past any useful step, or steps lower L by < 1e-12 relative);
  'budget'      `train.second_order_steps` steps without either (not converged).
A hand-written step rather than optimistix's LevenbergMarquardt: this one stops on the two
certificates above, and handles the over-parameterized students (P > n) whose normal matrix is
singular (λ > 0 keeps the solve well posed).
"""

from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp

from teacher_student import inputs as inputs_lib
from teacher_student import loop
from teacher_student.train_spec import TrainSpec

LAMBDA_MAX = 1e20     # λ beyond this (relative to the normal matrix's scale): no useful step is left
STALL_RTOL = 1e-12    # an accepted step lowering L by less than this, relatively, counts as no decrease
ONLINE_POINTS = 2048  # fresh samples the online column is refined on (a fixed sample, n = ∞'s proxy)
ONLINE_STREAM = (1 << 31) - 1   # their key: beyond any first-order step's fold_in


class Refined(NamedTuple):
  """The second phase's result: parameters, steps run, its stop ('tolerance', 'stationary',
  'budget': `loop` codes), the final normalized training loss and gradient norm ‖∇L‖."""
  params: Any
  steps: jax.Array
  reason: jax.Array
  loss: jax.Array
  grad_norm: jax.Array


def applies(student, train: TrainSpec) -> bool:
  """Whether students of this shape get the second phase."""
  return train.second_order and student.num_params <= train.second_order_max_params


def residual_fn(student, train: TrainSpec, params, x_nd, y_nk, n, y_var, batch_key, online) -> tuple:
  """(r(θ_flat) -> (N,) residuals with Σ r² the normalized training error, flat θ0, unravel).

  Finite n: the first n points of the pool (rows beyond n weigh 0). Online (may be traced):
  ONLINE_POINTS fresh samples drawn from the replicate's batch key."""
  dtype = train.jnp_dtype
  flat0, unravel = jax.flatten_util.ravel_pytree(params)
  if not isinstance(online, bool) or online:
    key_x = jax.random.fold_in(batch_key, ONLINE_STREAM)
    x_fresh = inputs_lib.sample(student.teacher.inputs, key_x, ONLINE_POINTS, dtype)
    y_fresh = student.teacher(x_fresh).astype(dtype)
    if isinstance(online, bool):
      x_nd, y_nk, n = x_fresh, y_fresh, ONLINE_POINTS
    else:   # one program for finite n's and the online column: pick per student
      pad = max(ONLINE_POINTS, x_nd.shape[0])
      grow = lambda a: jnp.pad(a, [(0, pad - a.shape[0]), (0, 0)])
      x_nd = jnp.where(online, grow(x_fresh), grow(x_nd))
      y_nk = jnp.where(online, grow(y_fresh), grow(y_nk))
      n = jnp.where(online, ONLINE_POINTS, n)
  k = y_nk.shape[1]
  w_n = (jnp.arange(x_nd.shape[0]) < n).astype(dtype) / (n * k * y_var)

  def residuals(theta):
    return ((student.apply(unravel(theta), x_nd) - y_nk) * jnp.sqrt(w_n)[:, None]).ravel()
  return residuals, flat0, unravel


def refine(student, train: TrainSpec, params, x_nd, y_nk, n, y_var, batch_key, online=False, start=None) -> Refined:
  """Runs the second phase from `params` on the same sample as the first (see `residual_fn`).
  start: the initial reason code (RUNNING by default; anything else skips the phase)."""
  residuals, theta0, unravel = residual_fn(student, train, params, x_nd, y_nk, n, y_var, batch_key, online)
  dtype = theta0.dtype

  def linearize(theta):
    r = residuals(theta)
    jac = jax.jacfwd(residuals)(theta)    # (N, P): P forward passes, P small here
    return r, jac.T @ jac, jac.T @ r

  def step(carry):
    theta, r, normal, grad, lam, t, reason, stalled = carry
    loss = jnp.sum(r**2)
    eye = jnp.eye(theta.shape[0], dtype=dtype)
    scale = jnp.maximum(jnp.max(jnp.diag(normal)), jnp.finfo(dtype).tiny)
    delta = jnp.linalg.solve(normal + lam * scale * eye, -grad)
    candidate = theta + delta
    r_new = residuals(candidate)
    loss_new = jnp.sum(r_new**2)
    better = jnp.isfinite(loss_new) & (loss_new < loss)
    theta, r = jnp.where(better, candidate, theta), jnp.where(better, r_new, r)
    normal, grad = jax.lax.cond(better, lambda: linearize(theta)[1:], lambda: (normal, grad))
    stalled = ~better | (loss - loss_new < STALL_RTOL * loss)
    lam = jnp.where(better, jnp.maximum(lam / 3, 1e-15), lam * 4)
    return theta, r, normal, grad, lam, t + 1, reason, stalled

  def decide(carry):
    theta, r, normal, grad, lam, t, reason, stalled = carry
    loss = jnp.sum(r**2)
    gnorm = 2 * jnp.linalg.norm(grad)
    reason = jnp.where((reason == loop.RUNNING) & (loss <= train.floor), loop.TOLERANCE, reason)
    no_decrease = stalled | (lam > LAMBDA_MAX)
    reason = jnp.where((reason == loop.RUNNING) & no_decrease & (gnorm <= train.stationary_tol), loop.STATIONARY, reason)
    reason = jnp.where((reason == loop.RUNNING) & ((t >= train.second_order_steps) | (lam > LAMBDA_MAX)),
                       loop.BUDGET, reason)
    return theta, r, normal, grad, lam, t, reason, stalled

  r0, normal0, grad0 = linearize(theta0)
  start = jnp.int32(loop.RUNNING) if start is None else jnp.asarray(start, jnp.int32)
  carry = decide((theta0, r0, normal0, grad0, jnp.asarray(1e-3, dtype), jnp.int32(0), start, jnp.asarray(False)))
  carry = jax.lax.while_loop(lambda c: c[6] == loop.RUNNING, lambda c: decide(step(c)), carry)
  theta, r, _, grad, _, t, reason, _ = carry
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
  if not applies(student, train):
    return Converged(first.params, first.steps, first.reason, jnp.int32(0), jnp.asarray(jnp.nan, train.jnp_dtype))
  second = refine(student, train, first.params, x_nd, y_nk, n, y_var, batch_key, online,
                  start=jnp.where(first.reason == loop.DIVERGED, loop.DIVERGED, loop.RUNNING))
  return Converged(second.params, first.steps, second.reason, second.steps, second.grad_norm)
