"""The quick CPU study `./run.sh` runs: a realizable ReLU teacher (width 4, D = 4) and students of
widths 1..32 (under- and over-parameterized) on n = 16..2048 and the online column, 12 seeds."""

from experiments.configs import base


def get_config():
  return base.get_config()
