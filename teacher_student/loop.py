"""One student's training loop and its stopping rule (docs/design.md §3).

`train_one` runs `lax.scan` over a chunk of `check_every` steps inside a `lax.while_loop` over
chunks. Stopping rule, checked every step: normalized training error <= tol ('tolerance') or a
non-finite loss ('diverged'); checked every chunk: no relative improvement of the best loss by
plateau_rtol for `patience` checks ('plateau'); step budget reached ('budget').
Status: tolerance/plateau -> 'ok', budget -> 'not_converged', diverged -> 'diverged'.
Under vmap a while-loop runs until every student has stopped; a stopped student's parameters
are frozen, so each student's result is the one it would get alone.
"""

from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

from teacher_student import batching
from teacher_student import train_spec as train_spec_lib
from teacher_student.train_spec import TrainSpec

RUNNING, TOLERANCE, PLATEAU, BUDGET, DIVERGED, STATIONARY = range(6)
STOP_REASONS = ('running', 'tolerance', 'plateau', 'budget', 'diverged', 'stationary')
STATUS = ('running', 'ok', 'ok', 'not_converged', 'diverged', 'ok')

# The second phases' rules (second_order, dual_lm, lbfgs), relative to L or to the normal matrix:
STALL_RTOL = 1e-12    # a step lowering L by less than this counts as no decrease
PROGRESS_RTOL = 1e-9  # one lowering L by less than this does not shrink LM's damping
LAMBDA_MAX = 1e12     # LM's damping beyond this (relative to the matrix's largest entry): steps vanish
LAMBDA_MIN = 1e-10    # and no smaller: the damped matrix stays well conditioned for the solve


def second_phase_stop(reason, loss, certified, exhausted, floor):
  """The second phases' stop rule: 'tolerance' at L <= floor, else 'stationary' where
  `certified`, else 'budget' where `exhausted`; a student already stopped keeps its reason."""
  reason = jnp.where((reason == RUNNING) & (loss <= floor), TOLERANCE, reason)
  reason = jnp.where((reason == RUNNING) & certified, STATIONARY, reason)
  return jnp.where((reason == RUNNING) & exhausted, BUDGET, reason)


def lm_damping(loss, loss_new, lam):
  """A Levenberg–Marquardt step's verdict: (better, stalled, next λ). λ shrinks (to LAMBDA_MIN at
  least) only after a step lowering L by PROGRESS_RTOL or more, relative; else it grows tenfold."""
  better = jnp.isfinite(loss_new) & (loss_new < loss)
  stalled = better & (loss - loss_new < STALL_RTOL * loss)
  progress = better & (loss - loss_new >= PROGRESS_RTOL * loss)
  return better, stalled, jnp.where(progress, jnp.maximum(lam / 3, LAMBDA_MIN), lam * 10)


def gain_ratio_damping(loss, loss_new, predicted, lam):
  """A smooth student's Levenberg–Marquardt verdict (Nielsen's rule): (better, stalled, next λ).
  A step that lowers L is taken, and λ scales by max(1/3, 1 − (2ρ − 1)³), ρ = the actual decrease
  over the `predicted` one (λ shrinks where the model is trusted, grows where it is not); a refused
  step multiplies λ by 4. Unlike `lm_damping`, a small decrease still shrinks λ: along a curved
  valley the steps that help are small, and a growing λ only makes them smaller."""
  better = jnp.isfinite(loss_new) & (loss_new < loss)
  stalled = better & (loss - loss_new < STALL_RTOL * loss)
  rho = (loss - loss_new) / jnp.maximum(predicted, jnp.finfo(jnp.result_type(loss)).tiny)
  shrink = jnp.maximum(1 / 3, 1 - (2 * rho - 1) ** 3)
  return better, stalled, jnp.where(better, jnp.maximum(lam * shrink, LAMBDA_MIN), lam * 4)


class Trained(NamedTuple):
  """What `train_one` returns: the final parameters, the steps run and the stop reason code."""
  params: Any
  steps: jax.Array
  reason: jax.Array


def _where(pred, new, old):
  return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def train_one(student, train: TrainSpec, params, x_nd: jax.Array, y_nk: jax.Array, n, batch_key: jax.Array,
              y_var, online=False, flat_params: bool = True, blocks: tuple[int, int] | None = None,
              on_chunk=None) -> Trained:
  """Trains one student from `params` on the first n points of the pool (x_nd, y_nk).

  The data arguments, `online` and `blocks` are `batching.loss_and_grad_fn`'s (its docstring
  says what each batching mode takes). flat_params: optimize one flat parameter vector, so that
  the optimizer update and the freeze-select are one fused operation each (small students:
  `batch_budget.uses_flat_params`); False keeps the parameter tree (big students, whose weight
  matrices would otherwise be sliced out of the vector every step). on_chunk: a host function
  called (`jax.debug.callback`) after every chunk of check_every steps, for a progress display.
  """
  opt = train_spec_lib.optimizer(train)
  dtype = train.jnp_dtype
  loss_and_grad = batching.loss_and_grad_fn(student, train, x_nd, y_nk, n, batch_key, y_var, online, blocks)
  flat0, unravel = jax.flatten_util.ravel_pytree(params) if flat_params else (params, lambda p: p)

  def step(state, _):
    p, opt_state, t, reason, best = state
    loss, g = loss_and_grad(p, t, unravel)
    running = reason == RUNNING
    finite = jnp.isfinite(loss)
    reached = loss <= train.tol
    go = running & finite & ~reached & (t < train.steps)
    updates, new_opt_state = opt.update(g, opt_state, p)
    p = _where(go, optax.apply_updates(p, updates), p)
    opt_state = _where(go, new_opt_state, opt_state)
    reason = jnp.where(running & ~finite, DIVERGED, jnp.where(running & finite & reached, TOLERANCE, reason))
    best = jnp.where(go, jnp.minimum(best, loss), best)
    return (p, opt_state, t + go, reason, best), None

  def chunk(carry):
    state, ref, bad = carry
    state, _ = jax.lax.scan(step, state, None, length=train.check_every)
    if on_chunk is not None:
      jax.debug.callback(lambda _: on_chunk(), state[2])   # after the chunk: it depends on its steps
    p, opt_state, t, reason, best = state
    improved = best < ref * (1.0 - train.plateau_rtol)
    bad = jnp.where(improved, 0, bad + 1)
    ref = jnp.where(improved, best, ref)
    running = reason == RUNNING
    if train.plateau_rtol > 0:
      reason = jnp.where(running & (bad >= train.patience), PLATEAU, reason)
    reason = jnp.where((reason == RUNNING) & (t >= train.steps), BUDGET, reason)
    return (p, opt_state, t, reason, best), ref, bad

  inf = jnp.asarray(jnp.inf, dtype)
  state = (flat0, opt.init(flat0), jnp.int32(0), jnp.int32(RUNNING), inf)
  state, _, _ = jax.lax.while_loop(lambda c: c[0][3] == RUNNING, chunk, (state, inf, jnp.int32(0)))
  flat, _, steps, reason, _ = state
  return Trained(unravel(flat), steps, reason)
