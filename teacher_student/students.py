"""Students: the learners whose generalization error the study measures (DESIGN §3).

Families:
  mlp       the flax `mlp.MLP` of width m and depth L (P(m) parameters);
  features  a linear model φ(x)ᵀθ on the basis of a linear-in-parameter teacher: the ideal
            architecture for that teacher (DESIGN §2's "student of the same features").

Initializations:
  standard  mlp: weights N(0, gain²/fan_in), biases N(0, bias_scale²); features: same as zero;
  prior     a draw from the teacher's prior Π = N(0, diag(prior_std²)) — needs the teacher's
            architecture (sample-then-optimize, DESIGN §2 estimator (c));
  zero      all parameters 0 (features only: gradient descent from zero gives the posterior mean).
"""

import dataclasses
from typing import Any

import flax.struct
import jax
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


@flax.struct.dataclass
class Student:
  """A resolved student bound to its teacher (the teacher supplies the basis and the prior)."""
  spec: StudentSpec = flax.struct.field(pytree_node=False)
  teacher: Any

  @property
  def num_params(self) -> int:
    """P(m)."""
    t = self.teacher
    if self.spec.family == 'features':
      return t.num_basis * t.spec.out_dim
    return mlp_lib.param_count(t.inputs.dim, self.spec.width, self.spec.depth, t.spec.out_dim)

  def module(self, dtype) -> mlp_lib.MLP:
    s = self.spec
    return mlp_lib.MLP(width=s.width, depth=s.depth, out_dim=self.teacher.spec.out_dim,
                       activation=s.activation, gain=s.gain, bias_scale=s.bias_scale, dtype=dtype)

  def init(self, key: jax.Array, dtype=jnp.float32):
    """Initial parameters (a pytree) for one student: independent Gaussians, each entry with
    the standard deviation of `init_std`, from a single draw (one random stream instead of one
    per layer is much cheaper to compile inside the engine's program)."""
    std = self.init_std(dtype)
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


def make_student(spec: StudentSpec, teacher: teachers_lib.Teacher) -> Student:
  return Student(spec=resolve(spec, teacher.spec), teacher=teacher)
