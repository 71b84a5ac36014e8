#!/usr/bin/env bash
# The same benchmark scripts of a reference commit and of the working tree, alternated round by round,
# so that both sides see the same machine.  Usage (from the repository root, nothing else running):
#   benchmarks/old_vs_new.sh [REV]          REV defaults to ac6e2ad, the commit before the redesign
#   ROUNDS=1 BENCHES="tune.py --search-only" benchmarks/old_vs_new.sh REV
# The reference tree is exported (git archive) beside this repository, so that its benchmarks find
# ../shared/realdata as ours do, and removed at the end.  Each script prints its own ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:-ac6e2ad}
ROUNDS=${ROUNDS:-3}
BENCHES=${BENCHES:-"fuse.py --oracle-images 4;soft_fuse.py --inputs 3 --images 16 --oracle-images 2;tune.py --search-only"}
PY=${PYTHON:-$ROOT/.venv/bin/python}
git -C "$ROOT" rev-parse --verify --quiet "$REV^{commit}" > /dev/null || { echo "old_vs_new.sh: no commit $REV" >&2; exit 2; }
OLD=$(mktemp -d "$(dirname "$ROOT")/hbens-reference.XXXXXX")
trap 'rm -rf "$OLD"' EXIT
git -C "$ROOT" archive "$REV" | tar -x -C "$OLD"
IFS=';' read -r -a LIST <<< "$BENCHES"
for round in $(seq "$ROUNDS"); do
  for side in old new; do
    tree=$ROOT; [ "$side" = old ] && tree=$OLD
    for bench in "${LIST[@]}"; do
      echo "=== round $round, $side ($([ "$side" = old ] && echo "$REV" || echo "working tree")): $bench"
      # shellcheck disable=SC2086
      (cd "$tree" && PYTHONPATH="$tree" "$PY" benchmarks/$bench)
    done
  done
done
