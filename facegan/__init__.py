"""facegan: a face-generating DCGAN, trained with Keras 3 (TensorFlow or JAX) and served over
TensorFlow Serving's gRPC and REST APIs.

The top-level modules import no facegan package (an import-linter contract):
`config.py` (frozen config dataclasses and presets), `errors.py` (errors reported as one line),
`fileio.py` (atomic writes), `seeds.py` (seed lists), `images.py` (grids, PNG, GIF),
`sampling.py` (`seed_to_z`, `to_uint8`), `versions.py` (which folders are versions, model names),
`layout.py` (the one place run-folder and export file names are spelled, the signature table),
`native_logs.py` (TensorFlow's native log lines off the terminal), `cli.py` (the `facegan` program).

The packages, down the layers: `commands/` (one module per subcommand), `demo/` (the Gradio app),
`serving/` (the server), `export/` (the SavedModel), `training/` (networks, step, runs),
`data/` (prepare, cache, pipelines), `evaluation/` (the metrics), `client/` (the TF-free client),
`web/` (the browser's side: seed -> z in JavaScript).
"""

__version__ = "0.1.0"
