"""How every command fails: an exit status and one line on stderr naming the culprit, never a raw traceback.

Exit status: 0 done; 1 failed work (a missing or broken file, a dataset, a device, a training that failed); 2 a bad
argument; 130 interrupted (Ctrl-C). The line reads ``<program>: error: <message>``. ``--verbose`` anywhere on the
command line (or ``YOLO_FASTERNET_VERBOSE=1``, which subprocesses inherit) prints the traceback before it.

Every command's ``main(argv)`` is decorated with ``@command("yolo-fasternet <name>")``; the console command, the
top-level scripts and ``python -m`` all call it, so all of them fail the same way. Errors that our modules raise
for bad input (``CommandError`` and its kinds, ``ModelYamlError``, ``BackboneWeightsError``, ``OSError``) are shown as
their message; anything else is a bug and says so, with a pointer to ``--verbose``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process ended by Ctrl-C
VERBOSE_FLAG = "--verbose"
VERBOSE_ENV = "YOLO_FASTERNET_VERBOSE"
MAX_LINES = 2  # an error message is cut to this many lines


class CommandError(Exception):
    """Failed work (exit status 1); the message names the file, layer, dataset or device at fault."""

    exit_code = EXIT_FAILED


class UsageError(CommandError):
    """A bad argument value (exit status 2); the message names the argument and the value."""

    exit_code = EXIT_USAGE


class InterruptedCommandError(CommandError):
    """Ctrl-C (exit status 130); the message says what was kept."""

    exit_code = EXIT_INTERRUPTED


def expected_errors() -> tuple[type[BaseException], ...]:
    """Raised by our modules and by the OS for bad input: the message alone tells the user what to fix.

    Imported here, not at the top: ``yolo-fasternet --help`` and an unknown command need no torch.
    """
    from ..integration.layer_errors import ModelYamlError
    from ..integration.parse_model_patch import RegistrationError
    from ..pretrained.errors import BackboneWeightsError

    return CommandError, ModelYamlError, BackboneWeightsError, RegistrationError, OSError


class CommandParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``prog: error: ... (see prog --help)``), not the usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def verbose() -> bool:
    """True where tracebacks were asked for (``--verbose`` or ``YOLO_FASTERNET_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in {"1", "true", "yes"}


def message_of(error: BaseException) -> str:
    """The first lines of an exception's message (at most ``MAX_LINES``), or its type name if it has none."""
    lines = [line.rstrip() for line in str(error).strip().splitlines() if line.strip()]
    if isinstance(error, KeyError) and len(error.args) == 1:  # str(KeyError('x')) is "'x'"
        lines = [f"KeyError {error.args[0]!r}"]
    return "\n".join(lines[:MAX_LINES]) or type(error).__name__


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, prefixed with its type: for embedding in a longer message."""
    text = message_of(error).splitlines()[0]
    return text if text.startswith(type(error).__name__) else f"{type(error).__name__}: {text}"


def program_name(default: str) -> str:
    """The program name the user typed: the script (``train_yolo.py``) or ``default`` for ``python -m``/``-c``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return default if name in {"", "-c", "-m", "__main__.py"} else name


def report(program: str, error: BaseException) -> int:
    """Print the error line (the traceback first when verbose) and return the exit status."""
    if verbose():
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    if isinstance(error, KeyboardInterrupt):
        print(f"{program}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(error, expected_errors()):
        print(f"{program}: error: {message_of(error)}", file=sys.stderr)
        return getattr(error, "exit_code", EXIT_FAILED)
    print(f"{program}: error: {first_line(error)}", file=sys.stderr)
    if not verbose():
        print(f"{program}: this looks like a bug; run with {VERBOSE_FLAG} for the traceback", file=sys.stderr)
    return EXIT_FAILED


def command(default_program: str) -> Callable:
    """Decorate a command's ``main(argv)``: ``--verbose`` handled, every failure turned into an exit status.

    ``default_program`` names the command where ``sys.argv[0]`` does not (``python -m``). argparse's own errors
    (``SystemExit``) pass through unchanged.
    """

    def decorate(main: Callable[[list[str]], int | None]) -> Callable[[list[str] | None], int]:
        @functools.wraps(main)
        def run(argv: list[str] | None = None) -> int:
            argv = list(sys.argv[1:] if argv is None else argv)
            saved_env, saved_program = os.environ.get(VERBOSE_ENV), sys.argv[0] if sys.argv else None
            if VERBOSE_FLAG in argv:
                argv = [a for a in argv if a != VERBOSE_FLAG]
                os.environ[VERBOSE_ENV] = "1"  # also for subprocesses (ablation trainings), restored below
            program = program_name(default_program)
            if sys.argv:
                sys.argv[0] = program  # argparse names the program after sys.argv[0]
            try:
                return main(argv) or 0
            except Exception as e:
                return report(program, e)
            except KeyboardInterrupt as e:
                return report(program, e)
            finally:
                if saved_program is not None:
                    sys.argv[0] = saved_program
                if saved_env is None:
                    os.environ.pop(VERBOSE_ENV, None)
                else:
                    os.environ[VERBOSE_ENV] = saved_env

        return run

    return decorate
