"""What needs a CUDA GPU (marked gpu, skipped without one): scripts/gpu-check.sh runs them with pytest -m gpu."""
