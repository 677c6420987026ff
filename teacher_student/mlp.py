"""The multilayer perceptron shared by MLP teachers and students (docs/design.md §3).

Using one module for both is what makes the realizability certificate exact: a teacher of
width w is a student of width w, and `embed` pads it into any wider student.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {
    'relu': jax.nn.relu,
    'tanh': jnp.tanh,
    'gelu': functools.partial(jax.nn.gelu, approximate=False),
    'erf': jax.scipy.special.erf,
}


def check_activation(activation: str) -> None:
  if activation not in ACTIVATIONS:
    raise ValueError(f'unknown activation {activation!r}; choose one of {", ".join(ACTIVATIONS)}')


class MLP(nn.Module):
  """x_nd (n, D) -> y_nk (n, out_dim): `depth` hidden layers of `width` units, linear readout.

  Weights are drawn N(0, gain² / fan_in), biases N(0, bias_scale²) (zero if bias_scale = 0).
  """
  width: int
  depth: int
  out_dim: int = 1
  activation: str = 'tanh'
  gain: float = 1.0
  bias_scale: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_nd):
    act = ACTIVATIONS[self.activation]
    kernel_init = nn.initializers.variance_scaling(self.gain**2, 'fan_in', 'normal')
    bias_init = (nn.initializers.normal(self.bias_scale) if self.bias_scale > 0
                 else nn.initializers.zeros)
    dense = functools.partial(nn.Dense, kernel_init=kernel_init, bias_init=bias_init,
                              dtype=self.dtype, param_dtype=self.dtype)
    h = x_nd
    for _ in range(self.depth):
      h = act(dense(self.width)(h))
    return dense(self.out_dim)(h)


def param_count(in_dim: int, width: int, depth: int, out_dim: int = 1) -> int:
  """P(m): weights and biases of an MLP with `depth` hidden layers of `width` units."""
  sizes = [in_dim] + [width] * depth + [out_dim]
  return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def embed(params, width: int):
  """Zero-pads every hidden layer of MLP `params` to `width` units (the R(m) = 0 certificate).

  A padded unit has zero incoming weights and bias and zero outgoing weights, so the wider
  network computes exactly the same function for any activation.
  """
  layers = params['params']
  last = len(layers) - 1
  padded = {}
  for i in range(len(layers)):
    kernel, bias = layers[f'Dense_{i}']['kernel'], layers[f'Dense_{i}']['bias']
    old = kernel.shape[0] if i == last else kernel.shape[1]
    if width < old:
      raise ValueError(f'cannot embed a width-{old} MLP into a narrower width {width}')
    grow_in = width - kernel.shape[0] if i > 0 else 0      # rows: units of the layer below
    grow_out = width - kernel.shape[1] if i < last else 0  # columns: units of this layer
    padded[f'Dense_{i}'] = {'kernel': jnp.pad(kernel, [(0, grow_in), (0, grow_out)]),
                            'bias': jnp.pad(bias, [(0, grow_out)])}
  return {'params': padded}


def apply_feature_major(params, x_dn: jax.Array, activation: str) -> jax.Array:
  """The same function as `MLP.apply(params, x)`, computed on transposed activations:
  x_dn (D, n) -> y_kn (out_dim, n).

  The training loss's form (when: batching.uses_feature_major): with the sample axis
  minor-most, XLA:CPU runs the layers as matmuls along the long sample axis. Differentiable in
  reverse mode (a custom VJP), which is what training needs.
  """
  act = ACTIVATIONS[activation]
  layers = params['params']
  h = x_dn
  for i in range(len(layers)):
    layer = layers[f'Dense_{i}']
    h = _dense_feature_major(layer['kernel'], h) + layer['bias'][:, None]
    if i < len(layers) - 1:
      h = act(h)
  return h


def preactivations(params, x_nd: jax.Array, activation: str) -> tuple[jax.Array, jax.Array]:
  """Every hidden unit's input at every point, and which units are real: (z_nu (n, depth·width),
  live_u (depth·width,)). A unit is live unless its incoming weights and bias are all 0 (a
  padding unit of `embed` or of a narrow student trained inside a wider one)."""
  act = ACTIVATIONS[activation]
  layers = params['params']
  h, zs, live = x_nd, [], []
  for i in range(len(layers) - 1):
    kernel, bias = layers[f'Dense_{i}']['kernel'], layers[f'Dense_{i}']['bias']
    z = h @ kernel + bias
    zs.append(z)
    live.append(jnp.any(kernel != 0, axis=0) | (bias != 0))
    h = act(z)
  return jnp.concatenate(zs, axis=1), jnp.concatenate(live)


# A feature-major layer's forward matmul takes the kernel transposed, its backward matmul as
# stored: each pass gets its own orientation (the barrier keeps XLA from folding the transpose
# into the matmul, which XLA:CPU would run on its slow generic emitter; the custom VJP keeps
# autodiff from sending the error down through the transposed copy).
@jax.custom_vjp
def _dense_feature_major(kernel_io, h_in):
  """kernelᵀ h: kernel (in, out), h (in, n) -> (out, n)."""
  return jnp.einsum('oi,in->on', jax.lax.optimization_barrier(kernel_io.T), h_in)


def _dense_feature_major_fwd(kernel_io, h_in):
  return _dense_feature_major(kernel_io, h_in), (kernel_io, h_in)


def _dense_feature_major_bwd(residuals, g_on):
  kernel_io, h_in = residuals
  return jnp.einsum('in,on->io', h_in, g_on), jnp.einsum('io,on->in', kernel_io, g_on)


_dense_feature_major.defvjp(_dense_feature_major_fwd, _dense_feature_major_bwd)
