#!/usr/bin/env bash
# The GPU check of issue 16 (item 5): conformance on CUDA, pre-training and generation speed.
#
#   bash benchmarks/gpu_check.sh OUT            # on the GPU machine: writes OUT/gpu_check.json
#   bash benchmarks/gpu_check.sh --dry-run OUT  # every path on the CPU at tiny size
#
# Prepared on the CPU machine: `bash benchmarks/gpu_check_wheels.sh` fills benchmarks/wheels/
# (ignored by git) with the wheels a bare Python 3.12 + PyTorch machine lacks and the packed
# conformance fixtures. Here they are installed into a temporary folder put first on PYTHONPATH
# (nothing of the machine's own packages is changed), the fixtures are unpacked, and
# benchmarks/gpu_check.py runs, within 10 minutes. Other arguments go to gpu_check.py
# (e.g. --only conformance). Environment: PYTHON (default .venv/bin/python if present, else
# python3), GPU_CHECK_WHEELS (default benchmarks/wheels), GPU_CHECK_TIMEOUT (seconds, default 570).
set -uo pipefail
cd "$(dirname "$0")/.."

dry=()
args=()
for a in "$@"; do
  case "$a" in
    --dry-run) dry=(--dry-run) ;;
    *) args+=("$a") ;;
  esac
done
if [ ${#args[@]} -lt 1 ]; then
  echo "usage: bash benchmarks/gpu_check.sh [--dry-run] OUT [gpu_check.py options]" >&2
  exit 2
fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
wheels=${GPU_CHECK_WHEELS:-benchmarks/wheels}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1

if compgen -G "$wheels/*.whl" >/dev/null; then
  echo "[gpu_check.sh] installing $(ls "$wheels"/*.whl | wc -l) wheels from $wheels into $tmp/site"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$tmp/site" "$wheels"/*.whl || exit 1
  export PYTHONPATH="$tmp/site${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "[gpu_check.sh] no wheels in $wheels: using the installed packages"
fi
# the repository root before everything: addp_mm (not installed on the GPU machine) and tests/
# (gpu_check.py reads the fixtures with tests/conftest.py; the model-index wheel installs a
# `tests` package of its own)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

fixtures=()
if [ -f "$wheels/fixtures.pt" ]; then
  echo "[gpu_check.sh] unpacking $wheels/fixtures.pt"
  "$PYTHON" benchmarks/gpu_check_fixtures.py unpack "$wheels/fixtures.pt" "$tmp/fixtures" || exit 1
  fixtures=(--fixtures "$tmp"/fixtures/*)
fi

"$PYTHON" -c "import torch; print('[gpu_check.sh] python', __import__('sys').version.split()[0], \
'torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
timeout "${GPU_CHECK_TIMEOUT:-570}" "$PYTHON" benchmarks/gpu_check.py "${dry[@]}" \
  "${args[@]}" "${fixtures[@]}"
