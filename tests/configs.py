"""Configs the tests train with (a plain module, so tests/training/jax/ can import it too)."""


def tiny_config(epochs: int = 2, **train):
    """lfw32 on the embedded faces, cut down to seconds on a 2-core CPU."""
    from facegan.config import PRESETS

    return PRESETS["lfw32"].override(
        train={"epochs": epochs, "batch_size": 16, **train}, preview={"rows": 2, "cols": 3, "margin": 2}
    )
