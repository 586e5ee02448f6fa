"""Error types that the CLI reports as one line with exit status 2 (bad input, never a bug)."""


class UsageError(ValueError):
    """Bad arguments, files or data: the user can fix it; no traceback is shown."""


class ConfigError(UsageError):
    """A configuration value that can never work."""


class DataError(UsageError):
    """Missing, empty or corrupt data."""


class CheckpointError(UsageError):
    """A missing, corrupt or mismatched checkpoint."""


class NonFiniteLossError(RuntimeError):
    """Training diverged (NaN/inf loss); the last good checkpoint is kept. Exit status 1."""
