"""The exported graph: a trained generator behind the signatures that `signature_table` states
once, for the graph (its inputs' specs are read from it), the warm-up records and the model card:
`serving_default` (z -> images), `from_seed` (seed -> images, z), `from_seed_png` (seed -> PNG
bytes, encoded in the graph), `project` and `project_steps` (a photo -> the closest face the
generator makes, facegan.exporting.projection; steps outside 1..MAX_STEPS fail with
INVALID_ARGUMENT).

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
from facegan.sampling import seed_to_z, to_uint8


def signature_table(latent_dim: int, resolution: int, default_steps: int, max_steps: int) -> dict:
    """The exported signatures: name -> inputs and outputs as {key: [dtype, shape, (range)]}, with
    -1 for the batch dimension. `project` runs `default_steps` of Adam; `project_steps` takes
    the count (TF Serving requires every input of a signature, so "steps optional" is two)."""
    face = [-1, resolution, resolution, 3]
    one_face = [1, resolution, resolution, 3]
    projection_outputs = {"z": ["float32", [1, latent_dim]], "images": ["uint8", one_face], "loss": ["float32", [1]]}
    return {
        "serving_default": {"inputs": {"z": ["float32", [-1, latent_dim]]}, "outputs": {"images": ["uint8", face]}},
        "from_seed": {
            "inputs": {"seed": ["int64", [-1]]},
            "outputs": {"images": ["uint8", face], "z": ["float32", [-1, latent_dim]]},
        },
        "from_seed_png": {"inputs": {"seed": ["int64", [-1]]}, "outputs": {"image_bytes": ["string", [-1]]}},
        "project": {"inputs": {"image": ["uint8", one_face]}, "outputs": projection_outputs, "steps": default_steps},
        "project_steps": {
            "inputs": {"image": ["uint8", one_face], "steps": ["int32", [], f"1..{max_steps}"]},
            "outputs": projection_outputs,
        },
    }


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
