"""Bundled model YAMLs (``cfg/``) found by bare name, the way Ultralytics finds its own ``yolov8n.yaml``."""

from __future__ import annotations

import re
from pathlib import Path

from .timm_yamls import is_timm_yaml_name, timm_yaml

_PACKAGE = Path(__file__).resolve().parents[1]  # the yolo_fasternet package folder
# Installed wheel: cfg/ ships inside the package. Source checkout or editable install: the repository's cfg/.
CFG_DIRS = (_PACKAGE / "cfg", _PACKAGE.parents[1] / "cfg")


def cfg_dir() -> Path:
    """The directory holding the bundled model YAMLs."""
    return next((d for d in CFG_DIRS if d.is_dir()), CFG_DIRS[0])


def bundled_yaml(path: str | Path) -> Path | None:
    """Resolve a bare YAML name (``yolov8n-fasternet.yaml``) to the bundled file, scale letter stripped.

    ``yolov8n-timm-<timm name>.yaml`` names resolve to a YAML written on first use (``timm_yamls``).
    Returns None for anything else: an existing path, a path with a directory, or a name we do not ship.
    """
    p = Path(path)
    if p.suffix not in {".yaml", ".yml"} or p.exists() or p.name != str(path):
        return None
    if is_timm_yaml_name(p.name):
        return timm_yaml(p.name)
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", p.name)  # yolov8n-fasternet.yaml -> yolov8-fasternet.yaml
    for name in (p.name, unified):
        candidate = cfg_dir() / name
        if candidate.is_file():
            return candidate
    return None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(version))[:3])


def check_min_ultralytics(model_yaml: dict, installed: str) -> None:
    """Refuse a model YAML whose ``min_ultralytics`` (e.g. a YOLO26 head: 8.4.0) is newer than the installed release."""
    needed = model_yaml.get("min_ultralytics")
    if needed and _version_tuple(installed) < _version_tuple(needed):
        name = model_yaml.get("yaml_file", "this model YAML")
        raise RuntimeError(
            f"{name} needs Ultralytics >= {needed} (installed: {installed}); "
            f"upgrade with: pip install -U 'ultralytics>={needed}'"
        )
