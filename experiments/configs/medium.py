"""The medium CPU study, for a teacher of realistic difficulty: a ReLU teacher of width 8 on D = 10
(P = 97, n* = 89) and students of widths 2..32 on n = 32..32768, 2.5 decades past n*, and
online; 8 seeds; a 4-member posterior ensemble. No band-limited companion (that is the quick
study's figure 6)."""

from experiments.configs import base


def get_config():
  c = base.get_config()
  c.name = 'medium'
  c.teacher.width = 8
  c.inputs.dim = 10
  c.students.widths = (2, 4, 8, 16, 32)
  c.data.ns = tuple(2**k for k in range(5, 16))
  c.seeds = 8
  c.nyquist.cutoff = 0
  return c
