"""The training engine: many students of one shape in one compiled program (DESIGN §3–§4).

`train_one` trains a single student: MSE loss, an optax optimizer on the (flattened) parameters,
`lax.scan` over a chunk of steps inside a `lax.while_loop` over chunks, and a convergence rule.
`train_grid` trains the students (replicate, n) of one shape: each replicate has its own training
pool, and its student at sample count n sees the pool's first n points, masked in the loss. The
n's train in loops of one compiled program (`compile_grid` compiles it and returns the function
that runs it): with several n's above 128, one loop trains every n, one after another (n traced:
the full-batch gradient is summed over fixed blocks of points, the last one masked beyond n, so
the loop compiles once; the online column is one more n of it, its blocks drawn fresh every
step); otherwise the n's up to 128 train vmapped together, a larger n in a loop of its own, and
the online column in one of its own. The replicate axis is sharded over the local devices, and
each device vmaps its students in batches whose steps fit a memory budget (`replicate_batch`; big
students train one at a time). Under vmap a while-loop runs until every student has stopped; a
stopped student's parameters are frozen, so each student's result is the one it would get alone
(`train_sequential` is that one-at-a-time reference).

Stopping rule, checked every step: normalized training error <= tol (reason 'tolerance') or
non-finite loss ('diverged'); checked every `check_every` steps: no relative improvement of the
best loss by plateau_rtol for `patience` checks ('plateau'); step budget reached ('budget').
Status: tolerance/plateau -> 'ok', budget -> 'not_converged', diverged -> 'diverged'.

Errors are normalized by Var f* (DESIGN §2), measured on the test set.
"""

import dataclasses
import functools
import time
from typing import Sequence

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax

from teacher_student import compilation
from teacher_student import data as data_lib
from teacher_student import inputs as inputs_lib

RUNNING, TOLERANCE, PLATEAU, BUDGET, DIVERGED = range(5)
STOP_REASONS = ('running', 'tolerance', 'plateau', 'budget', 'diverged')
STATUS = ('running', 'ok', 'ok', 'not_converged', 'diverged')
OPTIMIZERS = ('adam', 'sgd')
SCHEDULES = ('constant', 'cosine')
DTYPES = ('float32', 'float64')
EVAL_CHUNK = 4096
# MLP students train on transposed (feature-major) arrays, the sample axis minor-most, when
# their steps take the pool's points (full batch), or at any step when they are at most this
# wide. Measured on 2 cores (student-steps/s, engine programs, feature-major over the
# (samples, features) layout, best of 5-6 interleaved runs): full batch of 256-4096 points
# 0.99-1.08x at width 128 and 256, 1.2-1.3x at width 64, 1.1-1.2x at width 32, 1.9x at width
# 16; mini-batches of 128-256 points or online samples of 256 0.92-1.01x at width 64 and 256
# (the sampled points gathered along the minor axis; the kernels' transposed copies
# (`mlp.apply_feature_major`) paid for fewer points), 0.96-1.00x at width 32.
FEATURE_MAJOR_MAX_WIDTH = 16
# Full-batch gradients of a program with several n's above 128 are summed over blocks of this
# many points (`train_one`): 512 while that many remain, then 128. Every n then trains in one
# compiled loop (XLA:CPU compiles ~30 kernels for each loop). Measured on 2 cores, the quick
# study's five programs compiled one after the other: 9.7 s instead of 16.6 s with a loop per n
# above 128 (and one for the n's up to 128), training them 39.7-39.9 s instead of 36.5 s
# (blocks of 128 only: 8.7 s and 49.2 s; of 512 only: 8.6 s and 48.8 s).
BLOCK_POINTS = (512, 128)
# How many bytes of training steps one device runs vmapped together (`replicate_batch`). On CPU:
# students whose steps together touch more than this train one batch after another instead,
# each batch's arrays then nearer the cache and its matmuls big enough to fill the cores.
# Measured on 2 cores: students of width 128-512 on 1024-4096 points train 5-15% faster one at a
# time than vmapped in fours, width 64 on 1024 points as fast either way; the quick study's
# widths-1..16 program (15 replicates a device) runs in 2.7 s with 8 MiB (batches of 5), 2.9 s
# with 4 MiB, 3.7 s with 16 MiB and 3.4 s all vmapped. Accelerators vmap up to a quarter of
# device memory.
CPU_BATCH_BYTES = 8 << 20
ACCELERATOR_MEMORY_SHARE = 0.25


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

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(f'unknown optimizer {self.optimizer!r}; choose one of {", ".join(OPTIMIZERS)}')
    if self.schedule not in SCHEDULES:
      raise ValueError(f'unknown schedule {self.schedule!r}; choose one of {", ".join(SCHEDULES)}')
    if self.dtype not in DTYPES:
      raise ValueError(f'invalid dtype {self.dtype!r}; choose one of {", ".join(DTYPES)}')
    if not float(self.learning_rate) > 0:
      raise ValueError(f'learning rate must be > 0, got {self.learning_rate}')
    for name in ('steps', 'check_every', 'patience', 'online_batch'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'train.{name} must be >= 1, got {getattr(self, name)}')
    if int(self.batch_size) < 0 or float(self.tol) < 0 or float(self.plateau_rtol) < 0:
      raise ValueError('train.batch_size, train.tol and train.plateau_rtol must be >= 0')
    if float(self.noise_std) < 0:
      raise ValueError(f'label noise std must be >= 0, got {self.noise_std}')

  @property
  def jnp_dtype(self):
    return jnp.dtype(self.dtype)


def check_dtype(train: TrainSpec) -> None:
  if train.dtype == 'float64' and not jax.config.jax_enable_x64:
    raise ValueError('dtype float64 needs 64-bit JAX: set JAX_ENABLE_X64=1 or '
                     'jax.config.update("jax_enable_x64", True) before anything runs')


def check_ns(ns: Sequence[int]) -> None:
  if len(ns) == 0 or any(int(n) < 1 for n in ns):
    raise ValueError(f'sample counts n must be positive integers, got {list(ns)}')


def optimizer(train: TrainSpec) -> optax.GradientTransformation:
  lr = train.learning_rate
  if train.schedule == 'cosine':
    lr = optax.cosine_decay_schedule(lr, train.steps, alpha=0.01)
  if train.optimizer == 'adam':
    return optax.adam(lr)
  return optax.sgd(lr, momentum=train.momentum or None)


def _where(pred, new, old):
  return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def train_one(student, train: TrainSpec, params, x_nd, y_nk, n, batch_key, y_var, online=False, flat_params=True,
              blocks=None):
  """Trains one student; returns (params, steps run, stop reason code).

  Args:
    student: a `students.Student`.
    train: the TrainSpec (static).
    params: initial parameters.
    x_nd, y_nk: the training pool (n_max, D), (n_max, k); its first n points are the sample.
      Ignored when online.
    n: sample count (int scalar, may be traced; <= n_max).
    batch_key: the replicate's key for mini-batches and online samples.
    y_var: Var f*, so that the loss is the normalized training error.
    online: draw `train.online_batch` fresh samples from μ every step (n = ∞). With blocks it
      may be traced (one loop for finite n's and the online column): where true, n is taken
      to be online_batch and the step's blocks come from its fresh samples, not the pool
      (x_nd must then hold at least online_batch points); where false, the step draws nothing.
    flat_params: optimize one flat parameter vector (what small students want; the engine
      decides by `uses_flat_params`); False keeps the parameter tree (faster for big students).
    blocks: (big, small) or None. Full-batch training with blocks sums the loss and gradient
      over the first n points in blocks of `big` points while that many remain, then of `small`
      points (the last one masked beyond n): no array of the loop has a shape that depends on
      n, so one compiled loop trains every n (x_nd must hold a multiple of `small` points >= n).
      None: one batch of all of x_nd's points, masked beyond n.
  """
  opt = optimizer(train)
  dtype = train.jnp_dtype

  mixed = not isinstance(online, bool)   # a traced online flag: see Args
  # MLP students train on transposed arrays, x (D, b) and y (k, b), the sample axis minor-most
  # (`Student.apply_feature_major`), unless they are wide and their steps sample points
  # (FEATURE_MAJOR_MAX_WIDTH); others on x (b, D), y (b, k).
  sampled = bool(train.batch_size) or (not mixed and online)
  feature_major = student.spec.family == 'mlp' and (student.spec.width <= FEATURE_MAJOR_MAX_WIDTH or not sampled)
  sample_axis = 1 if feature_major else 0
  layout = (lambda a: a.T) if feature_major else (lambda a: a)
  forward = student.apply_feature_major if feature_major else student.apply
  x_data, y_data = layout(x_nd), layout(y_nk)
  if mixed:
    if blocks is None or train.batch_size:
      raise ValueError('a traced online flag needs full-batch training with blocks')
    if x_nd.shape[0] < train.online_batch:
      raise ValueError(f'the pool holds {x_nd.shape[0]} points, fewer than online_batch={train.online_batch}')
    n = jnp.where(online, train.online_batch, n)

  def fresh(t):
    """The online batch of step t: x, y in the loss's layout (train.online_batch points)."""
    kx, kn = jax.random.split(jax.random.fold_in(batch_key, t))
    x = inputs_lib.sample(student.teacher.inputs, kx, train.online_batch, dtype)
    y = student.teacher(x).astype(dtype)
    if train.noise_std:
      y = y + train.noise_std * jax.random.normal(kn, y.shape, dtype)
    return layout(x), layout(y)

  def batch(t):
    """(x, y, w_b): inputs, labels (in the loss's layout) and loss weights summing to 1 for step t."""
    if online:
      b = train.online_batch
      return *fresh(t), jnp.full((b,), 1.0 / b, dtype)
    if train.batch_size:
      key = jax.random.fold_in(batch_key, t)
      idx = (jax.random.uniform(key, (train.batch_size,), dtype) * n).astype(jnp.int32)
      idx = jnp.minimum(idx, n - 1)
      return (jnp.take(x_data, idx, axis=sample_axis), jnp.take(y_data, idx, axis=sample_axis),
              jnp.full((train.batch_size,), 1.0 / train.batch_size, dtype))
    return x_data, y_data, w_n

  w_n = (jnp.arange(x_nd.shape[0]) < n).astype(dtype) / n   # full-batch loss weights

  # Small students' parameters travel as one flat vector: the optimizer update and the
  # freeze-select are one fused operation each instead of one per layer (less to compile, fewer
  # kernels a step: the quick study runs 15% faster). Big students keep the tree: slicing their
  # weight matrices out of a flat vector costs them 3-13% a step (width 256 on 4096 points).
  flat0, unravel = jax.flatten_util.ravel_pytree(params) if flat_params else (params, lambda p: p)

  def loss_fn(p, x, y, w_b):
    r = forward(unravel(p), x) - y
    return jnp.sum(w_b * jnp.mean(r**2, axis=1 - sample_axis)) / y_var

  def block_sum(p, size, first, fresh_xy):
    """fori_loop body adding (loss, gradient) of block j, `size` points from point `first` of
    the pool, or of the fresh samples `fresh_xy` where the (traced) online flag is true."""
    def add(j, acc):
      start = first + j * size
      cut = lambda a, axis: jax.lax.dynamic_slice_in_dim(a, start, size, axis)
      x, y = cut(x_data, sample_axis), cut(y_data, sample_axis)
      if fresh_xy is not None:
        x, y = (jnp.where(online, cut(f, sample_axis), a) for f, a in zip(fresh_xy, (x, y)))
      part = jax.value_and_grad(loss_fn)(p, x, y, cut(w_n, 0))
      return jax.tree.map(jnp.add, acc, part)
    return add

  def loss_and_grad(p, t):
    if (not mixed and online) or train.batch_size or blocks is None:
      return jax.value_and_grad(loss_fn)(p, *batch(t))
    big, small = blocks
    fresh_xy = None
    if mixed:   # padded with zeros to whole blocks (masked: beyond n); a finite n draws nothing
      pad = [(0, 0), (0, 0)]
      pad[sample_axis] = (0, max(big, -(-train.online_batch // small) * small) - train.online_batch)
      draw = lambda: tuple(jnp.pad(a, pad) for a in fresh(t))
      fresh_xy = jax.lax.cond(online, draw, lambda: tuple(jnp.zeros(a.shape, a.dtype) for a in jax.eval_shape(draw)))
    # The trip counts depend on n: traced, they leave every shape in the loop fixed.
    n_big = n // big
    acc = (jnp.zeros((), dtype), jax.tree.map(jnp.zeros_like, p))
    acc = jax.lax.fori_loop(0, n_big, block_sum(p, big, 0, fresh_xy), acc)
    return jax.lax.fori_loop(0, (n - n_big * big + small - 1) // small, block_sum(p, small, n_big * big, fresh_xy), acc)

  def step(state, _):
    p, opt_state, t, reason, best = state
    loss, g = loss_and_grad(p, t)
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
  return unravel(flat), steps, reason


def outputs(student, params, x_nd) -> jax.Array:
  """Student outputs (n, k) on x (n, D), computed in chunks of at most EVAL_CHUNK points."""
  # Equal chunks, as few as fit: 4096 + 1024 points in two of 2560, not two of 4096 (padding
  # the second with 3072 points the student would be evaluated on for nothing).
  chunks = -(-x_nd.shape[0] // EVAL_CHUNK)
  c = -(-x_nd.shape[0] // chunks)
  x_cnd = jnp.pad(x_nd, [(0, (-x_nd.shape[0]) % c), (0, 0)]).reshape(-1, c, x_nd.shape[1])
  f_cnk = jax.lax.map(lambda x: student.apply(params, x), x_cnd)
  return f_cnk.reshape(-1, f_cnk.shape[-1])[: x_nd.shape[0]]


def squared_error_sums(student, params, x_nd, y_nk, w_n):
  """(Σ w e, Σ w e²) over points, e_i = mean_k (f(x_i) − y_ik)²."""
  e_n = jnp.mean((outputs(student, params, x_nd) - y_nk) ** 2, axis=-1)
  return jnp.sum(w_n * e_n), jnp.sum(w_n * e_n**2)


def normalized_error(s1, s2, count, y_var):
  """E = mean e / Var f* and its standard error over the `count` points (DESIGN §2)."""
  mean = s1 / count
  var_e = jnp.maximum(s2 / count - mean**2, 0.0)
  return mean / y_var, jnp.sqrt(var_e / count) / y_var


def output_variance(y_nk) -> jax.Array:
  """Var f*: the per-output variance over the sample, averaged over outputs."""
  return jnp.mean(jnp.var(y_nk, axis=0))


def evaluate(student, params, x_pool, y_pool, n, x_test, y_test, y_var, predictions=False):
  """(train error, test error, test standard error[, test predictions]) of one student.

  The training error is over the first n points of the pool (NaN for n = 0, the online column).
  """
  # One pass of the student over pool and test points together: fewer kernels to compile (the
  # quick study's five programs: 8.3 s instead of 9.7 s, measured on 2 cores).
  n_pool, n_test = x_pool.shape[0], x_test.shape[0]
  f_nk = outputs(student, params, jnp.concatenate([x_pool, x_test]))
  e_n = jnp.mean((f_nk - jnp.concatenate([y_pool, y_test])) ** 2, axis=-1)
  e_pool, e_test = e_n[:n_pool], e_n[n_pool:]
  w_pool = (jnp.arange(n_pool) < n).astype(e_n.dtype)
  train_err, _ = normalized_error(jnp.sum(w_pool * e_pool), jnp.sum(w_pool * e_pool**2), n, y_var)
  test_err, test_se = normalized_error(jnp.sum(e_test), jnp.sum(e_test**2), n_test, y_var)
  if not predictions:
    return train_err, test_err, test_se
  return train_err, test_err, test_se, f_nk[n_pool:]


def _results(trained, evaluated, compile_s, run_s):
  steps, reason = (np.array(o) for o in trained)
  train_err, test_err, test_se = (np.array(o) for o in evaluated[:3])
  out = {
      'train_error': train_err, 'test_error': test_err, 'test_se': test_se,
      'steps': steps, 'stop': np.asarray(STOP_REASONS)[reason], 'status': np.asarray(STATUS)[reason],
      'compile_seconds': compile_s, 'run_seconds': run_s,
  }
  if len(evaluated) > 3:
    out['test_predictions'] = np.asarray(evaluated[3])
  return out


def _prepare(train, seeds, members, ns, x_test, y_test):
  check_dtype(train)
  if len(seeds) == 0:
    raise ValueError('need at least one seed')
  members = [0] * len(seeds) if members is None else list(members)
  if len(members) != len(seeds):
    raise ValueError(f'{len(members)} members for {len(seeds)} seeds')
  ns = [None] if ns is None else list(ns)
  finite = [n for n in ns if n is not None]
  if len(ns) == 0 or finite:
    check_ns(finite)
  dtype = train.jnp_dtype
  x_test, y_test = jnp.asarray(x_test, dtype), jnp.asarray(y_test, dtype)
  return members, ns, x_test, y_test, output_variance(y_test)


def step_bytes(student, train: TrainSpec, n: int) -> int:
  """Bytes one training step of one student on n points touches: its batch of points (inputs,
  labels, outputs), the pre-activation, activation and back-propagated error of every hidden
  unit on each point, and the parameters, gradients and two optimizer moments."""
  batch = train.batch_size or n
  hidden = (student.spec.width * student.spec.depth if student.spec.family == 'mlp'
            else student.teacher.num_basis)
  k = student.teacher.spec.out_dim
  return train.jnp_dtype.itemsize * (batch * (student.teacher.inputs.dim + 2 * k + 3 * hidden)
                                     + 4 * student.num_params)


def replicate_batch(student, train: TrainSpec, sizes: Sequence[int], device) -> int:
  """How many replicates a device trains vmapped together (the rest wait for the next batch)
  when each replicate trains one student per entry of `sizes` (points per step), so that their
  steps touch at most CPU_BATCH_BYTES on CPU, or ACCELERATOR_MEMORY_SHARE of an accelerator's
  memory (no limit if the device does not say). At least 1."""
  per_replicate = sum(step_bytes(student, train, size) for size in sizes)
  if device.platform == 'cpu':
    budget = CPU_BATCH_BYTES
  else:
    stats = device.memory_stats() or {}
    budget = ACCELERATOR_MEMORY_SHARE * stats.get('bytes_limit', np.inf)
  return int(max(1, min(budget // per_replicate, np.iinfo(np.int32).max)))


def uses_flat_params(student, train: TrainSpec, points: int, device) -> bool:
  """Whether a student training on `points` points a step optimizes a flat parameter vector:
  yes if at least two such students fit one batch (`replicate_batch`), else it keeps the tree."""
  return replicate_batch(student, train, [points], device) > 1


def _widths(student, widths, count):
  """Per-replicate widths (default: the student's own), checked against the program's width."""
  if widths is None:
    return [student.spec.width] * count
  widths = list(widths)
  if len(widths) != count:
    raise ValueError(f'{len(widths)} widths for {count} seeds')
  if any(w != student.spec.width for w in widths) and not (
      student.spec.family == 'mlp' and student.spec.init == 'standard'):
    raise ValueError('narrower widths inside one program need MLP students with the standard init')
  if any(not 1 <= w <= student.spec.width for w in widths):
    raise ValueError(f'widths {widths} must be in 1..{student.spec.width} (the program width)')
  return widths


def train_grid(student, train: TrainSpec, **grid) -> dict:
  """Trains the (replicate × n) grid of one student shape in one compiled program: compiles
  it (`compile_grid`, whose keyword arguments `grid` takes) and runs it."""
  return compile_grid(student, train, **grid)()


def compile_grid(student, train: TrainSpec, *, seeds: Sequence[int], ns: Sequence[int | None] | None,
                 x_test, y_test, members: Sequence[int] | None = None, widths: Sequence[int] | None = None,
                 devices=None, predictions: bool = False):
  """Compiles the program that trains the (replicate × n) grid of one student shape; returns
  a function of no arguments that runs it (`train_grid` calls it at once; a sweep can compile
  the next grid while one runs).

  Args:
    student: a `students.Student` (its teacher labels the data).
    train: the TrainSpec.
    seeds: replicate seeds, length S (each its own training pool).
    ns: sample counts, length N; an entry None is the online column (n = ∞, fresh samples every
      step); ns=None means [None].
    x_test, y_test: the held-out sample (n_test, D), (n_test, k) of clean labels.
    members: replicate members, length S (default 0): replicates of one seed share the pool
      and differ in initialization and mini-batches.
    widths: replicate widths, length S (default: the student's width): a replicate of width
      w < student.spec.width is a width-w student padded with inert units (`Student.init`), so
      several small widths train in one program.
    devices: the devices to shard the replicate axis over (default: all local devices).
    predictions: also return every student's test-set outputs, 'test_predictions'
      (S, N, n_test, k) (what the ensemble estimator of U needs).

  Returns:
    run(): returns a dict of numpy arrays of shape (S, N): train_error (NaN online),
    test_error, test_se (normalized, DESIGN §2), steps, stop (reason), status; compile_seconds
    (the training and evaluation programs, and those drawing pools, keys and initial parameters),
    run_seconds and memory_bytes (of the larger of the training and the evaluation program).
  """
  members, ns, x_test, y_test, y_var = _prepare(train, seeds, members, ns, x_test, y_test)
  widths = _widths(student, widths, len(seeds))
  finite = [i for i, n in enumerate(ns) if n is not None]
  online = [i for i, n in enumerate(ns) if n is None]
  n_max = max([ns[i] for i in finite], default=1)
  # The training loops, (indices into ns, points a step touches, mode), run one after another.
  # 'together' trains its (replicate, n) students on one vmapped axis, on the pools cut to the
  # loop's largest n (masked beyond each n); 'each' trains its n's one after another, n traced,
  # the gradients summed over blocks of points (`train_one`), so that one compiled loop serves
  # every n; 'online' is the online column. With at least two full-batch n's above a small
  # block, every n, the online column included, trains in one 'each' loop (its online students
  # take their blocks from fresh samples: `train_one`); otherwise (few n's: what it would save in
  # compilation, the narrower vmaps cost in training) the n's up to a small block, where a step
  # costs little more than its kernel launches, train together, a larger n in its own loop, and
  # the online column in its own.
  large = sorted({ns[i] for i in finite if ns[i] > BLOCK_POINTS[1]})
  each = len(large) >= 2 and not train.batch_size
  n_pool = max(n_max, train.online_batch if each and online else 0)
  n_pool += (-n_pool) % BLOCK_POINTS[1]   # 'each': a whole number of small blocks
  blocks = (min(BLOCK_POINTS[0], n_pool), BLOCK_POINTS[1])
  if each:
    loops = [(finite + online, blocks[0], 'each')]
  else:   # mini-batch steps touch batch_size points whatever n: one loop
    groups = ([finite] if train.batch_size else
              [[i for i in finite if ns[i] <= BLOCK_POINTS[1]]] + [[i for i in finite if ns[i] == n] for n in large])
    loops = [(g, max(ns[i] for i in g), 'together') for g in groups if g]
    if online:
      loops.append((online, train.online_batch, 'online'))
  inverse = np.argsort(np.concatenate([idx for idx, _, _ in loops]))
  devices = list(devices or jax.local_devices())
  # Pad the replicate axis to a multiple of the device count (the padding is dropped below).
  # Per-replicate arguments stay numpy until placed: sharding a host array needs no program.
  pad = (-len(seeds)) % len(devices)
  seeds_s = np.asarray(list(seeds) + [seeds[-1]] * pad, np.int32)
  members_s = np.asarray(members + [members[-1]] * pad, np.int32)
  widths_s = np.asarray(widths + [widths[-1]] * pad, np.int32)
  ns_n = np.asarray([0 if n is None else n for n in ns], np.int32)   # 0: no training points

  # The pools depend on the teacher and seeds only: a program of their own (random sampling is
  # costly to compile) that draws each distinct seed once — a shape that does not change with
  # widths, members or device padding, so it compiles once per teacher; inside the training
  # program, each replicate then takes its seed's pool (pool_s). Nothing here waits for a
  # device (`_dispatch`): a sweep compiles the next grid while one runs.
  unique_u, pool_s = np.unique(seeds_s, return_inverse=True)
  pool_s = pool_s.astype(np.int32)
  (x_pool_u, y_pool_u), pools_compile = _dispatch(pools, student.teacher, jnp.asarray(unique_u, jnp.int32), n_max,
                                                   train.noise_std, train.dtype)
  # The replicates' keys, the same way: a program shared by every grid of as many rows.
  (init_kd_s, batch_kd_s), keys_compile = _dispatch(data_lib.member_key_data, seeds_s, members_s)
  # Students vmapped together per device, for each loop (`lax.map`'s batch_size): b replicates
  # (at one n), b a divisor of the device's count (a remainder would compile the training loop
  # twice); 0 = all of them (one vmap). A batch of one student is None, a plain loop, not a vmap
  # of one: in the (samples, features) layout, XLA:CPU then orients the first layer's weight
  # gradient as the one-student program does (that matmul 5x faster for width 256 on 4096
  # points, the whole training 5-9% faster, on 2 cores); feature-major, as fast either way.
  per_device = len(seeds_s) // len(devices)
  batch, flat = [], []
  for idx, points, mode in loops:
    k = len(idx) if mode == 'together' else 1   # students of a replicate vmapped together
    most = replicate_batch(student, train, [points] * k, devices[0])
    b = max(d for d in range(1, per_device + 1) if per_device % d == 0 and d <= most)
    batch.append(None if b * k == 1 else 0 if b == per_device else b * k)
    flat.append(uses_flat_params(student, train, points, devices[0]))

  def program(teacher, params_s, batch_kd_s, pool_s, x_pool_u, y_pool_u, ns_n, y_var):
    # The teacher is an argument, not constants of the program: lowering then need not wait
    # for its arrays (nor the program carry them).
    st = student.replace(teacher=teacher)
    x_pool, y_pool = x_pool_u[pool_s], y_pool_u[pool_s]   # (S, n_max, D), (S, n_max, k)
    if any(mode == 'each' for _, _, mode in loops):
      pad_n = [(0, 0), (0, n_pool - n_max), (0, 0)]   # zeros, masked: never a training point
      x_blocks, y_blocks = jnp.pad(x_pool, pad_n), jnp.pad(y_pool, pad_n)

    batch_key = jax.random.wrap_key_data(batch_kd_s)
    parts = []
    replicates = batch_key.shape[0]   # this device's
    for (idx, size, mode), b, flat_b in zip(loops, batch, flat):
      # Students vmapped in batches of b (`replicate_batch`), one batch after another.
      if mode == 'each':
        def at_n(n_flag, flat_b=flat_b, b=b):   # n traced: the loop compiles once for all n's
          n, flag = n_flag
          is_online = flag if online else False   # traced only with an online column to draw
          def one(replicate):   # the replicate's parameters, pool and key
            p, x_nd, y_nk, key = replicate
            return train_one(st, train, p, x_nd, y_nk, n, key, y_var, is_online, flat_params=flat_b, blocks=blocks)
          return jax.lax.map(one, (params_s, x_blocks, y_blocks, batch_key), batch_size=b)
        flags = np.asarray([ns[i] is None for i in idx])
        parts.append(jax.lax.map(at_n, (ns_n[np.asarray(idx)], flags)))   # (n, replicate, ...)
        continue
      # (replicate, n) students, replicate-major, on one axis (not a vmap over n inside a vmap
      # over replicates: on 2 cores as fast or up to 40% faster, and faster to trace), each
      # gathering its replicate's key, pool and initial parameters; the pools cut to the loop's
      # largest n (a pool's first n points do not depend on its size, data.py).
      k = len(idx)
      r_all = np.repeat(np.arange(replicates), k)
      n_all = jnp.tile(ns_n[np.asarray(idx)], replicates)
      size = 1 if mode == 'online' else size   # online: the pool is not used
      def one(r_n, is_online=mode == 'online', flat_b=flat_b, size=size):
        r, n = r_n
        p = jax.tree.map(lambda a: a[r], params_s)
        return train_one(st, train, p, x_pool[r, :size], y_pool[r, :size], n, batch_key[r], y_var, is_online,
                         flat_params=flat_b)
      out = jax.lax.map(one, (r_all, n_all), batch_size=b)
      parts.append(jax.tree.map(lambda o: jnp.swapaxes(o.reshape(replicates, k, *o.shape[1:]), 0, 1), out))
    # Every result (n, replicate, ...), n in the order of ns: the 'each' loop's own order (its
    # program compiles no transposes; `run` turns the small results around on the host).
    trained = parts[0] if len(parts) == 1 else jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
    if np.any(inverse != np.arange(len(inverse))):
      trained = jax.tree.map(lambda a: a[inverse], trained)
    return trained   # (parameters, steps, stop reason)

  def evaluation(teacher, params_ns, pool_s, x_pool_u, y_pool_u, ns_n, x_test, y_test, y_var):
    # A program of its own, so that it compiles with the options that suit it (compilation.py).
    st = student.replace(teacher=teacher)
    ev = functools.partial(evaluate, st, predictions=predictions)
    ev = jax.vmap(ev, in_axes=(0, 0, 0, None, None, None, None))      # over replicates
    ev = jax.vmap(ev, in_axes=(0, None, None, 0, None, None, None))   # over n
    return ev(params_ns, x_pool_u[pool_s], y_pool_u[pool_s], ns_n, x_test, y_test, y_var)

  if len(devices) > 1:
    # Each device trains its share of replicates with its own while-loops: no communication.
    mesh = jax.sharding.Mesh(np.asarray(devices), ('replicas',))
    rep, rows = jax.sharding.PartitionSpec(), jax.sharding.PartitionSpec('replicas')
    by_n = jax.sharding.PartitionSpec(None, 'replicas')   # (n, replicate, ...)
    # check_vma=False: the loops' scalar carries start replicated and become per-device.
    program = jax.shard_map(program, mesh=mesh, in_specs=(rep,) + (rows,) * 3 + (rep,) * 4, out_specs=by_n,
                            check_vma=False)
    evaluation = jax.shard_map(evaluation, mesh=mesh, in_specs=(rep, by_n, rows) + (rep,) * 6, out_specs=by_n)
    init_kd_s, batch_kd_s, widths_s, pool_s = (
        jax.device_put(a, jax.sharding.NamedSharding(mesh, rows)) for a in (init_kd_s, batch_kd_s, widths_s, pool_s))
  # The initial parameters, the same way: drawing them is sampling too (one program per grid).
  narrow = any(w != student.spec.width for w in widths)
  params_s, init_compile = _dispatch(initial_params, student, init_kd_s, widths_s, train.dtype, narrow)
  args = (student.teacher, params_s, batch_kd_s, pool_s, x_pool_u, y_pool_u, ns_n, y_var)
  platform = devices[0].platform
  t0 = time.perf_counter()
  compiled = jax.jit(program).lower(*args).compile(compilation.options('training', platform))
  eval_args = (student.teacher, compiled.out_info[0], pool_s, x_pool_u, y_pool_u, ns_n, x_test, y_test, y_var)
  compiled_eval = jax.jit(evaluation).lower(*eval_args).compile(compilation.options('evaluation', platform))
  compile_s = time.perf_counter() - t0 + pools_compile + keys_compile + init_compile

  def run() -> dict:
    t1 = time.perf_counter()
    params_ns, *trained = compiled(*args)
    trained, evaluated = jax.block_until_ready((trained, compiled_eval(student.teacher, params_ns, *eval_args[2:])))
    run_s = time.perf_counter() - t1
    keep = lambda tree: [np.swapaxes(np.asarray(o), 0, 1)[:len(seeds)] for o in tree]   # (S, N, ...)
    out = _results(keep(trained), keep(evaluated), compile_s, run_s)
    known = [m for m in (_memory(compiled), _memory(compiled_eval)) if m is not None]
    out['memory_bytes'] = max(known, default=None)   # the programs run one after the other
    return out

  return run


def _dispatch(sampling_fn, *args):
  """(sampling_fn(*args), the seconds spent compiling it: 0 if its program was cached). The call
  is only dispatched, so its time is its compilation."""
  t, cached = time.perf_counter(), sampling_fn.cache_size()
  out = sampling_fn(*args)
  return out, (time.perf_counter() - t if sampling_fn.cache_size() > cached else 0.0)


@compilation.sampling_jit(static_argnums=(2, 3, 4))
def pools(teacher, seeds_s, n: int, noise_std: float, dtype: str):
  """The training pools of replicate seeds (S,): x (S, n, D), y (S, n, k)."""
  return jax.vmap(lambda s: data_lib.train_pool(teacher, s, n, noise_std, jnp.dtype(dtype)))(seeds_s)


@compilation.sampling_jit(static_argnums=(3, 4))
def initial_params(student, init_kd_s, widths_s, dtype: str, narrow: bool):
  """The initial parameters (`Student.init`) of replicates of widths widths_s (S,) from their
  init keys' data init_kd_s (S, ...): a tree of (S, ...) arrays. narrow: the replicates may be
  narrower than the student (padded with inert units); else widths_s is ignored."""
  init = lambda key_data, width: student.init(jax.random.wrap_key_data(key_data), jnp.dtype(dtype),
                                              width if narrow else None)
  return jax.vmap(init)(init_kd_s, widths_s)


def _memory(compiled) -> int | None:
  """Bytes the compiled program needs (arguments, outputs and temporaries), if XLA says."""
  try:
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
  except (AttributeError, NotImplementedError, TypeError):
    return None


def train_sequential(student, train: TrainSpec, *, seeds: Sequence[int], ns: Sequence[int | None] | None,
                     x_test, y_test, members: Sequence[int] | None = None, widths: Sequence[int] | None = None,
                     predictions: bool = False) -> dict:
  """The one-at-a-time reference: each student trained alone by its own compiled program (the
  whole training in one `lax.while_loop`, as `train_one`), at exactly its width and on exactly
  its n points (no padding, no mask). Same replicates, same data, same results as `train_grid`
  up to floating-point reduction order. Returns the same dict; a program is compiled ahead of
  time the first time its (width, n) is met, and that compilation is counted in
  compile_seconds, not in run_seconds (training and evaluation: the initial parameters and the
  pools are drawn before)."""
  members, ns, x_test, y_test, y_var = _prepare(train, seeds, members, ns, x_test, y_test)
  widths = _widths(student, widths, len(seeds))
  dtype = train.jnp_dtype
  n_max = max([n for n in ns if n is not None], default=1)
  compiled = {}   # (width, k, online) -> (compiled trainer, compiled evaluation)
  device = jax.devices()[0]
  compile_s = 0.0
  trained, evaluated = [], []
  replicates = []   # (student, batch key, initial parameters, pool), drawn before the clock starts
  for seed, member, width in zip(seeds, members, widths):
    alone = student.replace(spec=dataclasses.replace(student.spec, width=width))
    init_key, batch_key = data_lib.member_keys(seed, member)
    # The labels of one pool, sliced: a pool drawn at size n has the same inputs (data.py) but
    # labels that may differ in the last bit, which training can amplify.
    replicates.append((alone, batch_key, alone.init(init_key, dtype),
                       data_lib.train_pool(student.teacher, seed, n_max, train.noise_std, dtype)))
  jax.block_until_ready([(params, pool) for _, _, params, pool in replicates])
  t0 = time.perf_counter()
  for alone, batch_key, params, (x_pool, y_pool) in replicates:
    for n in ns:
      k = 1 if n is None else n
      program = (alone.spec.width, k, n is None)
      train_args = (params, x_pool[:k], y_pool[:k], jnp.int32(k), batch_key, y_var)
      eval_args = (params, x_pool[:k], y_pool[:k], jnp.int32(0 if n is None else n), x_test, y_test, y_var)
      if program not in compiled:
        tc = time.perf_counter()
        flat = uses_flat_params(alone, train, train.online_batch if n is None else k, device)   # as train_grid
        trainer = jax.jit(functools.partial(train_one, alone, train, online=n is None, flat_params=flat))
        ev = jax.jit(functools.partial(evaluate, alone, predictions=predictions))
        # The same compiler options as train_grid's programs.
        compiled[program] = (trainer.lower(*train_args).compile(compilation.options('training', device.platform)),
                             ev.lower(*eval_args).compile(compilation.options('evaluation', device.platform)))
        compile_s += time.perf_counter() - tc
      trainer, ev = compiled[program]
      p, steps, reason = trainer(*train_args)
      trained.append((steps, reason))
      evaluated.append(jax.block_until_ready(ev(p, *eval_args[1:])))
  run_s = time.perf_counter() - t0 - compile_s
  shape = (len(seeds), len(ns))
  stack = lambda rows: [np.stack([r[i] for r in rows]).reshape(*shape, *np.shape(rows[0][i]))
                        for i in range(len(rows[0]))]
  return _results(stack(trained), stack(evaluated), compile_s, run_s)
