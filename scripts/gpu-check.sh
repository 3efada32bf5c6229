#!/usr/bin/env bash
# The GPU check: prove every GPU path of fastgan in one unattended command (about 8 minutes on
# one H100), or rehearse the same flow on the CPU at tiny sizes (--cpu, about a minute).
#
#   bash scripts/gpu-check.sh [--cpu] [--data DIR] [--budget SECONDS] OUT_DIR
#
# Stages, in order of value, each time-boxed: pytest -m gpu (every precision, eager and CUDA
# graphs, both D batch layouts; no host sync; no recompiles); fastgan bench ladders for the
# 28 px DCGAN and the 64 px Radford DCGAN at batch 256 (images/s, MFU, launches per step);
# about a minute of training on Fashion-MNIST then fastgan eval; DALI against the DataLoader
# when DALI is installed. OUT_DIR gets summary.md, log.txt, junit.xml, bench.json,
# details.json and the run's samples (at most 8 files). Exit code 1 when a check failed.
#
# Needs no network and installs nothing: CUDA PyTorch (2.11 or newer), accelerate, typer, rich,
# safetensors, tensorboard and matplotlib must be there. Fashion-MNIST is used when found in
# --data, data/fashion-mnist or /usr/share/datasets/fashion-mnist; otherwise a generated array.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
exec "$PY" scripts/gpu_check.py "$@"
