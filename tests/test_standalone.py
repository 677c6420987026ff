"""The repository stands alone: a clone holds its spec, its data and its pinned dependencies."""

import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Spelled in two pieces so that this file does not match itself.
OUTSIDE = '..' + '/shared'


def tracked_files() -> list[pathlib.Path]:
  try:
    out = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True, check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    pytest.skip('not a git checkout: no list of tracked files')
  return [ROOT / p for p in out.decode().split('\0') if p]


def test_no_tracked_file_names_a_path_outside_the_repository():
  files = tracked_files()
  assert len(files) > 50
  hits = [str(p.relative_to(ROOT)) for p in files
          if p.is_file() and OUTSIDE.encode() in p.read_bytes()]
  assert hits == []


def test_docs_cited_by_the_code_exist():
  """Every `docs/design.md §N` cited in a tracked file names a section that design.md has."""
  design = (ROOT / 'docs' / 'design.md').read_text()
  sections = set(re.findall(r'^## (\d+)\.', design, flags=re.M))
  assert {'1', '2', '3', '4', '5', '6'} <= sections
  cited = set()
  for p in tracked_files():
    if p.suffix in ('.py', '.md'):
      cited |= set(re.findall(r'design\.md §(\d+)', p.read_text()))
  assert cited and cited <= sections


def test_the_lock_pins_every_direct_dependency():
  """requirements.lock pins (==) each package pyproject.toml asks for, and run.sh installs it."""
  tomllib = pytest.importorskip('tomllib')   # Python >= 3.11
  project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
  wanted = project['dependencies'] + [d for ds in project['optional-dependencies'].values() for d in ds]
  names = {re.split(r'[<>=!~\[; ]', d, maxsplit=1)[0].lower().replace('_', '-') for d in wanted}
  pins = dict(line.split('==') for line in (ROOT / 'requirements.lock').read_text().splitlines()
              if line and not line.startswith('#'))
  pinned = {k.lower().replace('_', '-') for k in pins}
  assert names - pinned == set()
  assert 'requirements.lock' in (ROOT / 'run.sh').read_text()
