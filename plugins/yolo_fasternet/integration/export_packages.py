"""Which extra installs each export format's packages, and the one line that says so when they are missing.

Ultralytics' exporter checks each format's packages with ``ultralytics.utils.checks.check_requirements`` right before
it converts (``ncnn`` + the exact ``pnnx`` release it pins, ``MNN``, ``litert-torch`` + ``ai-edge-litert``,
``coremltools`` with ``numpy<=2.3.5``, ...). Where one is missing it tries to pip-install it, which fails offline and on
locked-down machines. Registration wraps that check (``naming_the_extra``, in every Ultralytics module that imported
it): when the requirements it is given name a package
one of our extras installs and some are not met, one warning line names the extra first, e.g.

    yolo-fasternet: NCNN export needs pnnx==20260526 (not installed): pip install 'yolo-fasternet[ncnn]'

and then Ultralytics' own check runs unchanged (its install attempt, or with ``YOLO_AUTOINSTALL=False`` its warning and
the export failure that follows). Every other call passes through untouched. ``yolo-fasternet detect`` asks
``missing_line()`` before it exports, and stops with that line instead.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from importlib import metadata

_MARK = "__yolo_fasternet__"
# Distribution (lower case) -> the extra that installs it (pyproject.toml's [project.optional-dependencies]).
PACKAGE_EXTRAS = {
    "onnx": "export",
    "onnxslim": "export",
    "onnxruntime": "export",
    "openvino": "export",
    "nncf": "export",
    "ncnn": "ncnn",
    "pnnx": "ncnn",
    "mnn": "mnn",
    "litert-torch": "litert",
    "ai-edge-litert": "litert",
    "coremltools": "coreml",
}
EXTRA_FORMATS = {"export": "ONNX/OpenVINO", "ncnn": "NCNN", "mnn": "MNN", "litert": "LiteRT", "coreml": "CoreML"}
# Export format -> (extra, the modules that must import for it): what ``detect`` checks before it exports.
FORMAT_MODULES = {
    "onnx": ("export", ("onnx", "onnxruntime", "onnxslim")),
    "openvino": ("export", ("openvino",)),
    "ncnn": ("ncnn", ("ncnn", "pnnx")),
    "mnn": ("mnn", ("MNN",)),
    "litert": ("litert", ("litert_torch", "ai_edge_litert")),
    "coreml": ("coreml", ("coremltools",)),
}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")
_ANNOUNCED: set[str] = set()  # extras already named in this process: one line each


def install_line(extra: str) -> str:
    """The pip command that installs ``extra``."""
    return f"pip install 'yolo-fasternet[{extra}]'"


def missing_line(fmt: str) -> str | None:
    """One line naming the extra for ``fmt`` where a module it needs does not import, else None (or unknown)."""
    if fmt not in FORMAT_MODULES:
        return None
    extra, modules = FORMAT_MODULES[fmt]
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"{EXTRA_FORMATS[extra]} export needs {' and '.join(missing)} (not installed): {install_line(extra)}"


def _unmet(requirement: str) -> bool:
    """Whether ``requirement`` (``name`` or ``name<spec>``) is not installed at a version that satisfies it."""
    from ultralytics.utils.checks import check_version

    name, spec = _REQUIREMENT.match(requirement).groups()
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return True
    return bool(spec) and not check_version(version, spec, hard=False, verbose=False)


def extra_hint(requirements) -> str | None:
    """The line to show for a ``check_requirements`` argument, or None (not ours, all met, or already said)."""
    if isinstance(requirements, str):
        requirements = [requirements]
    if not isinstance(requirements, (list, tuple)) or not all(isinstance(r, str) for r in requirements):
        return None  # a requirements.txt path, or anything else: not an export format's check
    names = [m.group(1).lower() for r in requirements if (m := _REQUIREMENT.match(r))]
    extras = [PACKAGE_EXTRAS[n] for n in names if n in PACKAGE_EXTRAS]
    if not extras or extras[0] in _ANNOUNCED:
        return None
    unmet = [r for r in requirements if _REQUIREMENT.match(r) and _unmet(r)]
    if not unmet:
        return None
    extra = extras[0]
    _ANNOUNCED.add(extra)
    # Ultralytics checks a format's packages one call at a time (ncnn, then pnnx): name all that are missing at once.
    named = {_REQUIREMENT.match(r).group(1).lower() for r in unmet}
    for _, modules in (v for v in FORMAT_MODULES.values() if v[0] == extra):
        unmet += [m for m in modules if m.lower() not in named and importlib.util.find_spec(m) is None]
    needs = " and ".join(dict.fromkeys(unmet))
    return f"yolo-fasternet: {EXTRA_FORMATS[extra]} export needs {needs} (not installed): {install_line(extra)}"


def naming_the_extra(original):
    """Wrap ``check_requirements``: name our extra for an export format's unmet packages, then run the original."""

    @functools.wraps(original)
    def check_requirements(*args, **kwargs):
        requirements = args[0] if args else kwargs.get("requirements")
        hint = extra_hint(requirements)
        if hint:
            from ultralytics.utils import LOGGER

            LOGGER.warning(hint)
        return original(*args, **kwargs)

    setattr(check_requirements, _MARK, True)
    return check_requirements
