"""Which distribution a checkpoint needs: recorded in the model when it is built, read back when loading fails.

A ``best.pt`` pickles each plugin module by its class path (``yolo_example_block.blocks.C2fGhost``). Loaded where
that package is not installed, unpickling fails with ``ModuleNotFoundError: No module named 'yolo_example_block'``,
which names an import name, not what to ``pip install`` (and Ultralytics' auto-install would try the import name on
the public package index). So every model built with plugin modules carries one string attribute on its layer
stack, ``model.model.plugin_distributions``: ``"<marker> yolo_example_block=yolo-example-block ..."`` (top-level
import name = distribution). It is a plain string so that it can be read back from the file's pickle stream with
``pickletools`` without unpickling anything, i.e. without the missing classes and without executing the file.
"""

from __future__ import annotations

import pickletools
import zipfile
from collections.abc import Iterable
from pathlib import Path

from torch import nn

_MARKER = "yolo-fasternet plugin distributions:"
ATTRIBUTE = "plugin_distributions"
# Checkpoints written before the record existed still name our own package.
_KNOWN = {"yolo_fasternet": "yolo-fasternet"}
_INSTALL_HINTS = {
    "yolo-fasternet": "pip install -e <a clone of yolo-fasternet> (it is not on the public package index)",
}


def record_plugin_distributions(model: nn.Module, entries: Iterable) -> None:
    """Set ``model.plugin_distributions`` naming the distribution of each plugin package ``model`` uses (if any)."""
    by_package = {entry.cls.__module__.split(".")[0]: entry.origin for entry in entries if entry.origin}
    used = {type(m).__module__.split(".")[0] for m in model.modules()} & by_package.keys()
    if used:
        pairs = " ".join(f"{package}={by_package[package]}" for package in sorted(used))
        setattr(model, ATTRIBUTE, f"{_MARKER} {pairs}")


def recorded_distributions(checkpoint: str | Path) -> dict[str, str]:
    """``{import name: distribution}`` recorded in a checkpoint file, read without unpickling; {} if none."""
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            member = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            data = archive.read(member) if member else b""
        strings = [arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str) and arg.startswith(_MARKER)]
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return {}
    found = {}
    for text in strings:
        found.update(pair.split("=", 1) for pair in text[len(_MARKER) :].split() if "=" in pair)
    return found


def explain_missing_module(exc: BaseException, checkpoint: str | Path | None = None) -> str:
    """One line for a checkpoint whose plugin package is not installed: which distribution to install.

    ``exc`` is the ``ModuleNotFoundError`` that loading raised; ``checkpoint`` (if given) is the file, whose record
    names the distribution. Without a record, the line says that only the import name is known.
    """
    name = getattr(exc, "name", None) or str(exc)
    package = name.split(".")[0]
    distributions = {**_KNOWN, **(recorded_distributions(checkpoint) if checkpoint else {})}
    subject = f"{checkpoint} needs" if checkpoint else "the checkpoint needs"
    distribution = distributions.get(package)
    if distribution is None:
        return (
            f"{subject} the Python module '{name}', which is not installed; the checkpoint does not record which "
            f"distribution provides it: install the package that provides the import name '{package}'"
        )
    install = _INSTALL_HINTS.get(distribution, f"pip install {distribution}")
    return (
        f"{subject} the Python module '{name}' from the distribution '{distribution}' (a yolo-fasternet plugin), "
        f"which is not installed: {install}"
    )
