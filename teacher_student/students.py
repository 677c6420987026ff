"""Students: the learners whose generalization error the study measures (docs/design.md §3).

Families:
  mlp       the flax `mlp.MLP` of width m and depth L (P(m) parameters);
  features  a linear model φ(x)ᵀθ on the basis of a linear-in-parameter teacher: the ideal
            architecture for that teacher (docs/design.md §2's "student of the same features").

Initializations:
  standard  mlp: weights N(0, gain²/fan_in), biases N(0, bias_scale²); features: same as zero;
  prior     a draw from the teacher's prior Π = N(0, diag(prior_std²)) — needs the teacher's
            architecture (sample-then-optimize, docs/design.md §2 estimator (c));
  zero      all parameters 0 (features only: gradient descent from zero gives the posterior mean).
"""

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.extend.random
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from teacher_student import mlp as mlp_lib
from teacher_student import teachers as teachers_lib

FAMILIES = ('mlp', 'features')
INITS = ('standard', 'prior', 'zero')


@dataclasses.dataclass(frozen=True)
class StudentSpec:
  """One student shape. depth = 0 or activation = '' mean "the same as an MLP teacher's"."""
  family: str = 'mlp'
  width: int = 8
  depth: int = 0
  activation: str = ''
  init: str = 'standard'
  gain: float = 1.0
  bias_scale: float = 0.0

  def __post_init__(self):
    if self.family not in FAMILIES:
      raise ValueError(f'unknown student family {self.family!r}; choose one of {", ".join(FAMILIES)}')
    if self.init not in INITS:
      raise ValueError(f'unknown student init {self.init!r}; choose one of {", ".join(INITS)}')
    if int(self.width) < 1:
      raise ValueError(f'student width must be a positive integer, got {self.width}')
    if int(self.depth) < 0:
      raise ValueError(f'student depth must be >= 1 (or 0 for the teacher\'s), got {self.depth}')
    if self.activation:
      mlp_lib.check_activation(self.activation)
    if self.family == 'mlp' and self.init == 'zero':
      raise ValueError('an MLP student cannot start from zero (all hidden units would stay equal)')


def resolve(spec: StudentSpec, teacher_spec: teachers_lib.TeacherSpec) -> StudentSpec:
  """Fills depth/activation left to the teacher, and checks the pair. No compute."""
  if spec.family == 'features':
    if teacher_spec.family not in teachers_lib.LINEAR_FAMILIES:
      raise ValueError(f'a features student needs a linear-in-parameter teacher, not {teacher_spec.family!r}')
    return spec
  depth = spec.depth or (teacher_spec.depth if teacher_spec.family == 'mlp' else 1)
  activation = spec.activation or (teacher_spec.activation if teacher_spec.family == 'mlp' else 'tanh')
  spec = dataclasses.replace(spec, depth=depth, activation=activation)
  if spec.init == 'prior' and not (
      teacher_spec.family == 'mlp' and (teacher_spec.width, teacher_spec.depth, teacher_spec.activation)
      == (spec.width, spec.depth, spec.activation)):
    raise ValueError('init=prior needs a student of the MLP teacher\'s exact width, depth and activation')
  return spec


def certified_realizable(spec: StudentSpec, teacher_spec: teachers_lib.TeacherSpec) -> bool:
  """R(m) = 0 by the embedding certificate (`mlp.embed`): an MLP student of an MLP teacher's
  depth and activation, and at least its width, contains the teacher."""
  return (teacher_spec.family == 'mlp' and spec.family == 'mlp' and spec.depth == teacher_spec.depth
          and spec.activation == teacher_spec.activation and spec.width >= teacher_spec.width)


@flax.struct.dataclass
class Student:
  """A resolved student bound to its teacher (the teacher supplies the basis and the prior)."""
  spec: StudentSpec = flax.struct.field(pytree_node=False)
  teacher: Any

  # What the engine and the analysis ask of a family: answered here, so that a new family is
  # this module plus a config value.
  @property
  def num_params(self) -> int:
    """P(m)."""
    t = self.teacher
    if self.spec.family == 'features':
      return t.num_basis * t.spec.out_dim
    return mlp_lib.param_count(t.inputs.dim, self.spec.width, self.spec.depth, t.spec.out_dim)

  @property
  def hidden_units(self) -> int:
    """Hidden units a training step computes per point (what its memory grows with)."""
    if self.spec.family == 'features':
      return self.teacher.num_basis
    return self.spec.width * self.spec.depth

  @property
  def has_feature_major_form(self) -> bool:
    """Whether training may use `apply_feature_major` (a form faster than `apply` on CPU)."""
    return self.spec.family == 'mlp'

  @property
  def can_pad_width(self) -> bool:
    """Whether narrower students train inside this one, padded with inert units (`init`)."""
    return self.spec.family == 'mlp' and self.spec.init == 'standard'

  @property
  def kinked(self) -> bool:
    """Whether the loss has kinks (ReLU units), which the second phase follows (`second_order`)."""
    return self.spec.family == 'mlp' and self.spec.activation == 'relu'

  @property
  def contains_teacher(self) -> bool:
    """The R(m) = 0 certificate (docs/design.md §2): the class holds the teacher (`certified_realizable`)."""
    return certified_realizable(self.spec, self.teacher.spec)

  def module(self, dtype) -> mlp_lib.MLP:
    s = self.spec
    return mlp_lib.MLP(width=s.width, depth=s.depth, out_dim=self.teacher.spec.out_dim,
                       activation=s.activation, gain=s.gain, bias_scale=s.bias_scale, dtype=dtype)

  def init(self, key: jax.Array, dtype=jnp.float32, width=None):
    """Initial parameters (a pytree) for one student: independent Gaussians, each entry with
    the standard deviation of `init_std`.

    MLP students draw every entry at its own Threefry counter (layer, column, row), so an entry's
    value does not depend on how wide the network is (one hash: cheap to compile). With `width`
    (may be traced) < spec.width, the student is a width-`width` student padded with inert
    units: they start at 0, get zero gradients (their outgoing weights are 0 and act(0) = 0) and
    stay 0, and the real units start exactly as in an unpadded student of that width. Other
    students use one flat draw.
    """
    std = self.init_std(dtype)
    if self.spec.family == 'mlp' and self.spec.init == 'standard':
      if width is not None:
        std = _narrow(std, width, self.spec.gain)
      return jax.tree.map(jnp.multiply, std, _entry_normals(key, std, dtype))
    flat_std, unravel = jax.flatten_util.ravel_pytree(std)
    return unravel(flat_std * jax.random.normal(key, flat_std.shape, dtype))

  def init_std(self, dtype=jnp.float32):
    """The standard deviation of every initial parameter (same structure as the parameters)."""
    t = self.teacher
    if self.spec.init == 'prior':
      return jax.tree.map(lambda s: jnp.asarray(s, dtype), t.prior_std)
    if self.spec.family == 'features':
      return {'theta': jnp.zeros((t.num_basis, t.spec.out_dim), dtype)}
    shapes = jax.eval_shape(self.module(dtype).init, jax.random.key(0), jnp.zeros((1, t.inputs.dim), dtype))
    # Weights N(0, gain²/fan_in) and biases N(0, bias_scale²), as mlp.MLP draws them.
    return {'params': {name: {'kernel': jnp.full(layer['kernel'].shape, self.spec.gain / np.sqrt(layer['kernel'].shape[0]), dtype),
                              'bias': jnp.full(layer['bias'].shape, self.spec.bias_scale, dtype)}
                       for name, layer in shapes['params'].items()}}

  def apply(self, params, x_nd: jax.Array) -> jax.Array:
    """Student outputs: (n, D) -> (n, out_dim)."""
    if self.spec.family == 'features':
      return self.teacher.features(x_nd) @ params['theta']
    return self.module(x_nd.dtype).apply(params, x_nd)

  def apply_feature_major(self, params, x_dn: jax.Array) -> jax.Array:
    """The same outputs on transposed arrays: (D, n) -> (out_dim, n) (the training loop's layout)."""
    if self.spec.family == 'features':
      return (self.teacher.features(x_dn.T) @ params['theta']).T
    return mlp_lib.apply_feature_major(params, x_dn, self.spec.activation)


BIAS_COLUMN = (1 << 20) - 1   # counter of a layer's bias "column"; kernel columns are 0, 1, ...


def _layers(tree):
  layers = tree['params']
  return [layers[f'Dense_{i}'] for i in range(len(layers))]


def _entry_normals(key, like, dtype):
  """N(0, 1) entries shaped like the MLP tree `like`, entry (row r, column j) of layer i drawn
  by Threefry at the counter pair (i·2^20 + j, r) (bias entries: column BIAS_COLUMN): what an
  entry gets depends on its position only, never on the network's width. One hash over all
  entries (counter mode, as jax.random itself), then the inverse-CDF transform to a normal."""
  his, los, shapes = [], [], []
  for i, l in enumerate(_layers(like)):
    fan_in, fan_out = l['kernel'].shape
    rows, cols = np.meshgrid(np.arange(fan_in), np.arange(fan_out), indexing='ij')
    his += [i * (BIAS_COLUMN + 1) + cols.ravel(), np.full(fan_out, i * (BIAS_COLUMN + 1) + BIAS_COLUMN)]
    los += [rows.ravel(), np.arange(fan_out)]
    shapes += [(fan_in, fan_out), (fan_out,)]
  hi, lo = np.concatenate(his).astype(np.uint32), np.concatenate(los).astype(np.uint32)
  bits = jax.extend.random.threefry_2x32(jax.random.key_data(key), jnp.concatenate([hi, lo]))[: len(hi)]
  # 23 random mantissa bits -> u in [1, 2) -> (-1, 1), then sqrt(2) erfinv (as jax.random.normal).
  u = jax.lax.bitcast_convert_type((bits >> 9) | np.uint32(0x3F800000), jnp.float32) - 1.0
  u = jnp.clip(2.0 * u - 1.0, -1.0 + 2.0**-23, 1.0).astype(dtype)
  z = np.sqrt(2.0).astype(dtype) * jax.scipy.special.erfinv(u)
  out, start = {}, 0
  for i, shape in enumerate(shapes[::2]):
    size = shape[0] * shape[1]
    out[f'Dense_{i}'] = {'kernel': z[start:start + size].reshape(shape), 'bias': z[start + size:start + size + shape[1]]}
    start += size + shape[1]
  return {'params': out}


def _narrow(std, width, gain):
  """The standard deviations of a width-`width` student inside this wider one: hidden units
  >= width get 0 (weights in and out), and kernels fed by hidden units have fan-in `width`."""
  layers = _layers(std)
  last = len(layers) - 1
  out = {}
  for i, l in enumerate(layers):
    fan_in, fan_out = l['kernel'].shape
    rows = (jnp.arange(fan_in) < width) if i > 0 else jnp.ones(fan_in, bool)
    cols = (jnp.arange(fan_out) < width) if i < last else jnp.ones(fan_out, bool)
    kernel_std = gain / jnp.sqrt(jnp.asarray(width, l['kernel'].dtype)) if i > 0 else l['kernel']
    out[f'Dense_{i}'] = {'kernel': jnp.where(rows[:, None] & cols[None, :], kernel_std, 0.0).astype(l['kernel'].dtype),
                         'bias': l['bias'] * cols}
  return {'params': out}


def make_student(spec: StudentSpec, teacher: teachers_lib.Teacher) -> Student:
  return Student(spec=resolve(spec, teacher.spec), teacher=teacher)
