"""Ablation: input dimension D (= d_int). `--config=experiments/configs/ablation_input_dim.py` is the quick CPU version;
`--config=experiments/configs/ablation_input_dim.py:full` the full one (the thesis grid per level)."""

from experiments.configs import base


def get_config(size='quick'):
  return base.ablation('inputs.dim', (2, 4, 8, 16), size)
