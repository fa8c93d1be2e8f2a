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
import zlib
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


def checkpoint_strings(checkpoint: str | Path) -> list[str]:
    """Every string in a ``torch.save`` file's pickle stream, read without unpickling (no class is imported).

    Raises:
        FileNotFoundError: There is no such file (or it is a folder), naming it.
        ValueError: The file is not a zip-format PyTorch checkpoint, or is truncated or corrupt; the message says which.
    """
    path = Path(checkpoint)
    if path.is_dir():
        raise FileNotFoundError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            member = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if member is None:
                raise ValueError(f"{path}: a zip archive without data.pkl, not a PyTorch checkpoint")
            data = archive.read(member)
    except zipfile.BadZipFile:
        raise ValueError(
            f"{path}: not a PyTorch checkpoint (not a complete zip archive as torch.save writes: truncated, or "
            "another kind of file)"
        ) from None
    except (EOFError, zlib.error) as e:
        raise ValueError(f"{path}: truncated or corrupt PyTorch checkpoint ({type(e).__name__})") from None
    try:
        return [arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    except ValueError:
        raise ValueError(f"{path}: truncated or corrupt PyTorch checkpoint (its pickle stream does not read)") from None


def recorded_distributions(checkpoint: str | Path, strict: bool = False) -> dict[str, str]:
    """``{import name: distribution}`` recorded in a checkpoint file, read without unpickling; {} if none.

    With ``strict``, a file that is missing or no readable checkpoint raises (``checkpoint_strings``); without it (for
    messages about a load that already failed) such a file records nothing.
    """
    try:
        strings = [text for text in checkpoint_strings(checkpoint) if text.startswith(_MARKER)]
    except (OSError, ValueError):
        if strict:
            raise
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
