"""Ablation: intrinsic dimension d_int of the inputs at fixed ambient D = 16 (Sharma & Kaplan 2020).
`--config=experiments/configs/ablation_intrinsic_dim.py` is the quick CPU version;
`--config=experiments/configs/ablation_intrinsic_dim.py:full` the full one (the thesis grid per level).

The width exponent is only about approximation when the students cannot represent the teacher:
here the teacher (tanh, one hidden layer of width 64) is wider than every quick student, and the
online column gives the data-rich width curve whose exponent β is set beside 4/d_int. One hidden
layer, not two: the relation is about the data manifold, not the teacher's depth, and students of
the teacher's depth at width 32 would have P = 1633 instead of 577, a second phase about 8 times
as costly on a CPU.
"""

from experiments.configs import base


def get_config(size='quick'):
  return base.ablation('inputs.intrinsic_dim', (2, 4, 6, 8), size, **{
      'inputs.dim': 16, 'teacher.depth': 1, 'teacher.width': 64, 'teacher.activation': 'tanh',
      'teacher.gain': 2.0, 'teacher.bias_scale': 0.5})
