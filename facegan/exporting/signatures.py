"""The exported graph: a trained generator behind the signatures that `facegan.layout.signature_table`
states (their inputs' specs are read from it): `serving_default` (z -> images), `from_seed`
(seed -> images, z), `from_seed_png` (seed -> PNG bytes, encoded in the graph), `project` and
`project_steps` (a photo -> the closest face the generator makes, facegan.exporting.projection;
steps outside 1..MAX_STEPS fail with INVALID_ARGUMENT).

Both trace facegan's own `seed_to_z` and `to_uint8`, so the graph reproduces `facegan sample`.
Keras's ExportArchive saves the tf.Variables that the traced signatures capture, as TensorFlow
checkpoint objects: what TF Serving's C++ loader restores (a plain tf.Module attribute does not
track Keras 3 variables that way, and the C++ loader then finds them uninitialised). The
generator is deliberately not `track()`ed as well: that adds its Keras variables as a second set
of checkpoint objects, and every weight was stored twice (15.2 MB instead of 7.6 MB at 32 px).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from facegan.exporting import projection
from facegan.layout import signature_table
from facegan.sampling import seed_to_z, to_uint8


def serving_function(generator: keras.Model):
    """z -> {"images": uint8}: `serving_default`, and the whole of the ONNX and LiteRT exports."""

    def serving_default(z):
        return {"images": to_uint8(generator(z, training=False))}

    return serving_default


def build_archive(generator: keras.Model) -> keras.export.ExportArchive:
    latent_dim = int(generator.input_shape[-1])
    serving_default = serving_function(generator)

    def from_seed(seed):
        z = seed_to_z(seed, latent_dim)
        return {"images": to_uint8(generator(z, training=False)), "z": z}

    def from_seed_png(seed):
        faces = from_seed(seed)["images"]
        # EncodePng per face (a While loop of standard kernels): a browser or `base64 -d` shows it
        pngs = tf.map_fn(tf.io.encode_png, faces, fn_output_signature=tf.TensorSpec([], tf.string))
        return {"image_bytes": pngs}

    projector = projection.make_projector(generator)
    resolution = int(generator.output_shape[1])

    def project(image):
        return projector(image, tf.constant(projection.DEFAULT_STEPS))

    def project_steps(image, steps):
        in_range = tf.logical_and(steps >= 1, steps <= projection.MAX_STEPS)
        check = tf.debugging.Assert(in_range, [f"steps must be 1..{projection.MAX_STEPS}, got", steps])
        with tf.control_dependencies([check]):
            return projector(image, tf.identity(steps))

    table = signature_table(latent_dim, resolution, projection.DEFAULT_STEPS, projection.MAX_STEPS)
    functions = {
        "serving_default": serving_default,
        "from_seed": from_seed,
        "from_seed_png": from_seed_png,
        "project": project,
        "project_steps": project_steps,
    }
    archive = keras.export.ExportArchive()  # no track(generator): see above
    for name, function in functions.items():
        archive.add_endpoint(name, function, input_signature=input_specs(table[name]))
    return archive


def input_specs(signature: dict) -> list[tf.TensorSpec]:
    """A signature's inputs as TensorSpecs, in the table's order (-1, the batch, becomes None)."""
    return [
        tf.TensorSpec([None if size == -1 else size for size in spec[1]], tf.as_dtype(spec[0]), name=key)
        for key, spec in signature["inputs"].items()
    ]
