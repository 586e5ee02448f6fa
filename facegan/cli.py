"""The `facegan` command: parse, validate, dispatch. Each subcommand lives in facegan/commands/."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from facegan import extras, stopping
from facegan.client.errors import ServingError
from facegan.commands import demo, evaluate, export, generate, prepare, project, sample, serve, status, train, web
from facegan.errors import NonFiniteLossError, UsageError

EXIT_USAGE = 2  # bad arguments or data: one line on stderr, no traceback
EXIT_FAILED = 1  # a run that started correctly and then failed (e.g. non-finite loss)
COMMANDS = {
    "prepare": prepare,
    "train": train,
    "sample": sample,
    "export": export,
    "evaluate": evaluate,
    "serve": serve,
    "generate": generate,
    "project": project,
    "status": status,
    "demo": demo,
    "web": web,
}
EXAMPLES = """
    facegan train                      # fast32: the embedded LFW faces, about 4 minutes on 2 CPU cores
    facegan sample --run runs/00000-fast32 --seeds 0-15 --out faces --grid
    facegan prepare --src img_align_celeba.zip --res 64 --out data/faces64.npz
    facegan train --preset celeba64 --data data/faces64.npz
"""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _examples(text: str) -> dict:
    return {
        "epilog": "examples:\n" + textwrap.indent(textwrap.dedent(text).strip(), "  "),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def build_parser() -> argparse.ArgumentParser:
    from facegan import __version__

    p = Parser(
        prog="facegan", description="Train, export, serve and demo a face-generating GAN.", **_examples(EXAMPLES)
    )
    p.add_argument("--version", action="version", version=f"facegan {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, command in COMMANDS.items():
        s = sub.add_parser(name, help=command.HELP, **_examples(command.EXAMPLES))
        command.add_arguments(s)
        s.add_argument(
            "--verbose", action="store_true", help="also show TensorFlow's native log lines (also: FACEGAN_VERBOSE=1)"
        )
        s.set_defaults(func=command.run)
    return p


def main(argv: list[str] | None = None, as_program: bool = False) -> int:
    args = build_parser().parse_args(argv)
    if as_program and not (args.verbose or os.environ.get("FACEGAN_VERBOSE")):
        from facegan import native_logs

        native_logs.hide()
    if as_program:
        stopping.stop_on_signals()
    try:
        try:
            return args.func(args) or 0
        finally:
            # The command is over: from here a stop signal (a script's trap sending SIGTERM after its
            # Ctrl-C) ends the program quietly, also while it reports below how the command ended.
            if as_program:
                stopping.exiting()
    except UsageError as e:
        print(f"facegan {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as e:  # an optional part that this install lacks: name its extra
        line = extras.explain(e)  # MissingExtra too: the command already says what needed it
        if line is None:
            raise
        print(f"facegan {args.command}: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (NonFiniteLossError, ServingError) as e:  # started well, then failed: a diverged run, a server's error
        print(f"facegan {args.command}: failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (stopping.Stop) before the command's own handling
        print(f"facegan {args.command}: interrupted", file=sys.stderr)
        return stopping.exit_status(e)


def entry() -> int:
    """The `facegan` program. As a program it owns the process's stderr, so it may filter
    TensorFlow's native log lines there, and its signals, so Ctrl-C and SIGTERM stop it even where
    it started with SIGINT ignored (facegan/stopping.py); `main()` called from Python code leaves
    both alone."""
    return main(as_program=True)


if __name__ == "__main__":
    sys.exit(entry())
