"""What one training step sees: its points, their layout, and the loss and gradient over them.

Batching modes (`loss_and_grad_fn`):
  full batch   every step takes the student's n points of the pool (masked beyond n);
  blocked      full batch, the loss and gradient summed over fixed blocks of points, so that no
               shape depends on n and one compiled loop trains every n;
  mini-batch   `train.batch_size` points drawn with replacement from the n points each step;
  online       `train.online_batch` fresh samples from μ each step (n = ∞); with blocks, a
               traced flag makes one loop serve finite n's and the online column.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from teacher_student import inputs as inputs_lib
from teacher_student.train_spec import TrainSpec

# Students at most this wide train feature-major (sample axis minor-most, where XLA:CPU's
# matmuls run along it) even when their steps sample points; wider ones only at full batch.
FEATURE_MAJOR_MAX_WIDTH = 16
# Blocked full-batch gradients are summed over blocks of BLOCK_POINTS[0] points while that many
# remain, then of BLOCK_POINTS[1] (the last masked beyond n).
BLOCK_POINTS = (512, 128)

LossAndGrad = Callable[..., tuple]   # (params, step, unravel) -> (loss, gradient)


def uses_feature_major(student, train: TrainSpec, online) -> bool:
  """Whether a student trains on transposed arrays x (D, b), y (k, b) rather than (b, D), (b, k).
  online: True, False, or a traced flag (full-batch blocks or fresh samples by student)."""
  sampled = bool(train.batch_size) or (isinstance(online, bool) and online)
  return student.has_feature_major_form and (student.spec.width <= FEATURE_MAJOR_MAX_WIDTH or not sampled)


def loss_and_grad_fn(student, train: TrainSpec, x_nd, y_nk, n, batch_key, y_var, online=False,
                     blocks=None) -> LossAndGrad:
  """The function (params, step t, unravel) -> (normalized training loss, its gradient) of step t.

  Args:
    student: a `students.Student`.
    train: the TrainSpec (static).
    x_nd, y_nk: the training pool (n_max, D), (n_max, k); its first n points are the sample.
      Ignored when online.
    n: sample count (int scalar, may be traced; <= n_max).
    batch_key: the replicate's key for mini-batches and online samples.
    y_var: Var f*, so that the loss is the normalized training error (docs/design.md §2).
    online: draw `train.online_batch` fresh samples from μ every step (n = ∞). With blocks it
      may be traced: where true, n is taken to be online_batch and the step's blocks come from
      fresh samples, not the pool (x_nd must then hold at least online_batch points); where
      false, the step draws nothing.
    blocks: (big, small) or None: see the module docstring (x_nd must then hold a multiple of
      `small` points >= n). None: one batch of all of x_nd's points, masked beyond n.
  """
  dtype = train.jnp_dtype
  mixed = not isinstance(online, bool)   # a traced online flag
  feature_major = uses_feature_major(student, train, online)
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
  w_n = (jnp.arange(x_nd.shape[0]) < n).astype(dtype) / n   # full-batch loss weights

  def fresh(t):
    """The online batch of step t: x, y in the loss's layout (train.online_batch points)."""
    key_x, key_noise = jax.random.split(jax.random.fold_in(batch_key, t))
    x = inputs_lib.sample(student.teacher.inputs, key_x, train.online_batch, dtype)
    y = student.teacher(x).astype(dtype)
    if train.noise_std:
      y = y + train.noise_std * jax.random.normal(key_noise, y.shape, dtype)
    return layout(x), layout(y)

  def batch(t):
    """(x, y, w_b): inputs, labels (in the loss's layout) and loss weights summing to 1."""
    if online:
      size = train.online_batch
      return *fresh(t), jnp.full((size,), 1.0 / size, dtype)
    if train.batch_size:
      key = jax.random.fold_in(batch_key, t)
      idx = (jax.random.uniform(key, (train.batch_size,), dtype) * n).astype(jnp.int32)
      idx = jnp.minimum(idx, n - 1)
      return (jnp.take(x_data, idx, axis=sample_axis), jnp.take(y_data, idx, axis=sample_axis),
              jnp.full((train.batch_size,), 1.0 / train.batch_size, dtype))
    return x_data, y_data, w_n

  def loss_fn(p, unravel, x, y, w_b):
    r = forward(unravel(p), x) - y
    return jnp.sum(w_b * jnp.mean(r**2, axis=1 - sample_axis)) / y_var

  def block_sum(p, unravel, size, first, fresh_xy):
    """fori_loop body adding (loss, gradient) of block j, `size` points from point `first` of
    the pool, or of the fresh samples `fresh_xy` where the (traced) online flag is true."""
    def add(j, acc):
      start = first + j * size
      cut = lambda a, axis: jax.lax.dynamic_slice_in_dim(a, start, size, axis)
      x, y = cut(x_data, sample_axis), cut(y_data, sample_axis)
      if fresh_xy is not None:
        x, y = (jnp.where(online, cut(f, sample_axis), a) for f, a in zip(fresh_xy, (x, y)))
      part = jax.value_and_grad(loss_fn)(p, unravel, x, y, cut(w_n, 0))
      return jax.tree.map(jnp.add, acc, part)
    return add

  def loss_and_grad(p, t, unravel):
    if (not mixed and online) or train.batch_size or blocks is None:
      return jax.value_and_grad(loss_fn)(p, unravel, *batch(t))
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
    acc = jax.lax.fori_loop(0, n_big, block_sum(p, unravel, big, 0, fresh_xy), acc)
    return jax.lax.fori_loop(0, (n - n_big * big + small - 1) // small,
                             block_sum(p, unravel, small, n_big * big, fresh_xy), acc)

  return loss_and_grad
