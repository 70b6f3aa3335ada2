#!/usr/bin/env bash
# Fill benchmarks/wheels/ (ignored by git) for benchmarks/gpu_check.sh on a bare GPU machine:
# Python 3.12 with its own PyTorch (torch, numpy, opencv, matplotlib, rich, transformers, pytest
# ... are there), no network, at most 64 MiB carried (the working tree counts too).
#
#   bash benchmarks/gpu_check_wheels.sh
#
# - the OpenMMLab packages and the small pure-Python packages they import that such a machine
#   lacks, downloaded for Python 3.12 (all are py3-none-any);
# - mmcv 2.1.0 built here from its sdist WITHOUT ops (MMCV_WITH_OPS=0 gives the pure-Python
#   "mmcv-lite" wheel; no mmcv wheel exists for Python 3.12 + this PyTorch, and addp_mm needs no
#   mmcv op);
# - the two conformance fixtures packed (benchmarks/gpu_check_fixtures.py): the first
#   $GPU_CHECK_IMAGES images (default 1) of each, compressed.
# mmagic is carried, but the GPU check imports only its registry, structures and data
# preprocessor: the rest of mmagic (diffusers, lpips, albumentations, ...) is not needed to sample.
# Environment: PYTHON (default .venv/bin/python), GPU_CHECK_WHEELS (default benchmarks/wheels),
# FIXTURES (default ../shared/fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
out=${GPU_CHECK_WHEELS:-benchmarks/wheels}
fixtures=${FIXTURES:-../shared/fixtures}
limit_mib=64
mkdir -p "$out"
rm -f "$out"/*.whl

"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$out" \
  mmengine==0.10.7 mmpretrain==1.2.0 mmagic==1.2.0 \
  addict==2.4.0 yapf==0.43.0 termcolor==3.3.0 platformdirs==4.14.8 \
  importlib_metadata==10.2.0 lazy-importer==0.1.0 model-index==0.1.11 ordered-set==4.1.0

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
"$PYTHON" -m pip download -q --no-deps --no-binary=:all: -d "$build" mmcv==2.1.0
MMCV_WITH_OPS=0 "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$out" \
  "$build"/mmcv-2.1.0.tar.gz

# (with this checkout's addp_mm, as gpu_check.sh runs it)
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" benchmarks/gpu_check_fixtures.py pack \
  "$fixtures/addp_reference" "$fixtures/addp_reference_c" --images "${GPU_CHECK_IMAGES:-1}" \
  -o "$out/fixtures.pt"

# what a GPU call carries: the working tree git would send (tracked + untracked, not ignored)
# and this folder
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null \
  | tail -1 | cut -f1)
carried=$(du -cb "$out" | tail -1 | cut -f1)
total=$((tree + carried))
ls -la "$out"
awk -v t="$tree" -v c="$carried" -v o="$out" -v l="$limit_mib" 'BEGIN {
  printf "working tree %.1f MiB + %s %.1f MiB = %.1f MiB carried (limit %d MiB)\n",
         t / 1048576, o, c / 1048576, (t + c) / 1048576, l }'
if [ "$total" -gt $((limit_mib * 1048576)) ]; then
  echo "over the $limit_mib MiB a GPU call may carry: use GPU_CHECK_IMAGES=1" >&2
  exit 1
fi
