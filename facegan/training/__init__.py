"""Training: `layers.py` and `models.py` (the two networks), `losses.py` (backend-neutral losses,
R1, EMA), `schedule.py` (the learning rate's linear tail), `augment.py` (DiffAugment), `ada.py`
(adaptive augmentation), `step.py` (the step's forward and logs, once for both backends), `gan.py`
(the two-tape TensorFlow step), `jax_step.py` (the JAX step: `jax.vjp`), `backend.py` (the
backend, chosen once), `cpu.py` (the CPU's model, cores and bfloat16), `checkpoints.py`,
`callbacks.py` (progress, reports, previews, checkpoints), `display.py` (which progress display,
checked before Keras loads), `notebook.py` (the display in Jupyter and Colab), `tensorboard.py`,
`cluster.py` (several hosts) and `run.py` (run folders, `train(cfg)`).
"""
