"""Class paths pickled by checkpoints written before the subpackage layout (yolo-fasternet 0.1.0).

A ``best.pt`` stores each module by its import path: ``yolo_fasternet.pconv.PConv`` then,
``yolo_fasternet.nn.pconv.PConv`` now. The old module names stay importable as aliases of the new modules, and the
old paths are allow-listed for ``ULTRALYTICS_SAFE_LOAD=1`` next to the new ones, so old checkpoints keep loading in
both modes.
"""

from __future__ import annotations

import importlib
import sys

# old module path -> the module that holds its classes now
LEGACY_MODULES = {
    "yolo_fasternet.activation": "yolo_fasternet.nn.activation",
    "yolo_fasternet.c2f_faster": "yolo_fasternet.nn.c2f_faster",
    "yolo_fasternet.c3k2_faster": "yolo_fasternet.nn.c3k2_faster",
    "yolo_fasternet.fasternet_block": "yolo_fasternet.nn.fasternet_block",
    "yolo_fasternet.patch_layers": "yolo_fasternet.nn.patch_layers",
    "yolo_fasternet.pconv": "yolo_fasternet.nn.pconv",
    "yolo_fasternet.saconv": "yolo_fasternet.nn.saconv",
}
_CURRENT_TO_LEGACY = {new: old for old, new in LEGACY_MODULES.items()}


def install_legacy_module_aliases() -> None:
    """Make every old module path import as its new module (what unpickling an old checkpoint does)."""
    for old, new in LEGACY_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))


def legacy_safe_globals(classes) -> list[tuple[type, str]]:
    """``(class, old path)`` pairs for ``torch.serialization.add_safe_globals``, for classes that had an old path."""
    return [
        (cls, f"{_CURRENT_TO_LEGACY[cls.__module__]}.{cls.__qualname__}")
        for cls in classes
        if cls.__module__ in _CURRENT_TO_LEGACY
    ]
