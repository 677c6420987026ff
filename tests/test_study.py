"""experiments.study: the plan of cells and its partition over shards."""

from experiments import study
from helpers import tiny_config


def test_plan_partitions_cells_across_shards():
  config = tiny_config(decomposition__ensemble_members=2)
  full = study.plan(config)
  keys = lambda p: [p.cell_key(g, m, n, r) for g in p.groups for m, n, r in p.cells(g)]
  all_keys = keys(full)
  parts = [keys(study.plan(config, (i, 3))) for i in range(3)]
  assert len(set(all_keys)) == len(all_keys) == sum(len(p) for p in parts)
  assert set(sum(parts, [])) == set(all_keys)
  assert all(parts)
  # 2 widths × 3 columns × 2 seeds students + 2 seeds × 2 n ensemble cells (2 members each)
  assert len(all_keys) == 12 + 4
  assert {g.members for g in full.groups if g.kind == 'ensemble'} == {2}
  # Widths 2 and 4 share one program (both <= study.MERGE_WIDTHS_UP_TO).
  assert [g.cell_widths for g in full.groups if g.kind == 'student'] == [(2, 4)]
