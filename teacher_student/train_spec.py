"""How students are trained: the TrainSpec and the optimizer it names (docs/design.md §3)."""

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ('adam', 'sgd')
SCHEDULES = ('constant', 'cosine')
DTYPES = ('float32', 'float64')


@dataclasses.dataclass(frozen=True)
class TrainSpec:
  """How every student is trained. Hashable (a static argument of jit).

  Attributes:
    optimizer: 'adam' or 'sgd'.
    learning_rate: (peak) step size.
    schedule: 'constant', or 'cosine' (decays to 1% of learning_rate over `steps`).
    momentum: SGD momentum (0 = plain gradient descent).
    steps: step budget.
    batch_size: mini-batch size (sampled with replacement from the student's n points);
      0 = full batch.
    tol: stop when the normalized training error is <= tol.
    plateau_rtol: a check without a relative improvement of the best loss by this much is a
      bad check; 0 disables the plateau rule.
    patience: consecutive bad checks before stopping on a plateau.
    check_every: steps per chunk (one `lax.scan`) between plateau checks.
    online_batch: fresh samples per step in online mode (n = ∞).
    noise_std: label-noise standard deviation σ (training labels only).
    dtype: 'float32' or 'float64' (needs jax_enable_x64).
    second_order: after the first-order phase, drive each student to its floor by
      Levenberg–Marquardt (its dual form or L-BFGS for large students; `second_order.method`); its
      stop then decides the status: 'ok' only at the floor ('tolerance') or at a certified
      stationary point ('stationary').
    second_order_steps: the Levenberg–Marquardt step budget (either form).
    second_order_max_params: students with more parameters get LM's dual form where N · P is at
      most its square, else L-BFGS (LM's normal matrix is P × P).
    lbfgs_steps: the L-BFGS iteration budget.
    floor: the normalized training error that counts as interpolation (float64: 1e-20).
    stationary_tol: the gradient norm ‖∇L‖ of the normalized training error below which a point
      where no step decreases L is certified stationary.
  """
  optimizer: str = 'adam'
  learning_rate: float = 1e-2
  schedule: str = 'constant'
  momentum: float = 0.0
  steps: int = 10_000
  batch_size: int = 0
  tol: float = 1e-8
  plateau_rtol: float = 0.0
  patience: int = 4
  check_every: int = 250
  online_batch: int = 256
  noise_std: float = 0.0
  dtype: str = 'float32'
  second_order: bool = False
  second_order_steps: int = 500
  second_order_max_params: int = 4096
  lbfgs_steps: int = 10_000
  floor: float = 1e-20
  stationary_tol: float = 1e-8

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(f'unknown optimizer {self.optimizer!r}; choose one of {", ".join(OPTIMIZERS)}')
    if self.schedule not in SCHEDULES:
      raise ValueError(f'unknown schedule {self.schedule!r}; choose one of {", ".join(SCHEDULES)}')
    if self.dtype not in DTYPES:
      raise ValueError(f'invalid dtype {self.dtype!r}; choose one of {", ".join(DTYPES)}')
    if not float(self.learning_rate) > 0:
      raise ValueError(f'learning rate must be > 0, got {self.learning_rate}')
    for name in ('steps', 'check_every', 'patience', 'online_batch', 'second_order_steps', 'second_order_max_params',
                 'lbfgs_steps'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'train.{name} must be >= 1, got {getattr(self, name)}')
    if int(self.batch_size) < 0 or float(self.tol) < 0 or float(self.plateau_rtol) < 0:
      raise ValueError('train.batch_size, train.tol and train.plateau_rtol must be >= 0')
    if not float(self.floor) > 0 or not float(self.stationary_tol) > 0:
      raise ValueError('train.floor and train.stationary_tol must be > 0')
    if float(self.noise_std) < 0:
      raise ValueError(f'label noise std must be >= 0, got {self.noise_std}')

  @property
  def jnp_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)


def check_dtype(train: TrainSpec) -> None:
  """Refuses float64 training unless 64-bit JAX is on (before anything is computed)."""
  if train.dtype == 'float64' and not jax.config.jax_enable_x64:
    raise ValueError('dtype float64 needs 64-bit JAX: set JAX_ENABLE_X64=1 or '
                     'jax.config.update("jax_enable_x64", True) before anything runs')


def check_ns(ns: Sequence[int]) -> None:
  """Refuses an empty or non-positive list of sample counts."""
  if len(ns) == 0 or any(int(n) < 1 for n in ns):
    raise ValueError(f'sample counts n must be positive integers, got {list(ns)}')


def optimizer(train: TrainSpec) -> optax.GradientTransformation:
  """The optax transformation `train` names, with its learning-rate schedule."""
  lr = train.learning_rate
  if train.schedule == 'cosine':
    lr = optax.cosine_decay_schedule(lr, train.steps, alpha=0.01)
  if train.optimizer == 'adam':
    return optax.adam(lr)
  return optax.sgd(lr, momentum=train.momentum or None)
