r"""Launches a sweep as a Slurm job array with submitit: one task per shard.

  python -m experiments.slurm --config=experiments/configs/thesis.py --workdir=runs/thesis \
      --num_shards=16 --partition=gpu --gpus_per_task=1 --timeout_min=600

Each task runs `runner.run` on its shard (its own results file); rerunning resumes. With
--executor=local the same tasks run as local processes (submitit's LocalExecutor), which is how
the launcher is tested on a machine without Slurm.
"""

from experiments import host

host.use_all_cpu_cores()  # before JAX is imported

import json
import sys

from absl import app, flags
from ml_collections import config_flags

from experiments import cli, launch_cost, results, runner, study

config_flags.DEFINE_config_file('config', None, 'Config file of the study.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for config.json and results.')
_NUM_SHARDS = flags.DEFINE_integer('num_shards', 1, 'Tasks in the job array.')
_EXECUTOR = flags.DEFINE_enum('executor', 'slurm', ['slurm', 'local'], 'Where the tasks run.')
_PARTITION = flags.DEFINE_string('partition', None, 'Slurm partition.')
_GPUS = flags.DEFINE_integer('gpus_per_task', 0, 'GPUs per task.', lower_bound=0)
_CPUS = flags.DEFINE_integer('cpus_per_task', 2, 'CPUs per task.', lower_bound=1)
_TIMEOUT = flags.DEFINE_integer('timeout_min', 240, 'Time limit of a task, in minutes.', lower_bound=1)
_WAIT = flags.DEFINE_bool('wait', True, 'Wait for the tasks and print their summaries.')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the cells, programs, FLOPs, memory and estimated time '
                             '(on this machine\'s devices); submit nothing.')


def run_shard(config_dict: dict, workdir: str, shard: tuple[int, int]) -> dict:
  """What one task runs (a module-level function, so that submitit can pickle it)."""
  import ml_collections
  return runner.run(ml_collections.ConfigDict(config_dict), workdir, shard=shard, progress=False)


def launch(config, workdir, num_shards, executor, **slurm):
  """Submits the job array; returns the submitit jobs (validation first, nothing on failure)."""
  import submitit
  for i in range(max(num_shards, 1)):   # a count < 1 fails in study.plan
    study.plan(config, (i, num_shards))
  results.check_workdir(workdir, config)
  folder = f'{workdir}/submitit/%j'
  if executor == 'local':
    ex = submitit.LocalExecutor(folder=folder)
    ex.update_parameters(timeout_min=slurm['timeout_min'])
  else:
    ex = submitit.AutoExecutor(folder=folder)
    ex.update_parameters(timeout_min=slurm['timeout_min'], slurm_partition=slurm['partition'],
                         gpus_per_node=slurm['gpus_per_task'], cpus_per_task=slurm['cpus_per_task'],
                         tasks_per_node=1, nodes=1, slurm_array_parallelism=num_shards)
  config_dict = config.to_dict()
  shards = [(i, num_shards) for i in range(num_shards)]
  return ex.map_array(run_shard, [config_dict] * num_shards, [workdir] * num_shards, shards)


def main(argv):
  if len(argv) > 1:
    cli.fail(f'unexpected arguments {argv[1:]}')
  config = cli.config_or_fail()
  cli.require('workdir')
  if _DRY_RUN.value:
    for i in range(max(_NUM_SHARDS.value, 1)):
      cli.or_fail(study.plan, config, (i, _NUM_SHARDS.value))
    cli.or_fail(launch_cost.print_dry_run, config, _WORKDIR.value)
    print(f'slurm: {_NUM_SHARDS.value} tasks would share these cells (dry run: nothing submitted)')
    return
  jobs = cli.or_fail(launch, config, _WORKDIR.value, _NUM_SHARDS.value, _EXECUTOR.value,
                     partition=_PARTITION.value, gpus_per_task=_GPUS.value, cpus_per_task=_CPUS.value,
                     timeout_min=_TIMEOUT.value)
  print(f'slurm: submitted {len(jobs)} tasks: {", ".join(j.job_id for j in jobs)}', file=sys.stderr)
  if _WAIT.value:
    for job in jobs:
      print(json.dumps(job.result()))


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
