"""How facegan's commands stop: Ctrl-C (SIGINT) and SIGTERM, whatever the process inherited.

A POSIX shell starts a script's background jobs (`facegan demo &`) with SIGINT ignored, and
Python keeps an ignored SIGINT as it found it, so such a process never heard the terminal's
Ctrl-C and outlived the script that started it. Commands therefore install their handlers
explicitly: both signals raise `Stop` (a KeyboardInterrupt, so the libraries' own Ctrl-C paths,
Gradio's among them, close cleanly) in the main thread, and a command that must drain or save
first (serve, train) replaces the handler with its own for its lifetime.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
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


def sleep_until(event: threading.Event, poll_s: float = 0.5) -> None:
    """Block the main thread until `event` is set, waking every `poll_s`. A process-directed signal
    may be delivered to any thread (gRPC's, TensorFlow's); its Python handler then runs only when
    the main thread next runs bytecode, and an untimed wait never does: Ctrl-C went unheard."""
    while not event.wait(poll_s):
        pass


def _exit_now(signum, frame):
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: exit all the same
            stream.flush()
    os._exit(128 + signum)


def exiting() -> None:
    """The command is over (returned, failed or stopped) and the interpreter is shutting down: a
    stop signal now ends the process at once and quietly, instead of raising `Stop` inside whatever
    runs at exit (a library's atexit hook, a thread being joined), where Python prints it as a
    traceback. A script's trap that sends SIGTERM after its Ctrl-C lands exactly there."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _exit_now)


def exit_status(error: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + getattr(error, "signum", signal.SIGINT)
