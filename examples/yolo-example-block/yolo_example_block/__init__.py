"""Example yolo-fasternet plugin; yolo-fasternet finds its module through the ``yolo_fasternet.modules`` entry point."""

from .blocks import C2fECA

__all__ = ["C2fECA"]
