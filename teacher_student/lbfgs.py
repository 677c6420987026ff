"""The second phase for students too large for Levenberg–Marquardt's P × P normal matrix
(P > train.second_order_max_params): L-BFGS on the normalized training error L(θ) = Σ r(θ)²
(docs/design.md §2, "Converged learner": "L-BFGS beyond").

optax.lbfgs with its zoom line search (strong Wolfe conditions, so L never increases), from the
first phase's parameters, with the stops of `second_order`:
  'tolerance'   L <= train.floor;
  'stationary'  an iteration lowered L by less than loop.STALL_RTOL (relative) and
                ‖∇L‖ <= train.stationary_tol;
  'budget'      train.lbfgs_steps iterations without either (not converged).
It needs only gradients, O(MEMORY · P) memory, and no Jacobian: it scales to any width.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from teacher_student import loop
from teacher_student.train_spec import TrainSpec

# Curvature pairs kept. Fewer (optax's default 10) stall near 1e-14 on over-parameterized ReLU
# students, whose Gauss–Newton spectrum spans many decades.
MEMORY = 50


class Minimized(NamedTuple):
  """Flat parameters θ (P,), iterations run, the stop (`loop` codes), L and ‖∇L‖ at θ."""
  theta: jax.Array
  steps: jax.Array
  reason: jax.Array
  loss: jax.Array
  grad_norm: jax.Array


def minimize(residuals: Callable, theta0: jax.Array, train: TrainSpec, start_reason) -> Minimized:
  """Minimizes Σ residuals(θ)² from theta0 (P,); a student whose `start_reason` is not
  loop.RUNNING (a diverged first phase) is returned as it is."""
  loss_fn = lambda theta: jnp.sum(residuals(theta) ** 2)
  opt = optax.lbfgs(memory_size=MEMORY)
  value_and_grad = optax.value_and_grad_from_state(loss_fn)

  def decide(loss, grad, t, reason, stalled):
    certified = stalled & (jnp.linalg.norm(grad) <= train.stationary_tol)
    return loop.second_phase_stop(reason, loss, certified, t >= train.lbfgs_steps, train.floor)

  def step(carry):
    theta, state, loss, grad, t, reason = carry
    value, g = value_and_grad(theta, state=state)
    updates, state = opt.update(g, state, theta, value=value, grad=g, value_fn=loss_fn)
    candidate = optax.apply_updates(theta, updates)
    new_loss, new_grad = optax.tree_utils.tree_get(state, 'value'), optax.tree_utils.tree_get(state, 'grad')
    # The line search keeps L from rising; a non-finite or higher candidate is refused all the same.
    better = jnp.isfinite(new_loss) & (new_loss <= loss)
    theta = jnp.where(better, candidate, theta)
    stalled = ~better | (loss - new_loss < loop.STALL_RTOL * loss)
    loss, grad = jnp.where(better, new_loss, loss), jnp.where(better, new_grad, grad)
    # No decrease: the curvature pairs mislead (or the pair is degenerate); restart from the gradient.
    state = jax.lax.cond(stalled, lambda: opt.init(theta), lambda: state)
    return theta, state, loss, grad, t + 1, decide(loss, grad, t + 1, reason, stalled)

  loss0, grad0 = jax.value_and_grad(loss_fn)(theta0)
  reason0 = decide(loss0, grad0, jnp.int32(0), jnp.asarray(start_reason, jnp.int32), jnp.asarray(False))
  carry = (theta0, opt.init(theta0), loss0, grad0, jnp.int32(0), reason0)
  theta, _, loss, grad, t, reason = jax.lax.while_loop(lambda c: c[5] == loop.RUNNING, step, carry)
  return Minimized(theta, t, reason, loss, jnp.linalg.norm(grad))
