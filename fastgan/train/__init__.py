"""What makes one training step and the loop of steps: the networks and what trains them
(`nets`), the step (`step`), lazy R1/R2 (`lazy_reg`), G_ema (`ema`), the ganhacks tricks
(`tricks`), latents (`latents`), assembly from a config (`build`) and the loop (`loop`).
Nothing here knows about run folders: the run layer (fastgan.run) hands the loop its tasks."""
