"""Ablation: band limit K of a band-limited teacher on the cube [-1, 1]^2 (B = (2K+1)^2 - 1).
`--config=experiments/configs/ablation_band_limit.py` is the quick CPU version;
`--config=experiments/configs/ablation_band_limit.py:full` the full one (the thesis grid per level).
Linear teachers have the closed-form uncertainty, so no posterior ensemble is trained."""

from experiments.configs import base


def get_config(size='quick'):
  return base.ablation('teacher.cutoff', (1, 2, 3, 4), size, **{
      'teacher.family': 'bandlimited', 'inputs.distribution': 'cube', 'inputs.dim': 2,
      'decomposition.ensemble_members': 0})
