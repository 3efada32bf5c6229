#!/usr/bin/env bash
# Set up fastgan on a fresh machine: Fashion-MNIST from Debian (offline data), a virtual
# environment in .venv, and fastgan with its dev tools. Safe to run again: it skips done steps.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "== installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null \
    || echo "   (not installed: fastgan will fall back to a torchvision download)"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import fastgan, torch, accelerate, pytest, nvidia.dali" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.fastgan-installed ]; then
  echo "== installing fastgan and its dependencies into .venv (torch comes from local disk where present)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev,dali]"   # DALI runs its CPU pipelines in the tests
  touch .venv/.fastgan-installed
fi
echo "== ready: $(.venv/bin/python -c 'import torch, accelerate; print("torch", torch.__version__, "accelerate", accelerate.__version__)')"
