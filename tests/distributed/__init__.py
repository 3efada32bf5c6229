"""2 gloo processes on the CPU under accelerate launch or torchrun (marked ddp), and the scripts they run by path:
ddp_worker.py (steps of the trainer, then each process dumps its weights) and fault_cli.py (the CLI with a fault injected)."""
