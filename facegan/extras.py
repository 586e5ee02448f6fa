"""Which extra installs which optional part: one table, so a missing one is one line naming it.

`pip install facegan` is the client alone (gRPC and REST calls, `generate`, `status`,
`project --server`): NumPy, Pillow, grpcio and protobuf. Everything else is an extra of
pyproject.toml's, and EXTRA_OF names the extra for each module the code imports from one
(tests/test_extras.py checks this table against pyproject.toml). The `facegan` program turns a
ModuleNotFoundError for one of these modules into `facegan CMD: error: ... pip install 'facegan[X]'`
(exit 2); the Python API's entry points (`explained`) and `require` raise MissingExtra, a
ModuleNotFoundError with the same words.
"""

from __future__ import annotations

EXTRA_OF = {  # top-level module -> the extra that installs it
    # tf: the TensorFlow side (prepare, train, sample, export, evaluate, serve)
    **dict.fromkeys(
        (
            "tensorflow",
            "keras",
            "tensorflow_serving",
            "skimage",
            "threadpoolctl",
            "tqdm",
            "tensorboardX",
            "prometheus_client",
            "waitress",
            "grpc_health",
        ),
        "tf",
    ),
    "gradio": "demo",  # facegan demo
    "cv2": "metrics",  # the face rate (OpenCV's Haar cascade)
    "onnxruntime": "local",  # LocalFaces: faces from the ONNX export without a server
    **dict.fromkeys(("tf2onnx", "onnx", "ai_edge_litert"), "portable"),  # export --format onnx|litert
    "jax": "jax",  # KERAS_BACKEND=jax
    "tensorboard": "tensorboard",  # the viewer
    **dict.fromkeys(("ipywidgets", "matplotlib"), "notebook"),  # notebooks/facegan.ipynb
}


class MissingExtra(ModuleNotFoundError):
    """An optional part's module is not installed; the message names the extra that installs it."""


def install(extra: str) -> str:
    return f"pip install 'facegan[{extra}]'"


def explain(error: ModuleNotFoundError) -> str | None:
    """One line for a missing optional module, or None when `error` is about anything else."""
    top = (error.name or "").partition(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return f"{top} is not installed (the {extra} extra): {install(extra)}"


def explained(function):
    """The Python API's entry points: a missing optional module becomes MissingExtra naming its extra."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except MissingExtra:
            raise
        except ModuleNotFoundError as e:
            line = explain(e)
            if line is None:
                raise
            raise MissingExtra(f"facegan.{function.__name__}: {line}", name=e.name) from None

    return wrapper


def require(module: str, what: str):
    """Import `module` for `what`, or raise MissingExtra naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        line = explain(e)
        if line is None:
            raise
        raise MissingExtra(f"{what}: {line}", name=e.name) from None
