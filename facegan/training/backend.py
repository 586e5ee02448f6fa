"""Which backend trains, chosen once: TensorFlow (`fit()` around the two-tape step) or JAX (a
jitted step, facegan.training.jax_step).

Keras picks its backend at import (KERAS_BACKEND). `Backend.current()` reads it once, and
everything in a run that differs by backend asks that object: the distribution strategy, XLA,
the mixed-precision policy, the input pipeline, where this process stands in a multi-host job,
and the loop that trains.
"""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
from dataclasses import dataclass

from facegan.config import Config
from facegan.errors import ConfigError
from facegan.training import cluster, cpu


@dataclass(frozen=True)
class Backend:
    name: str  # keras.backend.backend(): "tensorflow" or "jax"

    @classmethod
    def current(cls) -> Backend:
        import keras

        return cls(keras.backend.backend())

    @property
    def jax(self) -> bool:
        return self.name == "jax"

    def tensorflow_gpu(self) -> bool:
        """TensorFlow with a GPU: what XLA's and float16's defaults depend on."""
        if self.jax:
            return False
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))

    def strategy(self, name: str):
        """A tf.distribute strategy (TensorFlow) or a keras.distribution (JAX: "data-parallel")."""
        import keras

        if self.jax:
            if name not in ("default", "data-parallel"):
                raise ConfigError(f"strategy {name!r} is TensorFlow's; on JAX use data-parallel")
            return keras.distribution.DataParallel() if name == "data-parallel" else None
        if name == "data-parallel":
            raise ConfigError("strategy data-parallel is for KERAS_BACKEND=jax; on TensorFlow use mirrored")
        import tensorflow as tf

        if name == "mirrored":
            # All local GPUs, or else every logical CPU device (how the tests run it on 2 CPUs).
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            return tf.distribute.MirroredStrategy([d.name for d in devices])
        if name == "multiworker":
            return tf.distribute.MultiWorkerMirroredStrategy()  # cluster from TF_CONFIG
        return tf.distribute.get_strategy()

    def jit_compile(self, xla: bool | None) -> bool:
        """fit()'s jit_compile: XLA on TensorFlow when asked (by default on GPUs only: on CPUs
        TensorFlow's oneDNN kernels ran this network faster); never on JAX, whose step jits itself."""
        if self.jax:
            return False
        return self.tensorflow_gpu() if xla is None else xla

    def mixed_policy(self, mixed: bool | None) -> str | None:
        """The mixed dtype policy for the config's `mixed_precision`, or None for float32. True:
        float16 on a TensorFlow GPU (the TF step scales its loss), bfloat16 elsewhere. None
        ("auto"): only where the hardware computes it natively -- a GPU, or a CPU with bfloat16
        instructions (facegan.training.cpu); never where a CPU would emulate it."""
        if mixed is None:
            mixed = self.gpu() or cpu.cpu_info().native_bfloat16
        if not mixed:
            return None
        return "mixed_float16" if self.tensorflow_gpu() else "mixed_bfloat16"

    def gpu(self) -> bool:
        """Whether this backend trains on a GPU."""
        if self.jax:
            import jax

            return jax.default_backend() == "gpu"
        return self.tensorflow_gpu()

    @contextmanager
    def precision_policy(self, mixed: bool | None):
        """Keras's dtype policy is process-wide: set it for this run only (see `mixed_policy`)."""
        import keras

        previous = keras.config.dtype_policy()
        policy = self.mixed_policy(mixed)
        if policy:
            keras.config.set_dtype_policy(policy)
        try:
            yield keras.config.dtype_policy().name
        finally:
            keras.config.set_dtype_policy(previous)

    def batches(self, images, batch_size: int, seed: int, flip: bool, first_epoch: int, epochs: int):
        """(an iterator of batches, steps per epoch): tf.data on TensorFlow, NumPy on JAX."""
        from facegan.data.pipeline import make_dataset, numpy_batches

        data = numpy_batches if self.jax else make_dataset
        return data(images, batch_size, seed, flip, first_epoch, epochs)

    def task(self, cfg: Config) -> cluster.Task:
        """Where this process stands in a multi-host job (a single-process task otherwise)."""
        if self.jax:
            return cluster.initialize_jax() or cluster.Task("process", 0, True, 1)
        if cfg.train.strategy == "multiworker":
            return cluster.tf_task()
        return cluster.Task("worker", 0, True, 1)

    def fit(self, gan, batches, steps: int, first_epoch: int, epochs: int, callbacks: list, strategy) -> None:
        """Train from `first_epoch` to `epochs` with the callbacks: fit() on TensorFlow (outside the
        strategy's scope, so callbacks read mirrored variables as plain arrays), the jitted step on
        JAX (inside the distribution's scope, which shards each batch across devices)."""
        if self.jax:
            from facegan.training.jax_step import fit_jax

            with scope(strategy):
                fit_jax(gan, batches, steps, first_epoch, epochs, callbacks, placement(strategy))
            return
        gan.fit(
            batches,
            epochs=epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )


def scope(strategy):
    """The strategy's or distribution's scope; nothing to enter for the default."""
    return strategy.scope() if strategy else contextlib.nullcontext()


def replicas(strategy) -> int:
    if strategy is None:
        return 1
    return getattr(strategy, "num_replicas_in_sync", None) or len(strategy.device_mesh.devices.ravel())


def placement(strategy):
    """How a JAX batch reaches the devices: sharded along the batch under DataParallel, else as it is."""
    import keras

    if strategy is None:
        return lambda x: x
    return lambda x: keras.distribution.distribute_tensor(x, strategy.get_data_layout(x.shape))
