#!/usr/bin/env bash
# Test the lower bounds we declare in pyproject.toml.
#
# A fresh venv on the oldest Python we support, every direct dependency (runtime and the
# test/plot/dask/docs extras) pinned at its floor by a constraints file, the package installed
# as a wheel (not editable), then the whole suite run against that installed copy.
#
#   scripts/test_lower_bounds.sh                 # uses scripts/lower-bounds.txt
#   CONSTRAINTS=other.txt PYTHON=python3.11 KEEP=1 scripts/test_lower_bounds.sh -x -k cli
#
# Extra arguments go to pytest. Transitive dependencies (click, rich, ...) float to the newest
# release the pins allow: that is what a user who installs us at our floors gets.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CONSTRAINTS="${CONSTRAINTS:-$REPO/scripts/lower-bounds.txt}"
CONSTRAINTS="$(cd "$(dirname "$CONSTRAINTS")" && pwd)/$(basename "$CONSTRAINTS")"
EXTRAS="${EXTRAS:-test,plot,dask,docs}"

# the oldest Python in requires-python (>=3.11): Debian's, else pyenv's, else whatever is named
if [ -z "${PYTHON:-}" ]; then
    for candidate in python3.11 "$HOME/.pyenv/versions/3.11"*/bin/python3.11; do
        if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
    done
fi
: "${PYTHON:?no python3.11 found; set PYTHON}"

WORK="$(mktemp -d -t lower-bounds.XXXXXX)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"
started=$SECONDS

"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
# A wheel built from the work tree, so the tests exercise what `pip install` gives a user.
"$PY" -m pip install --quiet --disable-pip-version-check \
    --constraint "$CONSTRAINTS" "$REPO[$EXTRAS]"
"$PY" -m pip check

# Every pin really is what got installed (a constraint the resolver could not honour fails
# the install; this catches a package that is pinned here but not required by us any more).
"$PY" - "$CONSTRAINTS" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

wrong = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, pinned = (part.strip() for part in line.split("=="))
    try:
        got = version(name)
    except PackageNotFoundError:
        got = "not installed"
    print(f"  {name:14} {got}")
    if got != pinned:
        wrong.append(f"{name}: pinned {pinned}, installed {got}")
if wrong:
    sys.exit("lower-bound pins not installed: " + "; ".join(wrong))
EOF

# The installed copy, never the work tree: run from elsewhere to check, and call `pytest`
# (not `python -m pytest`, which would put the repo root on sys.path) from the repo.
(cd "$WORK" && "$PY" -c 'import dqref, dqinit, rmaps, sys
for m in (dqref, dqinit, rmaps):
    assert m.__file__.startswith(sys.prefix), m.__file__
print("  imports from", sys.prefix)')
echo "lower-bound venv ready in $((SECONDS - started)) s ($("$PY" --version))"

cd "$REPO"
"$VENV/bin/pytest" -q -p no:cacheprovider "$@"
echo "lower-bound suite done in $((SECONDS - started)) s"
