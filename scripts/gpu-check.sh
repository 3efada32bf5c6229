#!/usr/bin/env bash
# The GPU check: prove today's recipe on CUDA and measure fastgan against the seeds' loop in one
# unattended command (330 s by default, so two runs and a machine start fit in 15 minutes), or
# rehearse the same flow on the CPU at tiny sizes (--cpu, about 4 minutes).
#
#   bash scripts/gpu-check.sh [--cpu] [--data DIR] [--budget SECONDS] OUT_DIR
#
# Stages, in this order, with budgets that add up to the total (a stage also gets what earlier
# ones left): today's recipe on CUDA (pytest tests/gpu/test_cuda_recipe.py); the headline (the
# seeds' DCGAN loop, benchmarks/tutorial_loop.py, then fastgan bench --grid on the same model at
# batch 128); the grid on Radford's 64 px DCGAN; batch scaling of the fastest cells; cifar10-r3gan
# on a generated 32 px RGB array; about a minute of the quickstart recipe then fastgan eval; the
# older GPU tests. A stage out of time gets SIGINT, then SIGKILL after a grace. OUT_DIR gets
# summary.md (the headline ratio first, "not proven here" for what one GPU cannot show),
# log.txt, junit-recipe.xml, junit.xml, bench.json, details.json and the run's samples (at most
# 8 files). Exit code 1 when a check failed. docs/benchmarks.md describes each stage.
#
# Needs no network and installs nothing: CUDA PyTorch (2.11 or newer), torchvision, accelerate,
# typer, rich and safetensors must be there (matplotlib for plots, optional). Fashion-MNIST is
# used when found in --data, data/fashion-mnist or /usr/share/datasets/fashion-mnist; otherwise
# a generated array (and the seeds' loop, which reads Fashion-MNIST, is skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
exec "$PY" scripts/gpu_check.py "$@"
