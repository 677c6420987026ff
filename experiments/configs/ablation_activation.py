"""Ablation: teacher activation. `--config=experiments/configs/ablation_activation.py` is the quick CPU version;
`--config=experiments/configs/ablation_activation.py:full` the full one (the thesis grid per level)."""

from experiments.configs import base


def get_config(size='quick'):
  return base.ablation('teacher.activation', ('relu', 'tanh', 'gelu', 'erf'), size)
