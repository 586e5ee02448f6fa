"""facegan: a face-generating DCGAN, trained with Keras 3 (TensorFlow or JAX) and served over
TensorFlow Serving's gRPC and REST APIs.

The top-level modules import no facegan package (an import-linter contract):
`config.py` (frozen config dataclasses and presets), `errors.py` (errors reported as one line),
`fileio.py` (atomic writes), `seeds.py` (seed lists), `images.py` (grids, PNG, GIF),
`sampling.py` (`seed_to_z`, `to_uint8`), `versions.py` (which folders are versions, model names),
`layout.py` (the one place run-folder and export file names are spelled, the signature table),
`native_logs.py` (TensorFlow's native log lines off the terminal), `stopping.py` (how commands stop
on Ctrl-C and SIGTERM), `extras.py` (which extra installs which optional part). `cli.py` (the
`facegan` program) sits above them all.

The packages, down the layers: `commands/` (one module per subcommand), `gradio_demo/` (the Gradio app),
`serving/` (the server), `exporting/` (the SavedModel, ONNX, LiteRT), `training/` (networks, step, runs),
`data/` (prepare, cache, pipelines), `evaluation/` (the metrics), `client/` (the TF-free client),
`web/` (the browser's side: seed -> z in JavaScript), and `api/` (the Python API the commands call).

The API's names are attributes of this package, loaded on first use, so `import facegan` stays
cheap and free of TensorFlow: `facegan.train(...)`, `facegan.Run`, `facegan.export(...)`,
`facegan.serve(...)`, `facegan.evaluate(...)`, `facegan.project(...)`, `facegan.FaceClient`, ...
(docs/api.md).
"""

import importlib

__version__ = "0.1.0"

# name -> the module that defines it (imported by __getattr__ the first time the name is used)
_LAZY = {
    **dict.fromkeys(
        (
            "Animation",
            "ExportedModel",
            "Networks",
            "Projection",
            "Run",
            "Serving",
            "evaluate",
            "export",
            "grid",
            "networks",
            "project",
            "real_faces",
        ),
        "facegan.api",
    ),
    **dict.fromkeys(("serve", "slerp", "train"), "facegan.api"),
    "demo": "facegan.api.demo",
    **dict.fromkeys(["FaceClient", "RestClient", "ServingError", "connect"], "facegan.client"),
    "LocalFaces": "facegan.client.local",
    "UsageError": "facegan.errors",
}
_RENAMED = {"hide_native_logs": ("facegan.native_logs", "hide")}  # TensorFlow's C++ log lines off a notebook
__all__ = ["__version__", *_LAZY, *_RENAMED]


def __getattr__(name: str):
    module, attribute = _RENAMED.get(name, (_LAZY.get(name), name))
    if module is None:
        raise AttributeError(f"module 'facegan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
