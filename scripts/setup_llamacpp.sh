#!/usr/bin/env bash
# Builds the llama.cpp server venv (.venv-llamacpp) for `curate serve-model --backend llamacpp`.
#
# Optional: vLLM is the default backend. llama-cpp-python compiles llama.cpp from
# source (about 3.5 min on 2 cores); GGML_NATIVE=OFF keeps the binary portable to
# CPUs other than the build machine's. Idempotent.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${LLAMACPP_VENV:-.venv-llamacpp}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp.server" >/dev/null 2>&1; then
  echo "setup_llamacpp: $VENV already has llama-cpp-python" >&2
  exit 0
fi
echo "setup_llamacpp: building llama-cpp-python[server] in $VENV (several minutes)" >&2
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$VENV/bin/pip" install --quiet 'llama-cpp-python[server]'
"$VENV/bin/python" -c "import llama_cpp; print('setup_llamacpp: llama-cpp-python', llama_cpp.__version__, 'ready in $VENV')" >&2
