"""The full study for accelerators (`base.thesis`): teacher depth 2, width 16, D = 16; students of
widths 1..1024; n = 16..131072; 8 seeds; the online column; an 8-member posterior ensemble."""

from experiments.configs import base


def get_config():
  return base.thesis()
