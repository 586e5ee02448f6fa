"""Training: data preparation, the two networks, the GAN train step and the run loop."""
