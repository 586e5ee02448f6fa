"""Keep TensorFlow's and XLA's native log lines off a user's terminal.

On a CPU-only machine, TensorFlow 2.21 writes lines such as "Could not find cuda drivers",
"E0000 ... failed call to cuInit: INTERNAL: CUDA error" and oneDNN notices straight to file
descriptor 2 from C++, before absl logging is initialised: TF_CPP_MIN_LOG_LEVEL no longer
silences them (measured: levels 2 and 3 both still print them). A new user reads them as
failures. `hide()` points descriptor 2 at a pipe whose reader drops lines in absl's format
(severity letter, date, time, thread, file:line]) and forwards everything else; Python's own
stderr (facegan's messages, progress bars, tracebacks, logging) is moved to a duplicate of
the original descriptor and never passes through the filter. Fatal (F) lines are always kept.
In a notebook, `facegan.hide_native_logs()` does the same for the kernel's captured output.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import sys
import threading

# "I0000 00:00:1795815501.368716    3186 port.cc:153] ..." (absl) and its pre-initialisation notice
NATIVE_LINE = re.compile(rb"^[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+:\d+\] ")
DROPPED = (
    b"WARNING: All log messages before absl::InitializeLog()",  # "... is called are written to STDERR"
    b"To enable the following instructions:",  # the second line of cpu_feature_guard's notice
)

_installed = False


def is_native_noise(line: bytes) -> bool:
    return bool(NATIVE_LINE.match(line)) or line.startswith(DROPPED)


def _forward(read_fd: int, write_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_native_noise(line))
            if kept:
                os.write(write_fd, kept)
        if pending and not is_native_noise(pending):
            os.write(write_fd, pending)


def _python_writes_to_descriptor_2() -> bool:
    """Whether sys.stderr is a file on descriptor 2 (a program), not a Jupyter kernel's stream."""
    try:
        return isinstance(sys.stderr, io.TextIOWrapper) and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def hide() -> None:
    """Filter descriptor 2 for the rest of the process (idempotent). In a Jupyter kernel, which
    captures descriptor 2 itself and gives Python its own stream, only the descriptor is filtered."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.stderr.flush()
    original = os.dup(2)
    read_fd, write_fd = os.pipe()
    move_python = _python_writes_to_descriptor_2()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    if move_python:
        sys.stderr = os.fdopen(
            os.dup(original), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace"
        )
    reader = threading.Thread(target=_forward, args=(read_fd, original), name="facegan-native-logs", daemon=True)
    reader.start()

    def restore() -> None:
        os.dup2(original, 2)  # closes the pipe's last writer: the reader drains what is left and ends
        reader.join(timeout=1.0)

    atexit.register(restore)
