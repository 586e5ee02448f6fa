"""How good are the faces: sliced Wasserstein distance, memorization, discriminator accuracy."""
