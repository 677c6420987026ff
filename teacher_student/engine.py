"""The training engine: many students of one shape in one compiled program (DESIGN §3–§4).

`train_one` trains a single student: MSE loss, an optax optimizer, `lax.scan` over a chunk of
steps inside a `lax.while_loop` over chunks, and a convergence rule. `train_grid` vmaps it over
replicates (each with its own training pool) and, inside, over sample counts n: every student
of a replicate sees the first n points of the same pool, which is padded to the largest n and
masked in the loss. The replicate axis is sharded over the local devices. Under vmap the while-loop runs until every student has stopped; a stopped
student's parameters are frozen, so each student's result is the one it would get alone
(`train_sequential` is that one-at-a-time reference).

Stopping rule, checked every step: normalized training error <= tol (reason 'tolerance') or
non-finite loss ('diverged'); checked every `check_every` steps: no relative improvement of the
best loss by plateau_rtol for `patience` checks ('plateau'); step budget reached ('budget').
Status: tolerance/plateau -> 'ok', budget -> 'not_converged', diverged -> 'diverged'.

Errors are normalized by Var f* (DESIGN §2), measured on the test set.
"""

import dataclasses
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from teacher_student import data as data_lib
from teacher_student import inputs as inputs_lib

RUNNING, TOLERANCE, PLATEAU, BUDGET, DIVERGED = range(5)
STOP_REASONS = ('running', 'tolerance', 'plateau', 'budget', 'diverged')
STATUS = ('running', 'ok', 'ok', 'not_converged', 'diverged')
OPTIMIZERS = ('adam', 'sgd')
SCHEDULES = ('constant', 'cosine')
DTYPES = ('float32', 'float64')
EVAL_CHUNK = 4096


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


def train_one(student, train: TrainSpec, params, x_nd, y_nk, n, batch_key, y_var, online=False):
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
    online: draw `train.online_batch` fresh samples from μ every step (n = ∞).
  """
  opt = optimizer(train)
  dtype = train.jnp_dtype

  def batch(t):
    """(x, y, w): inputs, labels and loss weights summing to 1 for step t."""
    key = jax.random.fold_in(batch_key, t)
    if online:
      b = train.online_batch
      kx, kn = jax.random.split(key)
      x = inputs_lib.sample(student.teacher.inputs, kx, b, dtype)
      y = student.teacher(x).astype(dtype)
      if train.noise_std:
        y = y + train.noise_std * jax.random.normal(kn, y.shape, dtype)
      return x, y, jnp.full((b,), 1.0 / b, dtype)
    if train.batch_size:
      idx = (jax.random.uniform(key, (train.batch_size,), dtype) * n).astype(jnp.int32)
      idx = jnp.minimum(idx, n - 1)
      return x_nd[idx], y_nk[idx], jnp.full((train.batch_size,), 1.0 / train.batch_size, dtype)
    return x_nd, y_nk, (jnp.arange(x_nd.shape[0]) < n).astype(dtype) / n

  def loss_fn(p, x, y, w):
    r_nk = student.apply(p, x) - y
    return jnp.sum(w * jnp.mean(r_nk**2, axis=-1)) / y_var

  def step(state, _):
    p, opt_state, t, reason, best = state
    loss, g = jax.value_and_grad(loss_fn)(p, *batch(t))
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
  state = (params, opt.init(params), jnp.int32(0), jnp.int32(RUNNING), inf)
  state, _, _ = jax.lax.while_loop(lambda c: c[0][3] == RUNNING, chunk, (state, inf, jnp.int32(0)))
  params, _, steps, reason, _ = state
  return params, steps, reason


def squared_error_sums(student, params, x_nd, y_nk, w_n):
  """(Σ w e, Σ w e²) over points, e_i = mean_k (f(x_i) − y_ik)²; evaluated in chunks."""
  x_cnd, y_cnk = _chunks(x_nd), _chunks(y_nk)
  w_cn = _chunks(w_n[:, None])[..., 0]

  def sums(args):
    x, y, w = args
    e_n = jnp.mean((student.apply(params, x) - y) ** 2, axis=-1)
    return jnp.sum(w * e_n), jnp.sum(w * e_n**2)

  s1, s2 = jax.lax.map(sums, (x_cnd, y_cnk, w_cn))
  return jnp.sum(s1), jnp.sum(s2)


def normalized_error(s1, s2, count, y_var):
  """E = mean e / Var f* and its standard error over the `count` points (DESIGN §2)."""
  mean = s1 / count
  var_e = jnp.maximum(s2 / count - mean**2, 0.0)
  return mean / y_var, jnp.sqrt(var_e / count) / y_var


def output_variance(y_nk) -> jax.Array:
  """Var f*: the per-output variance over the sample, averaged over outputs."""
  return jnp.mean(jnp.var(y_nk, axis=0))


def _evaluate(student, params, x_pool, y_pool, n, x_test, y_test, y_var, online):
  """(train error, test error, test standard error) of one student."""
  if online:
    train_err = jnp.nan
  else:
    mask = (jnp.arange(x_pool.shape[0]) < n).astype(x_pool.dtype)
    train_err, _ = normalized_error(*squared_error_sums(student, params, x_pool, y_pool, mask), n, y_var)
  s1, s2 = squared_error_sums(student, params, x_test, y_test, jnp.ones(x_test.shape[0], x_test.dtype))
  test_err, test_se = normalized_error(s1, s2, x_test.shape[0], y_var)
  return train_err, test_err, test_se


def _student_program(student, train, online, predictions=False):
  """One student, from its pool and initial parameters to (train err, test err, test se, steps,
  stop[, test predictions (n_test, k)])."""
  def run(batch_key, n, x_pool, y_pool, params, x_test, y_test, y_var):
    params, steps, reason = train_one(student, train, params, x_pool, y_pool, n, batch_key, y_var, online)
    errs = _evaluate(student, params, x_pool, y_pool, n, x_test, y_test, y_var, online)
    extra = (jax.lax.map(lambda x: student.apply(params, x), _chunks(x_test)).reshape(-1, y_test.shape[1])
             [: x_test.shape[0]],) if predictions else ()
    return (*errs, steps, reason, *extra)
  return run


def _chunks(x_nd):
  """(C, c, D): x padded to a multiple of the evaluation chunk."""
  c = min(x_nd.shape[0], EVAL_CHUNK)
  return jnp.pad(x_nd, [(0, (-x_nd.shape[0]) % c), (0, 0)]).reshape(-1, c, x_nd.shape[1])


def _results(outputs, compile_s, run_s):
  train_err, test_err, test_se, steps, reason = (np.array(o) for o in outputs[:5])
  out = {
      'train_error': train_err, 'test_error': test_err, 'test_se': test_se,
      'steps': steps, 'stop': np.asarray(STOP_REASONS)[reason], 'status': np.asarray(STATUS)[reason],
      'compile_seconds': compile_s, 'run_seconds': run_s,
  }
  if len(outputs) > 5:
    out['test_predictions'] = np.asarray(outputs[5])
  return out


def _prepare(train, seeds, members, ns, x_test, y_test):
  check_dtype(train)
  if len(seeds) == 0:
    raise ValueError('need at least one seed')
  members = [0] * len(seeds) if members is None else list(members)
  if len(members) != len(seeds):
    raise ValueError(f'{len(members)} members for {len(seeds)} seeds')
  if ns is not None:
    check_ns(ns)
  dtype = train.jnp_dtype
  x_test, y_test = jnp.asarray(x_test, dtype), jnp.asarray(y_test, dtype)
  return members, x_test, y_test, output_variance(y_test)


def train_grid(student, train: TrainSpec, *, seeds: Sequence[int], ns: Sequence[int] | None,
               x_test, y_test, members: Sequence[int] | None = None, devices=None,
               predictions: bool = False) -> dict:
  """Trains the (replicate × n) grid of one student shape in one compiled program.

  Args:
    student: a `students.Student` (its teacher labels the data).
    train: the TrainSpec.
    seeds: replicate seeds, length S (each its own training pool).
    ns: sample counts, length N; None for the online column (n = ∞, N = 1).
    x_test, y_test: the held-out sample (n_test, D), (n_test, k) of clean labels.
    members: replicate members, length S (default 0): replicates of one seed share the pool
      and differ in initialization and mini-batches.
    devices: the devices to shard the replicate axis over (default: all local devices).
    predictions: also return every student's test-set outputs, 'test_predictions'
      (S, N, n_test, k) (what the ensemble estimator of U needs).

  Returns:
    dict of numpy arrays of shape (S, N): train_error, test_error, test_se (normalized,
    DESIGN §2), steps, stop (reason), status; and compile_seconds, run_seconds.
  """
  members, x_test, y_test, y_var = _prepare(train, seeds, members, ns, x_test, y_test)
  online = ns is None
  dtype = train.jnp_dtype
  n_max = 1 if online else int(max(ns))
  devices = list(devices or jax.local_devices())
  # Pad the replicate axis to a multiple of the device count (the padding is dropped below).
  pad = (-len(seeds)) % len(devices)
  seeds_s = jnp.asarray(list(seeds) + [seeds[-1]] * pad, jnp.int32)
  members_s = jnp.asarray(members + [members[-1]] * pad, jnp.int32)
  ns_n = jnp.asarray([1] if online else ns, jnp.int32)

  def per_replicate(seed, member):
    x_pool, y_pool = data_lib.train_pool(student.teacher, seed, n_max, train.noise_std, dtype)
    init_key, batch_key = data_lib.member_keys(seed, member)
    return batch_key, x_pool, y_pool, student.init(init_key, dtype)

  run = _student_program(student, train, online, predictions)
  # Inner vmap over n: a replicate's pool and initial parameters are shared by its n's
  # (unbatched operands), so e.g. the first layer of all of them is one matmul.
  over_n = jax.vmap(run, in_axes=(None, 0, None, None, None, None, None, None))
  over_sn = jax.vmap(over_n, in_axes=(0, None, 0, 0, 0, None, None, None))

  def program(seeds_s, members_s, ns_n, x_test, y_test, y_var):
    batch_key, x_pool, y_pool, params = jax.vmap(per_replicate)(seeds_s, members_s)
    return over_sn(batch_key, ns_n, x_pool, y_pool, params, x_test, y_test, y_var)

  if len(devices) > 1:
    # Each device trains its share of replicates with its own while-loop: no communication.
    mesh = jax.sharding.Mesh(np.asarray(devices), ('replicas',))
    rep, rows = jax.sharding.PartitionSpec(), jax.sharding.PartitionSpec('replicas')
    # check_vma=False: the loop's scalar carries start replicated and become per-device.
    program = jax.shard_map(program, mesh=mesh, in_specs=(rows, rows, rep, rep, rep, rep),
                            out_specs=rows, check_vma=False)
    seeds_s, members_s = (jax.device_put(a, jax.sharding.NamedSharding(mesh, rows))
                          for a in (seeds_s, members_s))
  args = (seeds_s, members_s, ns_n, x_test, y_test, y_var)
  t0 = time.perf_counter()
  compiled = jax.jit(program).lower(*args).compile()
  t1 = time.perf_counter()
  outputs = jax.block_until_ready(compiled(*args))
  t2 = time.perf_counter()
  return _results([np.asarray(o)[:len(seeds)] for o in outputs], t1 - t0, t2 - t1)


def train_sequential(student, train: TrainSpec, *, seeds: Sequence[int], ns: Sequence[int] | None,
                     x_test, y_test, members: Sequence[int] | None = None,
                     predictions: bool = False) -> dict:
  """The naive reference: each student trained alone by a jitted program, on exactly its n
  points (no padding, no mask). Same replicates, same data, same results as `train_grid` up to
  floating-point reduction order. Returns the same dict (compile time is inside run time)."""
  members, x_test, y_test, y_var = _prepare(train, seeds, members, ns, x_test, y_test)
  online = ns is None
  dtype = train.jnp_dtype
  run = jax.jit(_student_program(student, train, online, predictions))
  n_list = [1] if online else list(ns)
  outputs = []
  t0 = time.perf_counter()
  for seed, member in zip(seeds, members):
    init_key, batch_key = data_lib.member_keys(seed, member)
    params = student.init(init_key, dtype)
    # The labels of one pool, sliced: a pool drawn at size n has the same inputs (data.py) but
    # labels that may differ in the last bit, which training can amplify.
    x_pool, y_pool = data_lib.train_pool(student.teacher, seed, max(n_list), train.noise_std, dtype)
    for n in n_list:
      outputs.append(jax.block_until_ready(
          run(batch_key, jnp.int32(n), x_pool[:n], y_pool[:n], params, x_test, y_test, y_var)))
  t1 = time.perf_counter()
  stacked = [np.stack([o[i] for o in outputs]).reshape(len(seeds), len(n_list), *np.shape(outputs[0][i]))
             for i in range(len(outputs[0]))]
  return _results(stacked, 0.0, t1 - t0)
