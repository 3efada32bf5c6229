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
  # pip's own output goes to a log, shown only if the install fails
  if ! { .venv/bin/python -m pip install -q --upgrade pip \
         && .venv/bin/python -m pip install -q -e ".[dev,dali]"; } > .venv/pip-install.log 2>&1; then  # DALI: its CPU pipelines run in the tests
    cat .venv/pip-install.log; echo "setup: pip install failed (log above, also in .venv/pip-install.log)"; exit 1
  fi
  touch .venv/.fastgan-installed
fi
echo "== ready: $(.venv/bin/python -c 'import torch, accelerate; print("torch", torch.__version__, "accelerate", accelerate.__version__)')"
