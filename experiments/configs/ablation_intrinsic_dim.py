"""Ablation: intrinsic dimension d_int at fixed ambient D = 16. `--config=experiments/configs/ablation_intrinsic_dim.py` is the quick CPU version;
`--config=experiments/configs/ablation_intrinsic_dim.py:full` the full one (the thesis grid per level)."""

from experiments.configs import base


def get_config(size='quick'):
  return base.ablation('inputs.intrinsic_dim', (2, 4, 6, 8), size, **{'inputs.dim': 16})
