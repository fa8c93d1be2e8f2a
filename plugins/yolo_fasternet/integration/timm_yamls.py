"""Model YAMLs for ``yolov8n-timm-<timm name>.yaml`` and ``yolo11n-timm-<timm name>.yaml``, written on first use.

The name says everything: the family (``yolov8``, ``yolo11``), the scale letter, the timm model (optionally with a
pretrained tag, ``resnet18.a1_in1k``) and an optional ``-pretrained`` suffix (ImageNet weights, see
``pretrained.timm_weights``). The YAML is the installed Ultralytics' own ``yolov8.yaml`` / ``yolo11.yaml`` with its
backbone up to the P5 stage replaced by a ``TimmBackbone`` row and three ``FeatureIndex`` rows (P3, P4, P5, their
channels read from timm's ``feature_info``); what the stock backbone has after its P5 stage (SPPF, and C2PSA in
YOLO11) and the whole head are kept, with their layer references renumbered. So the neck and head are YOLOv8's or
YOLO11's at the scale the letter gives, and the timm backbone is the same at every scale.

The file goes into ``$YOLO_FASTERNET_CACHE/timm-yamls/`` (default ``~/.cache/yolo-fasternet``), named without the
scale letter (Ultralytics strips it too) in a folder per Ultralytics and timm version, and is written atomically, so
every process (the stock CLI, DDP workers rebuilding the model from its YAML name) resolves the name the same way.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import yaml

# yolov8n-timm-resnet18.yaml, yolo11s-timm-mobilenetv3_large_100.ra_in1k-pretrained.yaml
TIMM_YAML_NAME = re.compile(
    r"^(?P<family>yolov8|yolo11)(?P<scale>[nslmx]?)-timm-(?P<timm>[^-/\\]+?)(?P<pretrained>-pretrained)?\.ya?ml$"
)
STOCK_YAMLS = {"yolov8": "yolov8.yaml", "yolo11": "yolo11.yaml"}


def is_timm_yaml_name(name: str) -> bool:
    """Whether ``name`` is a bare ``yolo*-timm-<timm name>.yaml`` name."""
    return TIMM_YAML_NAME.match(name) is not None


def cache_dir() -> Path:
    """``$YOLO_FASTERNET_CACHE/timm-yamls/ultralytics-<v>-timm-<v>``."""
    import ultralytics

    from ..nn.timm_backbone import import_timm

    timm = import_timm()  # a one-line error naming the package when timm is not installed
    root = Path(os.environ.get("YOLO_FASTERNET_CACHE") or Path.home() / ".cache" / "yolo-fasternet")
    return root / "timm-yamls" / f"ultralytics-{ultralytics.__version__}-timm-{timm.__version__}"


def _stock_yaml(family: str) -> dict:
    from ultralytics.utils.checks import check_yaml

    return yaml.safe_load(Path(check_yaml(STOCK_YAMLS[family])).read_text())


def _strides(backbone: list) -> list[int]:
    """The output stride of each stock backbone row (stride-2 Convs double it)."""
    strides, stride = [], 1
    for _, _, module, args in backbone:
        if module == "Conv" and len(args) > 2:
            stride *= args[2]
        strides.append(stride)
    return strides


def timm_model_yaml(family: str, timm_name: str, pretrained: bool) -> dict:
    """The model dict: the stock ``family`` YAML with ``timm_name`` as its backbone up to P5."""
    from ..nn.timm_backbone import timm_feature_layout

    layout = timm_feature_layout(timm_name)
    d = _stock_yaml(family)
    stock = d["backbone"]
    modules = [row[2] for row in stock]
    end = modules.index("SPPF") if "SPPF" in modules else len(stock)  # replaced: every row before SPPF
    strides = _strides(stock[:end])
    taps = [max(i for i in range(end) if strides[i] == s) for s in layout.strides]  # last row at each stride
    backbone = [[-1, 1, "TimmBackbone", [timm_name, layout.channels[-1], list(layout.out_indices), pretrained]]]
    backbone += [[0, 1, "FeatureIndex", [k, c]] for k, c in enumerate(layout.channels)]
    index = {tap: 1 + k for k, tap in enumerate(taps)}
    for i in range(end, len(stock)):  # SPPF and what follows it read the P5 map (the previous row)
        if stock[i][0] != -1:
            raise ValueError(f"{STOCK_YAMLS[family]} row {i} does not read the previous row; cannot graft a backbone")
        index[i] = len(backbone)
        backbone.append(stock[i])
    shift = len(backbone) - len(stock)

    def renumber(f):
        if isinstance(f, list):
            return [renumber(x) for x in f]
        if f < 0:
            return f
        if f >= len(stock):
            return f + shift
        if f not in index:
            raise ValueError(f"{STOCK_YAMLS[family]} head reads backbone row {f}, which is not a P3/P4/P5 output")
        return index[f]

    d["backbone"] = backbone
    d["head"] = [[renumber(f), n, m, args] for f, n, m, args in d["head"]]
    return d


def _dump(d: dict, family: str, timm_name: str) -> str:
    """The YAML text: one flow-style row per line (diffable against the stock file), P3/P4/P5 taps annotated."""
    import timm
    import ultralytics

    settings = {k: v for k, v in d.items() if k not in ("backbone", "head")}
    lines = [
        f"# {family}-timm-{timm_name}: Ultralytics {ultralytics.__version__}'s {STOCK_YAMLS[family]} on timm "
        f"{timm.__version__}'s {timm_name} (written by yolo-fasternet)",
        yaml.safe_dump(settings, sort_keys=False, default_flow_style=None).strip(),
        "backbone:",
    ]
    for i, row in enumerate(d["backbone"]):
        tap = f"-P{3 + row[3][0]}/{8 << row[3][0]}" if row[2] == "FeatureIndex" else ""
        lines.append(f"  - {json.dumps(row)}  # {i}{tap}")
    lines.append("head:")
    lines += [f"  - {json.dumps(row)}  # {i}" for i, row in enumerate(d["head"], len(d["backbone"]))]
    return "\n".join(lines) + "\n"


def timm_yaml(name: str) -> Path:
    """The generated YAML file for a bare ``yolo*-timm-*.yaml`` name, written on first use.

    Raises:
        TimmBackboneError: The timm model does not exist or has no stride-8/16/32 feature maps (close names listed).
    """
    match = TIMM_YAML_NAME.match(name)
    if match is None:
        raise ValueError(f"not a timm model YAML name: {name}")
    family, timm_name, pretrained = match["family"], match["timm"], bool(match["pretrained"])
    suffix = "-pretrained" if pretrained else ""
    path = cache_dir() / f"{family}-timm-{timm_name}{suffix}.yaml"
    if path.is_file():
        return path
    text = _dump(timm_model_yaml(family, timm_name, pretrained), family, timm_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # atomic: concurrent processes (DDP workers) never read a half-written file
    return path
