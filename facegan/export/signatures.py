"""The exported graph: a trained generator behind two named serving signatures.

`serving_default`: z float32 [-1, latent_dim] -> images uint8 [-1, H, W, 3]
`from_seed`:       seed int64 [-1] -> images uint8 [-1, H, W, 3], z float32 [-1, latent_dim]
`from_seed_png`:   seed int64 [-1] -> image_bytes string [-1]: each face PNG-encoded in the graph
`project`:         image uint8 [1, H, W, 3] -> z float32 [1, latent_dim], images uint8 [1, H, W, 3],
                   loss float32 [1]: the closest face the generator makes (facegan.export.projection),
                   in DEFAULT_STEPS steps
`project_steps`:   the same with steps int32 [] (1..MAX_STEPS; outside: INVALID_ARGUMENT)
(TF Serving requires every input of a signature, so "steps optional" is two signatures.)

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

from facegan.export import projection
from facegan.sampling import seed_to_z, to_uint8


def build_archive(generator: keras.Model) -> keras.export.ExportArchive:
    latent_dim = int(generator.input_shape[-1])

    def serving_default(z):
        return {"images": to_uint8(generator(z, training=False))}

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

    image_spec = tf.TensorSpec([1, resolution, resolution, 3], tf.uint8, name="image")
    archive = keras.export.ExportArchive()  # no track(generator): see above
    archive.add_endpoint(
        "serving_default", serving_default, input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, name="z")]
    )
    archive.add_endpoint("from_seed", from_seed, input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])
    archive.add_endpoint("from_seed_png", from_seed_png, input_signature=[tf.TensorSpec([None], tf.int64, name="seed")])
    archive.add_endpoint("project", project, input_signature=[image_spec])
    archive.add_endpoint(
        "project_steps", project_steps, input_signature=[image_spec, tf.TensorSpec([], tf.int32, name="steps")]
    )
    return archive
