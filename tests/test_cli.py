"""experiments.cli: every entry point refuses bad flags and outputs in one line, writing nothing."""

import pytest

from helpers import cli


@pytest.mark.parametrize('module,args,match', [
    ('experiments.benchmark', ['--out={tmp}'], 'is a directory'),
    ('experiments.benchmark', ['--out={tmp}/nosuch/b.json'], 'is not a folder'),
    ('experiments.benchmark', ['--out={tmp}/b.json', '--nosuch'], 'bad flag'),
    ('experiments.benchmark', ['--out={tmp}/b.json', '--classes='], 'unknown cell classes (none given)'),
    ('experiments.benchmark', ['--out={tmp}/b.json', '--classes=huge'], "unknown cell classes ['huge']"),
    ('analysis.curves_benchmark', ['--out={tmp}'], 'is a directory'),
    ('analysis.curves_benchmark', ['--out={tmp}/c.json', '--estimators='], 'unknown estimators (none given)'),
    ('analysis.report', ['--workdir={tmp}', '--nosuch'], 'bad flag'),
    ('analysis.fit', ['--workdir={tmp}', '--nosuch'], 'bad flag'),
    ('analysis.fit', ['--workdir={tmp}', '--n_boot=-5'], 'bad flag'),
    ('analysis.decompose', ['--workdir={tmp}', '--nosuch'], 'bad flag'),
    ('analysis.ablation', ['--workdir={tmp}', '--nosuch'], 'bad flag'),
])
def test_entry_points_refuse_bad_flags_and_outputs_in_one_line(tmp_path, module, args, match):
  out = cli(module, *[a.format(tmp=tmp_path) for a in args])
  lines = [l for l in out.stderr.splitlines() if l.strip()]
  assert out.returncode == 2 and len(lines) == 1 and match in lines[0], out.stderr
  assert not any(tmp_path.iterdir())   # nothing written
