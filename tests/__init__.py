"""fastgan's tests, by what they run:

    unit/         functions and classes in process (models, losses, config, data, metrics, the step, ...)
    cli/          the real fastgan CLI, in process (CliRunner) or as one subprocess
    distributed/  2 gloo processes under accelerate launch / torchrun (marked ddp), and the scripts they launch
    gpu/          what needs CUDA (marked gpu; scripts/gpu-check.sh runs pytest -m gpu)

Helpers tests import are in support.py; fixtures and hooks in conftest.py; fixtures/ holds data
files (run folders of an earlier fastgan).
"""
