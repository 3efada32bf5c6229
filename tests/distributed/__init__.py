"""2 gloo processes on the CPU under accelerate launch or torchrun (marked ddp), and the scripts they run by path:
ddp_worker.py (steps of the trainer, then each process dumps its weights), fault_cli.py (the CLI with a fault injected)
and offline_cli.py (the CLI with torchvision's CIFAR10 faked, recording who opened it when)."""
