"""The training engine: the GAN step, the loop around it, and what they keep."""
