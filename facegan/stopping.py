"""How facegan's commands stop: Ctrl-C (SIGINT) and SIGTERM, whatever the process inherited.

A POSIX shell starts a script's background jobs (`facegan demo &`) with SIGINT ignored, and
Python keeps an ignored SIGINT as it found it, so such a process never heard the terminal's
Ctrl-C and outlived the script that started it. Commands therefore install their handlers
explicitly: both signals raise `Stop` (a KeyboardInterrupt, so the libraries' own Ctrl-C paths,
Gradio's among them, close cleanly) in the main thread, and a command that must drain or save
first (serve, train) replaces the handler with its own for its lifetime.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop(KeyboardInterrupt):
    """A stop signal arrived; `signum` says which (exit status 128 + signum, as a shell reports)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum, frame):
    raise Stop(signum)


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM raise `Stop` in the main thread from now on (a no-op off the main
    thread, where Python cannot install handlers)."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_stop)


def exit_status(error: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + getattr(error, "signum", signal.SIGINT)
