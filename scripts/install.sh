#!/usr/bin/env bash
# One-command set-up of addp_mm and the OpenMMLab stack in ./.venv (idempotent).
#
#   bash scripts/install.sh        (or: make install)
#
# Steps: venv -> build tools -> torch/torchvision -> mmcv 2.1.0 built from its sdist with ops
# (cached wheel, reused on later runs) -> mmengine/mmpretrain/mmdet/mmseg/mmagic + pins -> this
# package in editable mode -> import check. A second run with unchanged requirements exits in seconds.
#
# Environment knobs:
#   PYTHON            interpreter for the venv (default: python3.11, else python3)
#   VENV              venv location (default: <repo>/.venv)
#   ADDP_MM_CACHE     where the built mmcv wheel is kept (default: ~/.cache/addp_mm)
#   MAX_JOBS          parallel compile jobs for mmcv (default: number of cores)
#   FORCE_CUDA=1/0    build mmcv's CUDA ops (default: only when nvcc and a GPU are both present)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
CACHE="${ADDP_MM_CACHE:-$HOME/.cache/addp_mm}"
WHEELS="$CACHE/wheels"
TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")
MMCV_VERSION="2.1.0"
STEP="start"

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
fail() {
  printf '\033[31m[install] FAILED at step "%s"\033[0m (exit %s). See the output above; fix and re-run: finished steps are skipped.\n' "$STEP" "$1" >&2
}
trap 'fail $?' ERR

if [[ -z "${PYTHON:-}" ]]; then
  if command -v python3.11 >/dev/null; then PYTHON=python3.11; else PYTHON=python3; fi
fi

# ----------------------------------------------------------------------------------------------
STEP="check python"
"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"addp_mm's pinned stack is tested on Python 3.11; found {sys.version.split()[0]}. "
             "Set PYTHON=/path/to/python3.11 and re-run.")
PY

STAMP="$VENV/.addp_mm_install_stamp"
stamp_value() {
  cat "$ROOT/scripts/install.sh" "$ROOT/requirements/"*.txt "$ROOT/setup.py" | sha256sum | cut -d' ' -f1
}
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(stamp_value)" ]] && "$VENV/bin/python" -c "import addp_mm, mmcv.ops" 2>/dev/null; then
  log "environment in $VENV is up to date (delete $STAMP to force a re-install)"
  exit 0
fi

# ----------------------------------------------------------------------------------------------
STEP="create venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --progress-bar off -c "$ROOT/requirements/constraints.txt")

STEP="build tools"
log "installing build tools (setuptools<81: mmcv's setup.py imports pkg_resources)"
"${PIP[@]}" -q "setuptools>=77,<81" wheel ninja packaging

STEP="torch"
if "$PY" -c "import torch, torchvision, sys; sys.exit(0 if (torch.__version__.split('+')[0], torchvision.__version__.split('+')[0]) == ('2.14.1', '0.29.1') else 1)" 2>/dev/null; then
  log "torch 2.14.1 / torchvision 0.29.1 already installed"
else
  log "installing ${TORCH_PINS[*]}"
  "${PIP[@]}" "${TORCH_PINS[@]}"
fi

# ----------------------------------------------------------------------------------------------
STEP="mmcv"
if "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(0 if mmcv.__version__ == '$MMCV_VERSION' else 1)" 2>/dev/null; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  mkdir -p "$WHEELS"
  WHEEL="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$WHEEL" ]]; then
    if [[ -z "${FORCE_CUDA:-}" ]]; then
      FORCE_CUDA=0
      if command -v nvcc >/dev/null && "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        FORCE_CUDA=1
      fi
    fi
    log "building mmcv $MMCV_VERSION from its sdist with ops (CUDA ops: $FORCE_CUDA); ~7 min on 2 cores, done once"
    BUILD="$(mktemp -d)"
    "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    # torch >= 2.10 headers refuse to compile below C++20.
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    # -O1 without debug info: the CPU kernels are small; -g -O3 makes the build ~6x slower.
    (cd "$SRC" && CFLAGS="-g0 -O1" CXXFLAGS="-g0 -O1" MMCV_WITH_OPS=1 FORCE_CUDA="$FORCE_CUDA" \
      MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel --no-build-isolation --no-deps . -w "$WHEELS.tmp")
    mv "$WHEELS.tmp"/mmcv-*.whl "$WHEELS"/ && rmdir "$WHEELS.tmp"
    rm -rf "$BUILD"
    WHEEL="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
  else
    log "reusing built wheel $WHEEL"
  fi
  "${PIP[@]}" "$WHEEL"
fi

# ----------------------------------------------------------------------------------------------
STEP="openmmlab stack"
log "installing the OpenMMLab stack and pins (requirements/mminstall.txt)"
"${PIP[@]}" --find-links "$WHEELS" -r "$ROOT/requirements/mminstall.txt" \
  -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"

STEP="addp_mm"
log "installing addp_mm in editable mode"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

STEP="import check"
"$PY" - <<'PY'
import importlib
for name in ("torch", "mmengine", "mmcv.ops", "mmpretrain", "mmdet", "mmseg", "addp_mm"):
    mod = importlib.import_module(name)
    print(f"  {name:12s} {getattr(mod, '__version__', '')}")
PY

stamp_value > "$STAMP"
log "done: activate with 'source $VENV/bin/activate'"
