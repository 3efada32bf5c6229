# fastgan GPU image: CUDA 13 runtime, PyTorch, NVIDIA DALI and fastgan, for accelerate launch.
#   docker build -t fastgan .
#   docker run --gpus all --ipc=host -v "$PWD/runs:/app/runs" fastgan train configs/fashion-dcgan.toml
#   docker run --gpus all --ipc=host -v "$PWD/runs:/app/runs" --entrypoint accelerate fastgan \
#     launch --config_file launch/multi-gpu.yaml -m fastgan train configs/mnist-dcgan.toml --set train.precision=bf16
# --ipc=host: DataLoader workers and NCCL share memory through /dev/shm, which Docker keeps small.
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
# The package first, so code edits do not reinstall torch and DALI.
COPY pyproject.toml README.md ./
COPY fastgan ./fastgan
RUN pip install ".[dali,report,export]"
COPY configs ./configs
COPY launch ./launch

ENTRYPOINT ["fastgan"]
CMD ["--help"]
