"""Ultralytics-style ``key=value`` arguments for argparse command lines, next to ``--key value``."""

from __future__ import annotations

import argparse
import re
import sys


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--long`` option of ``parser`` and of its sub-commands."""
    found = set()
    for action in parser._actions:  # argparse keeps no public list of its options
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= option_strings(sub)
    return found


def key_value_to_options(argv: list[str] | None, parser: argparse.ArgumentParser) -> list[str]:
    """Rewrite the ``key=value`` tokens of ``argv`` (default ``sys.argv[1:]``) that name an option as ``--key=value``.

    ``max_frames=30`` and ``max-frames=30`` both become ``--max-frames=30``; tokens that name no option (a file
    called ``a=b.mp4``, a pass-through Ultralytics key) are left as they are.
    """
    known = option_strings(parser)
    out = []
    for token in sys.argv[1:] if argv is None else argv:
        key, eq, value = token.partition("=")
        spelled = [f"--{key.replace('_', '-')}", f"--{key}"] if eq and key and not token.startswith("-") else []
        option = next((o for o in spelled if o in known), None)
        out.append(f"{option}={value}" if option else token)
    return out


def plain_description(docstring: str) -> str:
    """A command's ``--help`` description: the first line of its module docstring, as plain text.

    argparse prints a description verbatim, so the reStructuredText inline literals of a docstring would show as
    double backquotes. A leading "``yolo-fasternet name``:" label is dropped too: the usage line names the program.
    """
    first = docstring.strip().splitlines()[0]
    first = re.sub(r"^``[^`]+``:\s*", "", first).replace("``", "")
    return first[:1].upper() + first[1:]
