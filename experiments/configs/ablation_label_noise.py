"""Ablation: label-noise standard deviation σ (test error against the clean teacher). `--config=experiments/configs/ablation_label_noise.py` is the quick CPU version;
`--config=experiments/configs/ablation_label_noise.py:full` the full one (the thesis grid per level)."""

from experiments.configs import base


def get_config(size='quick'):
  return base.ablation('data.noise_std', (0.0, 0.01, 0.03, 0.1), size)
