"""Ablation: teacher width. `--config=experiments/configs/ablation_teacher_width.py` is the quick CPU version;
`--config=experiments/configs/ablation_teacher_width.py:full` the full one (the thesis grid per level)."""

from experiments.configs import base


def get_config(size='quick'):
  return base.ablation('teacher.width', (2, 4, 8, 16), size)
