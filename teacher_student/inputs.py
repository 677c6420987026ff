"""Input distributions μ (docs/design.md §3).

Three base distributions on R^d, all with zero mean:
  gaussian  N(0, I_d)                                  (unit variance per coordinate)
  cube      uniform on [-1, 1]^d                       (the band-limited teacher's natural domain)
  sphere    uniform on the sphere of radius sqrt(d)    (unit variance per coordinate; a manifold
            of dimension d − 1)

An intrinsic dimension d_int < D draws z from the base distribution in R^{d_int} and embeds it
in the ambient R^D, either by a random linear isometry (`embedding='random'`, x = A z with A
having orthonormal columns, fixed by `seed`) or by zero-padding (`embedding='pad'`,
x = [z, 0]). This is the data-manifold dial of Sharma & Kaplan (2020).
"""

import dataclasses

import jax
import jax.numpy as jnp

DISTRIBUTIONS = ('gaussian', 'cube', 'sphere')
EMBEDDINGS = ('random', 'pad')


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """The input distribution μ. Hashable, so it can be a static argument of `jax.jit`.

  Attributes:
    distribution: one of DISTRIBUTIONS.
    dim: ambient dimension D.
    intrinsic_dim: d_int <= D; 0 means d_int = D (no embedding).
    embedding: how R^{d_int} sits in R^D, one of EMBEDDINGS.
    seed: seed of the random embedding (unused for 'pad' or d_int = D).
  """
  distribution: str = 'gaussian'
  dim: int = 8
  intrinsic_dim: int = 0
  embedding: str = 'random'
  seed: int = 0

  def __post_init__(self):
    if self.distribution not in DISTRIBUTIONS:
      raise ValueError(f'unknown input distribution {self.distribution!r}; '
                       f'choose one of {", ".join(DISTRIBUTIONS)}')
    if int(self.dim) < 1:
      raise ValueError(f'input dimension D must be >= 1, got {self.dim}')
    if int(self.intrinsic_dim) < 0 or int(self.intrinsic_dim) > int(self.dim):
      raise ValueError(f'intrinsic dimension d_int={self.intrinsic_dim} must be in 1..D={self.dim} '
                       '(or 0 for d_int = D)')
    if self.embedding not in EMBEDDINGS:
      raise ValueError(f'unknown embedding {self.embedding!r}; choose one of {", ".join(EMBEDDINGS)}')

  @property
  def d_int(self) -> int:
    """The intrinsic dimension (D when no embedding is asked for)."""
    return int(self.intrinsic_dim) or int(self.dim)


def embedding_matrix(spec: InputSpec, dtype=jnp.float32) -> jax.Array | None:
  """The (D, d_int) matrix with orthonormal columns that embeds R^{d_int} in R^D.

  None when d_int = D (the identity). Zero-padding is the matrix [I; 0].
  """
  if spec.d_int == spec.dim:
    return None
  if spec.embedding == 'pad':
    return jnp.eye(spec.dim, spec.d_int, dtype=dtype)
  g_dk = jax.random.normal(jax.random.key(spec.seed), (spec.dim, spec.d_int), dtype)
  q_dk, r_kk = jnp.linalg.qr(g_dk)
  # Fix the signs so that the embedding is a deterministic function of the seed (Haar measure).
  return q_dk * jnp.sign(jnp.diagonal(r_kk))


def sample(spec: InputSpec, key: jax.Array, n: int, dtype=jnp.float32) -> jax.Array:
  """Draws n i.i.d. points from μ; returns x_nd of shape (n, D)."""
  d = spec.d_int
  if spec.distribution == 'gaussian':
    z_nd = jax.random.normal(key, (n, d), dtype)
  elif spec.distribution == 'cube':
    z_nd = jax.random.uniform(key, (n, d), dtype, minval=-1.0, maxval=1.0)
  else:  # sphere
    g_nd = jax.random.normal(key, (n, d), dtype)
    z_nd = g_nd * (jnp.sqrt(jnp.asarray(d, dtype)) / jnp.linalg.norm(g_nd, axis=1, keepdims=True))
  a_dk = embedding_matrix(spec, dtype)
  return z_nd if a_dk is None else z_nd @ a_dk.T
