r"""Runs a sweep of the teacher-student study into a workdir.

  python -m experiments.sweep --config=experiments/configs/quick.py --workdir=runs/quick \
      [--config.students.widths=4,8,16] [--config.train.steps=2000] ...

Rerunning the same command resumes (finished cells are skipped); --dry_run prints what it would
train and its cost, and trains nothing. One sweep at a time per workdir shard: a second launch
exits with status 2. Multi-host: pass
--coordinator_address, --num_processes and --process_id (jax.distributed); each process trains
its share of cells into its own results file. --shard_index/--num_shards do the same by hand
(experiments.slurm uses them).
"""

from experiments import host

host.use_all_cpu_cores()  # before JAX is imported

import json
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from experiments import cli, launch_cost, results, runner, study

config_flags.DEFINE_config_file('config', None, 'Config file of the study.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for config.json and results.')
_NEW_WORKDIR = flags.DEFINE_bool('new_workdir', False,
                                 'If --workdir holds a different config, use the first free DIR.N instead.')
_SHARD_INDEX = flags.DEFINE_integer('shard_index', 0, 'This shard (without jax.distributed).')
_NUM_SHARDS = flags.DEFINE_integer('num_shards', 1, 'Number of shards (without jax.distributed).')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'jax.distributed coordinator host:port.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'jax.distributed process count.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'jax.distributed process index.')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar on stderr.')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the cells, programs, FLOPs, memory and estimated time; '
                             'train and write nothing.')
_ACCELERATOR = flags.DEFINE_string('accelerator', None, 'With --dry_run: also price the run on this accelerator '
                                   '(a name for the printout), from the rates below.')
_ACC_TFLOPS = flags.DEFINE_float('accelerator_tflops', 67.0, 'Its dense FLOP rate in the study\'s dtype, TFLOP/s '
                                 '(H100 SXM float64 tensor cores: 67).', lower_bound=0.001)
_ACC_BANDWIDTH = flags.DEFINE_float('accelerator_gbps', 3350.0, 'Its memory bandwidth, GB/s (H100 SXM: 3350).',
                                    lower_bound=0.001)
_ACC_MEMORY = flags.DEFINE_float('accelerator_memory_gib', 80.0, 'Its memory, GiB.', lower_bound=0.001)
_ACC_COUNT = flags.DEFINE_integer('accelerator_count', 1, 'How many of them.', lower_bound=1)


def validated_workdir(config, shard, workdir: str, new_workdir: bool) -> str:
  """Checks everything about the input before anything is written; returns the workdir to use."""
  study.plan(config, shard)
  try:
    results.check_workdir(workdir, config)
    return workdir
  except ValueError:
    if not new_workdir:
      raise
    fresh = str(results.free_workdir(workdir))
    print(f'sweep: {workdir} holds a different config; writing to {fresh}', file=sys.stderr)
    return fresh


def main(argv):
  if len(argv) > 1:
    cli.fail(f'unexpected arguments {argv[1:]}')
  config = cli.config_or_fail()
  cli.require('workdir')
  if _COORDINATOR.value:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    shard = (jax.process_index(), jax.process_count())
  else:
    shard = (_SHARD_INDEX.value, _NUM_SHARDS.value)
  workdir = cli.or_fail(validated_workdir, config, shard, _WORKDIR.value, _NEW_WORKDIR.value)
  if _DRY_RUN.value:
    accelerator = _ACCELERATOR.value and launch_cost.Accelerator(
        _ACCELERATOR.value, _ACC_TFLOPS.value * 1e12, _ACC_BANDWIDTH.value * 1e9, _ACC_MEMORY.value * 2**30,
        _ACC_COUNT.value)
    cli.or_fail(launch_cost.print_dry_run, config, workdir, shard, accelerator or None)
    return
  try:
    summary = runner.run(config, workdir, shard=shard, progress=_PROGRESS.value)
  except results.WorkdirBusy as e:
    cli.fail(str(e))
  print(json.dumps(summary))


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
