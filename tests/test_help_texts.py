"""Every command's --help is plain text: no reStructuredText markup copied from a docstring shows verbatim."""

from __future__ import annotations

import re

import pytest

from yolo_fasternet.apps.arguments import plain_description
from yolo_fasternet.cli import COMMANDS, main

# Inline literals (``x``), roles (:class:`x`) and a trailing "::" literal-block marker are docstring markup that
# argparse would print as typed.
RST_MARKUP = re.compile(r"``|:[a-z]+:`|::$", re.M)
SUBCOMMANDS = {"weights": ["list", "info", "load", "convert"]}  # commands whose sub-commands have their own --help


def help_text(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [[name] for name in sorted(COMMANDS)] + [[name, sub] for name, subs in SUBCOMMANDS.items() for sub in subs]
)
def test_help_shows_no_rst_markup(argv, capsys):
    text = help_text(argv, capsys)
    assert text.startswith(f"usage: yolo-fasternet {argv[0]}")
    found = RST_MARKUP.findall(text)
    assert not found, f"yolo-fasternet {' '.join(argv)} --help shows markup: {found}"


def test_top_level_help_shows_no_rst_markup(capsys):
    assert main(["--help"]) == 0
    assert not RST_MARKUP.search(capsys.readouterr().out)


def test_plain_description_drops_the_label_and_the_literals():
    doc = '"""``yolo-fasternet graft``: derive a ``yolo11n.yaml`` by substitution.\n\nMore text.\n"""'.strip('"')
    assert plain_description(doc) == "Derive a yolo11n.yaml by substitution."
