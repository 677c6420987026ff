"""Ablation: teacher depth (hidden layers). `--config=experiments/configs/ablation_teacher_depth.py` is the quick CPU version;
`--config=experiments/configs/ablation_teacher_depth.py:full` the full one (the thesis grid per level)."""

from experiments.configs import base


def get_config(size='quick'):
  return base.ablation('teacher.depth', (1, 2, 3, 4), size)
