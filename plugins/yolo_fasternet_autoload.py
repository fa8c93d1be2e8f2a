"""Register yolo-fasternet in every Python process that imports Ultralytics, and cost nothing in the others.

``yolo_fasternet.pth`` (installed into site-packages) imports this module at interpreter start-up. It imports
neither torch nor Ultralytics: it only puts a finder on ``sys.meta_path`` that waits for ``ultralytics.nn.tasks``
to finish executing and then imports ``yolo_fasternet``, which registers its modules and those every installed
distribution declares under the entry-point group ``yolo_fasternet.modules``. That covers the
stock ``yolo`` command, DDP worker processes and loading a checkpoint anywhere. ``YOLO_FASTERNET_AUTOLOAD=0``
turns it off.
"""

import os
import sys

_TARGET = "ultralytics.nn.tasks"


class _RegisterAfterExec:
    """Loader proxy: execute the real module, restore its real loader, then import yolo_fasternet."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader
        try:
            import yolo_fasternet  # noqa: F401 - importing registers
        except Exception as e:  # stock Ultralytics must keep working; plugin YAMLs then fail by name
            print(f"WARNING yolo-fasternet: not registered into Ultralytics: {e}", file=sys.stderr)


class _UltralyticsTasksFinder:
    """Meta-path finder that only answers for ``ultralytics.nn.tasks`` and wraps its loader."""

    def find_spec(self, name, path=None, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from recursing into us
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisterAfterExec(spec.loader)
                return spec
        return None


def install() -> None:
    """Put the finder on ``sys.meta_path`` once, unless disabled or Ultralytics is already imported."""
    if os.environ.get("YOLO_FASTERNET_AUTOLOAD", "1") == "0" or _TARGET in sys.modules:
        return
    if not any(isinstance(f, _UltralyticsTasksFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _UltralyticsTasksFinder())


install()
