"""The replicate axis sharded over local devices (docs/design.md §4): each device trains its share of
replicates with its own while-loops, so the devices never communicate."""

from typing import Callable, Sequence

import jax
import numpy as np

REPLICATED = jax.sharding.PartitionSpec()
BY_REPLICATE = jax.sharding.PartitionSpec('replicas')        # (replicate, ...)
BY_N_REPLICATE = jax.sharding.PartitionSpec(None, 'replicas')  # (n, replicate, ...)


def padding(replicates: int, devices: Sequence) -> int:
  """Rows to add so that the replicate axis splits evenly over the devices (dropped after)."""
  return (-replicates) % len(devices)


def mesh(devices: Sequence) -> jax.sharding.Mesh:
  return jax.sharding.Mesh(np.asarray(devices), ('replicas',))


def shard_program(fn: Callable, devices: Sequence, in_specs: tuple, out_specs, check_vma: bool = True) -> Callable:
  """fn run on every device over its share of the arguments partitioned by `in_specs`."""
  return jax.shard_map(fn, mesh=mesh(devices), in_specs=in_specs, out_specs=out_specs, check_vma=check_vma)


def place_by_replicate(devices: Sequence, *arrays) -> tuple:
  """Host arrays (replicate, ...) placed on the devices, split along the replicate axis."""
  sharding = jax.sharding.NamedSharding(mesh(devices), BY_REPLICATE)
  return tuple(jax.device_put(a, sharding) for a in arrays)
