"""Random teacher networks f*: the noiseless labels of the study (docs/design.md §3).

A teacher is fully determined by (family, hyper-parameters, seed) and the input distribution μ.

Families:
  mlp              the `mlp.MLP` module with weights N(0, gain²/fan_in) and biases N(0, bias_scale²);
                   its readout is then rescaled and shifted so that f* has zero mean and unit
                   variance under μ (each output). The result is still an MLP of the same shape,
                   which is what the realizability certificate needs.
  random_features  f*(x) = φ(x)ᵀθ, φ_j(x) = act(w_jᵀx + b_j) with F = `width` fixed random
                   features; θ ~ N(0, σ0² I), the isotropic Gaussian prior Π of docs/design.md §2.
  bandlimited      f*(x) = φ(x)ᵀθ with φ the B = (2K+1)^D − 1 non-constant trigonometric
                   functions cos(π k·x), sin(π k·x), k ∈ Z^D, 0 < ‖k‖_∞ ≤ K (K = `cutoff`);
                   orthogonal under the uniform cube [-1, 1]^D. θ ~ N(0, σ0² I).

For the two linear-in-parameter families the scale is put on the prior, not on the draw:
σ0² = 1 / tr Cov_μ φ, so that E_θ Var_μ f_θ = 1 and the Gaussian prior stays exactly Gaussian
(the closed-form uncertainty of docs/design.md §2 relies on it). A single draw then has unit variance
up to a relative spread of about sqrt(2/B).
"""

import dataclasses
import itertools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from teacher_student import compilation
from teacher_student import inputs as inputs_lib
from teacher_student import mlp as mlp_lib

FAMILIES = ('mlp', 'random_features', 'bandlimited')
LINEAR_FAMILIES = ('random_features', 'bandlimited')
MAX_BASIS = 1 << 16


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
  """Hyper-parameters of a teacher (which ones apply depends on `family`).

  Attributes:
    family: one of FAMILIES.
    depth: hidden layers (mlp).
    width: hidden units (mlp) or number of features F (random_features).
    activation: relu, tanh, gelu or erf (mlp, random_features).
    gain: weight scale: weights ~ N(0, gain²/fan_in) (mlp, random_features).
    bias_scale: biases ~ N(0, bias_scale²) (mlp, random_features).
    out_dim: number of outputs k.
    cutoff: frequency cutoff K (bandlimited).
    seed: the teacher's seed.
    n_normalize: sample size used to measure the output scale under μ.
  """
  family: str = 'mlp'
  depth: int = 1
  width: int = 8
  activation: str = 'tanh'
  gain: float = 1.0
  bias_scale: float = 0.0
  out_dim: int = 1
  cutoff: int = 2
  seed: int = 0
  n_normalize: int = 1 << 16

  def __post_init__(self):
    if self.family not in FAMILIES:
      raise ValueError(f'unknown teacher family {self.family!r}; choose one of {", ".join(FAMILIES)}')
    mlp_lib.check_activation(self.activation)
    for name in ('depth', 'width', 'out_dim', 'n_normalize'):
      if int(getattr(self, name)) < 1:
        raise ValueError(f'teacher {name} must be >= 1, got {getattr(self, name)}')
    if self.family == 'bandlimited' and int(self.cutoff) < 1:
      raise ValueError(f'band-limited teacher cutoff K must be >= 1, got {self.cutoff}')
    if float(self.gain) <= 0 or float(self.bias_scale) < 0:
      raise ValueError(f'teacher gain must be > 0 and bias_scale >= 0, got {self.gain}, {self.bias_scale}')


def num_basis(spec: TeacherSpec, in_dim: int) -> int:
  """B, the number of basis functions of a linear-in-parameter teacher (0 for mlp)."""
  if spec.family == 'random_features':
    return int(spec.width)
  if spec.family == 'bandlimited':
    return (2 * int(spec.cutoff) + 1) ** in_dim - 1
  return 0


def check(spec: TeacherSpec, inputs: inputs_lib.InputSpec) -> None:
  """Raises ValueError if the teacher cannot be built on these inputs. Cheap: no compute."""
  b = num_basis(spec, inputs.dim)
  if b > MAX_BASIS:
    raise ValueError(f'{spec.family} teacher would have B={b} basis functions (> {MAX_BASIS}); '
                     'lower the cutoff K or the input dimension D')


def _frequencies(cutoff: int, in_dim: int) -> np.ndarray:
  """Integer frequency vectors k with 0 < ‖k‖_∞ ≤ K, one of each ±k pair: (B/2, D)."""
  ks = [k for k in itertools.product(range(-cutoff, cutoff + 1), repeat=in_dim)
        if any(k) and next(c for c in k if c) > 0]
  return np.asarray(ks, dtype=np.float64)


@flax.struct.dataclass
class Teacher:
  """A drawn teacher: a pytree (its arrays) with static spec, so it can be passed through jit.

  params:          mlp: flax variables of `mlp.MLP`; linear families: {'theta': θ_bk}.
  feature_params:  random_features: {'w': (D, F), 'b': (F,)}; bandlimited: {'freq': (B/2, D)};
                   mlp: {}.
  prior_std:       same structure as `params`: the prior standard deviation of every entry
                   (Σ0 = diag(prior_std²), docs/design.md §2).
  """
  spec: TeacherSpec = flax.struct.field(pytree_node=False)
  inputs: inputs_lib.InputSpec = flax.struct.field(pytree_node=False)
  params: Any
  feature_params: Any
  prior_std: Any

  @property
  def num_basis(self) -> int:
    return num_basis(self.spec, self.inputs.dim)

  def features(self, x_nd: jax.Array) -> jax.Array:
    """φ(x): (n, B) basis functions of a linear-in-parameter teacher."""
    return features(self.spec, self.feature_params, x_nd)

  def __call__(self, x_nd: jax.Array) -> jax.Array:
    """f*(x): (n, D) -> (n, out_dim)."""
    return apply(self.spec, self.params, self.feature_params, x_nd)


def features(spec: TeacherSpec, feature_params, x_nd: jax.Array) -> jax.Array:
  """The (n, B) basis functions φ(x) of a linear-in-parameter teacher family."""
  if spec.family == 'random_features':
    return mlp_lib.ACTIVATIONS[spec.activation](x_nd @ feature_params['w'] + feature_params['b'])
  if spec.family == 'bandlimited':
    phase_nf = jnp.pi * (x_nd @ feature_params['freq'].T)
    return jnp.concatenate([jnp.cos(phase_nf), jnp.sin(phase_nf)], axis=1)
  raise ValueError(f'{spec.family} teachers are not linear in their parameters')


def apply(spec: TeacherSpec, params, feature_params, x_nd: jax.Array) -> jax.Array:
  """f*(x) for teacher parameters `params`: (n, D) -> (n, out_dim)."""
  if spec.family == 'mlp':
    return _module(spec, x_nd.dtype).apply(params, x_nd)
  return features(spec, feature_params, x_nd) @ params['theta']


def _module(spec: TeacherSpec, dtype) -> mlp_lib.MLP:
  return mlp_lib.MLP(width=spec.width, depth=spec.depth, out_dim=spec.out_dim,
                     activation=spec.activation, gain=spec.gain, bias_scale=spec.bias_scale,
                     dtype=dtype)


def make_teacher(spec: TeacherSpec, inputs: inputs_lib.InputSpec, dtype=jnp.float32) -> Teacher:
  """Draws the teacher of `spec` (deterministic in spec.seed) and normalizes it under μ."""
  check(spec, inputs)
  return _draw(dataclasses.replace(spec, seed=0), inputs, jnp.dtype(dtype), spec.seed).replace(spec=spec)


# One compiled program per teacher shape (the seed is an argument): drawn op by op, a teacher
# would compile each primitive on its own.
@compilation.sampling_jit(static_argnums=(0, 1, 2))
def _draw(spec: TeacherSpec, inputs: inputs_lib.InputSpec, dtype, seed) -> Teacher:
  k_params, k_norm, k_feat = jax.random.split(jax.random.key(seed), 3)
  x_nd = inputs_lib.sample(inputs, k_norm, spec.n_normalize, dtype)
  if spec.family == 'mlp':
    return _make_mlp(spec, inputs, k_params, x_nd)
  if spec.family == 'random_features':
    kw, kb = jax.random.split(k_feat)
    feature_params = {
        'w': spec.gain / np.sqrt(inputs.dim) * jax.random.normal(kw, (inputs.dim, spec.width), dtype),
        'b': spec.bias_scale * jax.random.normal(kb, (spec.width,), dtype)}
  else:
    feature_params = {'freq': jnp.asarray(_frequencies(spec.cutoff, inputs.dim), dtype)}
  phi_nb = features(spec, feature_params, x_nd)
  sigma0 = 1.0 / jnp.sqrt(jnp.sum(jnp.var(phi_nb, axis=0)))  # σ0² = 1 / tr Cov_μ φ
  theta_bk = sigma0 * jax.random.normal(k_params, (phi_nb.shape[1], spec.out_dim), dtype)
  return Teacher(spec=spec, inputs=inputs, params={'theta': theta_bk},
                 feature_params=feature_params,
                 prior_std={'theta': jnp.full_like(theta_bk, sigma0)})


def _make_mlp(spec, inputs, key, x_nd) -> Teacher:
  module = _module(spec, x_nd.dtype)
  params = module.init(key, x_nd[:1])
  y_nk = module.apply(params, x_nd)
  mean_k, std_k = jnp.mean(y_nk, axis=0), jnp.std(y_nk, axis=0)
  # Fold the standardization (y - mean) / std into the readout: still an MLP of the same shape.
  layers = dict(params['params'])
  last = f'Dense_{spec.depth}'
  layers[last] = {'kernel': layers[last]['kernel'] / std_k,
                  'bias': (layers[last]['bias'] - mean_k) / std_k}
  params = {'params': layers}
  prior_std = {'params': {}}
  for i in range(spec.depth + 1):
    kernel = layers[f'Dense_{i}']['kernel']
    scale = 1.0 / std_k if i == spec.depth else 1.0
    prior_std['params'][f'Dense_{i}'] = {
        'kernel': jnp.broadcast_to(spec.gain / np.sqrt(kernel.shape[0]) * scale, kernel.shape),
        'bias': jnp.broadcast_to(spec.bias_scale * scale, (kernel.shape[1],)).astype(kernel.dtype)}
  return Teacher(spec=spec, inputs=inputs, params=params, feature_params={}, prior_std=prior_std)
