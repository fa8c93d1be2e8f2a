"""Errors of backbone-weight reading and loading: one line that names the file, key or variant at fault."""

from __future__ import annotations

MAX_LISTED = 3  # keys named in a one-line error before "... (+N more)"


class BackboneWeightsError(ValueError):
    """Backbone weights cannot be read or loaded; the one-line message names the file, key or variant at fault."""

    def __init__(self, message: str, report: object | None = None):
        super().__init__(message)
        self.report = report  # a refused load's LoadReport: every missing, unexpected and mismatched key


class BackboneWeightsNotFoundError(BackboneWeightsError, FileNotFoundError):
    """No file for the requested weights; the message says which file to place where."""


def listed(items: list[str]) -> str:
    more = f", ... (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more
