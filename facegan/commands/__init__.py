"""The `facegan` subcommands. Each module holds one command: its help and examples, its options
(`add_arguments`) and its handler (`run`), which validates and dispatches. Modules import nothing
heavy at the top, so `facegan --help` and bad flags answer before TensorFlow loads."""
