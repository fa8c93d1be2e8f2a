"""The bundled task YAMLs are written out in full (Ultralytics reads plain files), so these tests keep them from
drifting: each task variant is its detect YAML with the task's head, and each "stock with one block swapped" YAML is
the installed Ultralytics' own YAML with that block swapped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import yolo_fasternet
from yolo_fasternet.integration.yaml_lookup import _version_tuple

pytestmark = pytest.mark.registration  # reads files only: also runs on the oldest Ultralytics

CFG = yolo_fasternet.cfg_dir()
TASK_SUFFIX = re.compile(r"-(seg|pose|obb|cls|sem|depth)$")
TASK_HEADS = {
    "seg": {"Segment", "Segment26"},
    "pose": {"Pose", "Pose26"},
    "obb": {"OBB", "OBB26"},
    "cls": {"Classify"},
    "sem": {"SemanticSegment"},
    "depth": {"Depth"},
}
TASK_KEYS = {"backbone", "head", "nc", "kpt_shape", "end2end", "reg_max", "min_ultralytics"}  # what a task may change
TASK_YAMLS = sorted(p.name for p in CFG.glob("*.yaml") if TASK_SUFFIX.search(p.stem))
# "stock YAML with one block swapped": bundled name -> (stock YAML, stock block, ours)
SWAPPED = {
    "yolov8-c2f-faster.yaml": ("yolov8.yaml", "C2f", "C2f_Faster"),
    "yolov8-spconv.yaml": ("yolov8.yaml", "C2f", "C2f_SPConv"),
    "yolo11-c3k2-faster.yaml": ("yolo11.yaml", "C3k2", "C3k2_Faster"),
    "yolo11-spconv.yaml": ("yolo11.yaml", "C3k2", "C3k2_SPConv"),
    **{
        f"yolo26-{family}{task}.yaml": (f"yolo26{task}.yaml", "C3k2", block)
        for family, block in (("c3k2-faster", "C3k2_Faster"), ("spconv", "C3k2_SPConv"))
        for task in ("", "-sem", "-depth")
    },
}


def _load(name: str) -> dict:
    return yaml.safe_load((CFG / name).read_text())


def _detect_sibling(name: str) -> str:
    return TASK_SUFFIX.sub("", Path(name).stem) + ".yaml"


def test_task_yamls_are_found():
    assert len(TASK_YAMLS) == 24
    assert {TASK_SUFFIX.search(Path(n).stem)[1] for n in TASK_YAMLS} == set(TASK_HEADS)


@pytest.mark.parametrize("name", TASK_YAMLS)
def test_task_yaml_is_its_detect_yaml_with_the_task_head(name):
    task = TASK_SUFFIX.search(Path(name).stem)[1]
    ours, detect = _load(name), _load(_detect_sibling(name))
    assert {k: v for k, v in ours.items() if k not in TASK_KEYS} == {
        k: v for k, v in detect.items() if k not in TASK_KEYS
    }, "scales and per-scale backbone settings differ from the detect YAML"
    assert _version_tuple(ours.get("min_ultralytics", "0")) >= _version_tuple(detect.get("min_ultralytics", "0"))
    *neck, last = ours["head"]
    assert last[2] in TASK_HEADS[task], last
    if task == "cls":  # Ultralytics' -cls YAMLs: the backbone stages, then the head (no SPPF, no neck)
        modules = [row[2] for row in detect["backbone"]]
        stages = modules.index("SPPF") if "SPPF" in modules else len(modules)
        assert ours["backbone"][:stages] == detect["backbone"][:stages]
        assert neck == []
        return
    assert ours["backbone"] == detect["backbone"]
    assert neck == detect["head"][: len(neck)], "neck rows differ from the detect YAML's"
    detect_inputs = detect["head"][-1][0]
    if task == "sem":  # like yolo26-sem.yaml: the neck stops at the P3 output, the head reads P3 and the P4 before it
        assert len(neck) < len(detect["head"]) - 1
        p3 = len(ours["backbone"]) + len(neck) - 1
        assert last[0][0] == detect_inputs[0] == p3, last
        assert last[0][1] < p3 and ours["head"][last[0][1] - len(ours["backbone"])][2] == neck[-1][2], last
    else:  # the same P3/P4/P5 inputs as Detect
        assert len(neck) == len(detect["head"]) - 1
        assert last[0] == detect_inputs, last


@pytest.mark.parametrize("suffix", ["", "-sem", "-depth"])
def test_yolo26_partialnet_is_the_yolo11_partialnet_backbone_under_the_yolo26_fasternet_head(suffix):
    ours, fasternet, v11 = (
        _load(f"yolo26-partialnet{suffix}.yaml"),
        _load(f"yolo26-fasternet{suffix}.yaml"),
        _load("yolo11-partialnet.yaml"),
    )
    assert ours["head"] == fasternet["head"]
    sppf = [row[2] for row in v11["backbone"]].index("SPPF")
    assert ours["backbone"][:sppf] == v11["backbone"][:sppf]
    assert ours["backbone"][sppf:] == fasternet["backbone"][sppf:]  # YOLO26's SPPF (shortcut) and C2PSA
    assert {k: ours[k] for k in ("scales", "stage_depths", "spatial_mlp")} == {
        k: v11[k] for k in ("scales", "stage_depths", "spatial_mlp")
    }


def _stock(name: str) -> dict:
    from ultralytics.utils.checks import check_yaml

    try:
        return yaml.safe_load(Path(check_yaml(name)).read_text())
    except FileNotFoundError:
        pytest.skip(f"{name} is not in this Ultralytics release")


@pytest.mark.parametrize("name", sorted(SWAPPED))
def test_swapped_block_yaml_is_the_stock_yaml_with_that_block_swapped(name):
    stock_name, block, ours_block = SWAPPED[name]
    ours, stock = _load(name), _stock(stock_name)

    def swapped(rows):
        return [[f, n, ours_block if m == block else m, args] for f, n, m, args in rows]

    assert ours["scales"] == stock["scales"]
    assert ours["backbone"] == swapped(stock["backbone"])
    assert ours["head"] == swapped(stock["head"])
    head_settings = ("nc", "end2end", "reg_max")
    assert {k: ours.get(k) for k in head_settings} == {k: stock.get(k) for k in head_settings}


# The first Ultralytics release with each head (read from the release wheels: yolo26-sem.yaml first ships in 8.4.52,
# yolo26-depth.yaml in 8.4.104); every other YOLO26 head came with 8.4.0.
HEAD_RELEASES = {"SemanticSegment": "8.4.52", "Depth": "8.4.104"}
BUNDLED = sorted(p.name for p in CFG.glob("*.yaml"))


def _needed_release(name: str) -> str | None:
    head = _load(name)["head"][-1][2]
    return HEAD_RELEASES.get(head, "8.4.0" if name.startswith("yolo26") else None)


def test_each_yaml_names_the_first_release_with_its_head():
    assert {n: _load(n).get("min_ultralytics") for n in BUNDLED} == {n: _needed_release(n) for n in BUNDLED}


@pytest.mark.parametrize("name", [n for n in BUNDLED if _needed_release(n)])
def test_a_yaml_for_a_newer_ultralytics_fails_in_one_line_naming_the_release(name):
    """On an older Ultralytics (``make test-oldest``: 8.3.0) loading the YAML fails with one line naming the
    release it needs, before Ultralytics guesses a task (8.3.0 guesses none for ``Segment26``); on a new enough one
    the YAML loads and Ultralytics guesses its task from the head."""
    import ultralytics
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load

    scaled = re.sub(r"^(yolo(?:v)?\d+)", r"\g<1>n", name, count=1)
    needed = _needed_release(name)
    installed = ultralytics.__version__
    if _version_tuple(installed) < _version_tuple(needed):
        from ultralytics import YOLO

        message = (
            rf"^{re.escape(scaled)} needs Ultralytics >= {re.escape(needed)} \(installed: {re.escape(installed)}\)"
        )
        with pytest.raises(RuntimeError, match=message) as e:
            YOLO(scaled)
        assert "\n" not in str(e.value)
    else:
        suffix = TASK_SUFFIX.search(Path(name).stem)
        task = {"seg": "segment", "pose": "pose", "obb": "obb", "cls": "classify", "sem": "semantic", "depth": "depth"}
        assert guess_model_task(yaml_model_load(scaled)) == (task[suffix[1]] if suffix else "detect")
