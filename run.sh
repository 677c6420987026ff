#!/usr/bin/env bash
# The project's two commands:
#   ./run.sh          install into .venv if needed, run the quick CPU study into runs/quick,
#                     then write its figures and report
#   ./run.sh test     install into .venv if needed, run the test suite on two pytest workers
#                     (TEST_WORKERS=N to change; extra args go to pytest)
#   ./run.sh lock     resolve pyproject.toml's ranges afresh in a scratch venv and write the
#                     exact versions to requirements.lock (what the two commands above install)
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"
STAMP="$VENV/.installed.sha256"
LOCK=requirements.lock

ensure_venv() {
  local want
  want=$(cat pyproject.toml "$LOCK" | sha256sum | cut -d' ' -f1)
  if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    return
  fi
  echo "run.sh: installing into $VENV (first run, or pyproject.toml or $LOCK changed) ..." >&2
  command -v python3 >/dev/null || { echo "run.sh: python3 (>= 3.10) is required" >&2; exit 1; }
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip
  # The exact versions of requirements.lock: XLA's numerics change between releases, so the
  # records are reproducible only with the versions that made them.
  if ! "$PY" -m pip install --quiet -c "$LOCK" -e '.[test,slurm]'; then
    echo "run.sh: the versions in $LOCK do not install on this Python ($("$PY" -V)); installing" \
         "the newest that pyproject.toml allows instead (records name the versions they ran on)" >&2
    "$PY" -m pip install --quiet -e '.[test,slurm]'
  fi
  echo "$want" > "$STAMP"
}

lock() {
  local scratch
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  python3 -m venv "$scratch/venv"
  "$scratch/venv/bin/python" -m pip install --quiet --upgrade pip
  "$scratch/venv/bin/python" -m pip install --quiet '.[test,slurm]'
  { echo "# Exact versions for ./run.sh, resolved by './run.sh lock' on $("$scratch/venv/bin/python" -V)," \
         "$(uname -s) $(uname -m)."
    "$scratch/venv/bin/python" -m pip freeze --exclude teacher-student-scaling; } > "$LOCK.tmp"
  mv "$LOCK.tmp" "$LOCK"
  echo "run.sh: wrote $LOCK ($(grep -vc '^#' "$LOCK") packages)" >&2
}

if [ "${1:-}" = lock ]; then
  lock
  exit 0
fi
ensure_venv
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$PWD/.jax_cache}"

case "${1:-}" in
  test)
    shift
    # Two pytest workers (pytest-xdist): tracing and op-by-op execution run on one core, so two
    # workers keep both cores busy. Tests of one xdist group (those sharing an expensive fixture)
    # run on one worker, which builds the fixture once. TEST_WORKERS=0: no workers.
    exec "$PY" -m pytest -q -n "${TEST_WORKERS:-2}" --dist loadgroup "$@"
    ;;
  "")
    workdir=runs/quick
    # Cache every program the sweep compiles, not only those that took over JAX's default 1 s:
    # its teacher draws, training pools and small eager programs are then not compiled again.
    # (Not for the tests: two workers writing the same small programs' entries at once can leave
    # one reading a torn entry.)
    export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="${JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS:-0}"
    "$PY" -m experiments.sweep --config=experiments/configs/quick.py --workdir="$workdir"
    "$PY" -m analysis.report --workdir="$workdir"
    echo "run.sh: report at $workdir/report.md"
    ;;
  *)
    echo "usage: ./run.sh [test [pytest args...] | lock]" >&2
    exit 2
    ;;
esac
