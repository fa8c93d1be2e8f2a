"""Every message the docs quote is made of the code's own text: no quoted error line is typed from memory.

``docs/errors.md``'s examples are produced by running the commands (``test_docs_errors.py``). The other pages quote
messages inline (``model x.onnx: not an ONNX model (...)``); this test finds those quotes (code spans that read as a
message: four words or more, a word such as "not", "cannot" or "missing", not a command line) and checks each
against the string literals of the package: every plain word of the quote longer than three letters must lie inside
a piece of literal text the code prints. Names and values (files, layers, numbers, quoted identifiers) are the
example's own; short joining words come from interpolated values (``not {kind} model``). A quote whose wording
drifts from the code, or a message the code does not have, fails here.
"""

from __future__ import annotations

import ast
import errno
import os
import re
from functools import cache

import pytest

from conftest import REPO

PAGES = sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "errors.md") + [REPO / "README.md"]
SOURCES = [*(REPO / "plugins").rglob("*.py"), *(REPO / name for name in ("train_yolo.py", "detect_yolo.py"))]
SOURCES += [REPO / "ablate_yolo.py"]
MESSAGE_WORD = re.compile(r"\b(error|not|cannot|missing|no such|unknown|needs|refused|fails?|must)\b")
COMMAND = re.compile(r"(yolo|python|pip|make|ultralytics|import|from|\$)\b")
# Text a message passes on from outside the package: what the operating system says (``os.strerror``).
OUTSIDE_TEXT = {os.strerror(errno.ECONNREFUSED)}  # "Connection refused", in the Ray address message
PLAIN_WORD = re.compile(r"[a-z]{4,}")  # a word the code must have said (shorter ones join interpolated values)


def quoted_messages(text: str) -> list[str]:
    """The inline code spans of a page (outside code blocks) that read as a printed message."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = (" ".join(m[1].split()) for m in re.finditer(r"`([^`]+)`", prose))
    return [s for s in spans if MESSAGE_WORD.search(s) and len(s.split()) >= 4 and not COMMAND.match(s)]


@cache
def literal_pieces() -> frozenset[str]:
    """The package's literal text: every string, every literal part of an f-string (the words a message says
    between its values, ``"model "`` in ``f"model {path}: ..."``), and each of them cut at punctuation, so a quote
    that elides the middle of a message (``...``) still finds the pieces it kept. A piece cut out of a longer
    string must have two words: one word alone out of a sentence proves nothing."""
    pieces = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = " ".join(node.value.split())
                pieces.add(text)
                pieces.update(p.strip() for p in re.split(r"[(),;:]", text) if len(p.split()) >= 2)
    return frozenset(p for p in pieces | OUTSIDE_TEXT if re.search("[a-z]{2}", p))


def words_not_in_the_code(message: str) -> list[str]:
    """The plain words of ``message`` that no literal text of the code covers where they stand."""
    covered = [False] * len(message)
    for piece in literal_pieces():
        start = message.find(piece)
        while start != -1:
            covered[start : start + len(piece)] = [True] * len(piece)
            start = message.find(piece, start + 1)
    return [
        word[0]
        for word in re.finditer(r"(?<![\w.'/-])[a-z]+(?![\w.'/-])", message)
        if PLAIN_WORD.fullmatch(word[0]) and not all(covered[word.start() : word.end()])
    ]


def all_quotes() -> list[tuple[str, str]]:
    return [(page.name, quote) for page in PAGES for quote in quoted_messages(page.read_text())]


def test_the_pages_quote_messages_at_all():
    """The finder finds the quotes it is meant to check (a finder that finds nothing would pass everything)."""
    quotes = dict.fromkeys(q for _, q in all_quotes())
    assert len(quotes) >= 20, quotes
    assert "model x.onnx: not an ONNX model (...)" in quotes


@pytest.mark.parametrize(("page", "quote"), all_quotes(), ids=lambda v: v if v.endswith(".md") else v[:48])
def test_every_quoted_message_is_the_codes_own_text(page, quote):
    missing = words_not_in_the_code(quote)
    assert not missing, f"docs/{page}: `{quote}` has words the code never prints: {missing}"


@pytest.mark.parametrize(
    "drifted",
    [
        "model best.pt: no such weights file",  # a word added
        "model x.onnx: not a valid ONNX model (...)",  # a word added
        "source cannot be found: ...",  # reworded
    ],
)
def test_a_quote_that_drifts_from_the_code_is_caught(drifted):
    assert words_not_in_the_code(drifted)
