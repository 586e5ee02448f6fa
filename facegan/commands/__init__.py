"""The `facegan` subcommands. Each module holds one command: its help and examples, its options
(`add_arguments`) and its handler (`run`), which validates and dispatches. Modules import nothing
heavy at the top, so `facegan --help` and bad flags answer before TensorFlow loads.

`prepare.py`, `train.py`, `sample.py`, `evaluate.py`,
`export.py`, `serve.py`, `generate.py`, `project.py`, `status.py`, `demo.py`, `web.py`; `common.py` holds
what several share (seed lists, the options that pick a server).
"""
