"""Register yolo-fasternet in every Python process that imports Ultralytics, and cost nothing in the others.

``yolo_fasternet.pth`` (installed into site-packages) imports this module at interpreter start-up. It imports
neither torch nor Ultralytics: it only puts a finder on ``sys.meta_path`` that waits for ``ultralytics.nn.tasks``
to finish executing and then imports ``yolo_fasternet``, which registers its modules and those every installed
distribution declares under the entry-point group ``yolo_fasternet.modules``. That covers the
stock ``yolo`` command, DDP worker processes and loading a checkpoint anywhere. ``YOLO_FASTERNET_AUTOLOAD=0``
turns it off. Registration uses the same ``call_after_import`` for Ultralytics modules that must not be imported
while ``ultralytics.nn.tasks`` is (the exporter).
"""

import os
import sys

_TARGET = "ultralytics.nn.tasks"


class _CallAfterExec:
    """Loader proxy: execute the real module, restore its real loader, then call ``after(module)``."""

    def __init__(self, loader, after):
        self._loader = loader
        self._after = after

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader
        self._after(module)


class _AfterImportFinder:
    """Meta-path finder that only answers for one module name, once, and wraps its loader."""

    def __init__(self, target: str, after):
        self.target = target
        self._after = after

    def find_spec(self, name, path=None, target=None):
        if name != self.target:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from recursing into us
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _CallAfterExec(spec.loader, self._after)
                return spec
        return None


def call_after_import(name: str, after) -> None:
    """Call ``after(module)`` once module ``name`` has finished executing: now if it has, else when it is imported.

    A module that is being imported right now (in ``sys.modules``, not finished) is left alone: nothing is called.
    """
    module = sys.modules.get(name)
    if module is not None:
        spec = getattr(module, "__spec__", None)
        if not getattr(spec, "_initializing", False):
            after(module)
        return
    if not any(isinstance(f, _AfterImportFinder) and f.target == name for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder(name, after))


def _register(module) -> None:
    try:
        import yolo_fasternet  # noqa: F401 - importing registers
    except Exception as e:  # stock Ultralytics must keep working; plugin YAMLs then fail by name
        print(f"WARNING yolo-fasternet: not registered into Ultralytics: {e}", file=sys.stderr)


def install() -> None:
    """Put the finder on ``sys.meta_path`` once, unless disabled or Ultralytics is already imported."""
    if os.environ.get("YOLO_FASTERNET_AUTOLOAD", "1") == "0" or _TARGET in sys.modules:
        return
    call_after_import(_TARGET, _register)


install()
