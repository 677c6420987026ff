"""Levenberg–Marquardt in its dual form, for students with more parameters than
`train.second_order_max_params` trained on few points: the step
    δ = −(JᵀJ + λI)⁻¹ Jᵀr = −Jᵀ (JJᵀ + λI)⁻¹ r
solves an N × N system instead of a P × P one (the same step: push-through identity), so it
serves when N · P <= second_order_max_params² (the Jacobian no larger than the primal form's
normal matrix). Damping, acceptance and stops follow `second_order` without its kink steps and
probes:
  'tolerance'   L <= train.floor;
  'stationary'  ‖∇L‖ <= train.stationary_tol where a step lowered L by less than loop.STALL_RTOL
                (relative) or no damped step lowers it;
  'budget'      train.second_order_steps steps without either, or no damped step lowers L while
                ‖∇L‖ > train.stationary_tol (stuck, not certified: not converged).
"""

from typing import Callable

import jax
import jax.numpy as jnp

from teacher_student import lbfgs
from teacher_student import loop
from teacher_student.train_spec import TrainSpec


def fits(rows: int, num_params: int, train: TrainSpec) -> bool:
  """Whether the dual form's N × P Jacobian is within the primal form's P × P size limit."""
  return rows * num_params <= train.second_order_max_params ** 2


def minimize(residuals: Callable, jacobian: Callable, theta0: jax.Array, train: TrainSpec, spd_solve: Callable,
             start_reason) -> lbfgs.Minimized:
  """Minimizes Σ residuals(θ)² (N,) from theta0 (P,) by dual LM; jacobian(θ) -> (N, P);
  spd_solve(a, b) -> a⁻¹ b. A student whose `start_reason` is not loop.RUNNING is returned as is."""
  dtype = theta0.dtype

  def decide(loss, grad, lam, t, reason, stalled):
    stuck = lam > loop.LAMBDA_MAX
    certified = (stalled | stuck) & (2 * jnp.linalg.norm(grad) <= train.stationary_tol)
    return loop.second_phase_stop(reason, loss, certified, stuck | (t >= train.second_order_steps), train.floor)

  def step(carry):
    theta, r, jac, lam, t, reason = carry
    loss = jnp.sum(r**2)
    kernel = jac @ jac.T
    scale = jnp.maximum(jnp.max(jnp.diag(kernel)), jnp.finfo(dtype).tiny)
    alpha = spd_solve(kernel + lam * scale * jnp.eye(kernel.shape[0], dtype=dtype), r)
    candidate = theta - jac.T @ alpha
    r_new = residuals(candidate)
    loss_new = jnp.sum(r_new**2)
    better, stalled, lam = loop.lm_damping(loss, loss_new, lam)
    theta, r = jnp.where(better, candidate, theta), jnp.where(better, r_new, r)
    jac = jax.lax.cond(better, lambda: jacobian(theta), lambda: jac)
    return theta, r, jac, lam, t + 1, decide(jnp.sum(r**2), jac.T @ r, lam, t + 1, reason, stalled)

  r0, jac0 = residuals(theta0), jacobian(theta0)
  lam0 = jnp.asarray(1e-3, dtype)
  reason0 = decide(jnp.sum(r0**2), jac0.T @ r0, lam0, jnp.int32(0), jnp.asarray(start_reason, jnp.int32),
                   jnp.asarray(False))
  carry = jax.lax.while_loop(lambda c: c[5] == loop.RUNNING, step, (theta0, r0, jac0, lam0, jnp.int32(0), reason0))
  theta, r, jac, _, t, reason = carry
  return lbfgs.Minimized(theta, t, reason, jnp.sum(r**2), 2 * jnp.linalg.norm(jac.T @ r))
