"""One line of an exception's message, for embedding in the one-line errors every module and command prints."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type name when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def typed_first_line(error: BaseException) -> str:
    """``Type: first line`` (``Type`` alone for an empty message): where the type itself says what went wrong."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
