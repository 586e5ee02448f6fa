"""facegan's Python API, for notebooks and scripts; `import facegan` exposes the same names.

    import facegan
    run = facegan.train(epochs=100)                # a Run: .path, .metrics, .preview(), .evolution, .faces(seeds)
    exported = run.export(base_path="models")      # an ExportedModel: .path, .version, .card
    with facegan.serve(exported) as server:        # facegan serve, in this process
        faces, z = server.client().from_seeds([0, 1, 2])

`train_options.py` (the one table of training options: keywords here, flags there),
`runs.py` (`train`, `Run`), `exports.py` (`export`, `ExportedModel`), `serving.py` (`serve`,
`Serving`), `demo.py` (`demo`: the Gradio app in this process), `faces.py` (the real faces, the
networks, grids, slerp), `evaluation.py` (`evaluate`: a run's or an export's quality report), `projection.py`
(`project`: Find a face, on a server or from a run).

The commands call these functions (`facegan train` is `train`, `facegan export` is `export`,
`facegan serve` starts a `Serving`, `facegan sample` is `Run.faces`, `facegan evaluate` is
`evaluate`, `facegan project` is `project`), so both behave alike and
raise the same one-line errors (facegan.errors.UsageError). TensorFlow loads only when a function
needs it: importing this package does not. docs/api.md is the manual.
"""

from facegan.api.evaluation import evaluate
from facegan.api.exports import ExportedModel, export
from facegan.api.faces import Networks, grid, networks, real_faces, slerp
from facegan.api.projection import Projection, project
from facegan.api.runs import Animation, Run, train
from facegan.api.serving import Serving, serve

__all__ = [
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
    "serve",
    "slerp",
    "train",
]
