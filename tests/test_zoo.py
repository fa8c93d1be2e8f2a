"""The model zoo: every bundled YAML at every scale builds, runs, fuses, and matches its stock counterpart's outputs."""

from __future__ import annotations

import copy

import pytest
import torch
import ultralytics
import yaml
from torch import nn
from ultralytics import YOLO
from ultralytics.nn import tasks
from ultralytics.nn.modules import C3k2

import yolo_fasternet
from yolo_fasternet import C3k2_Faster, C3k_Faster, FasterNetBlock
from yolo_fasternet.apps.zoo import scaled_name, stock_counterpart
from yolo_fasternet.integration.yaml_lookup import check_min_ultralytics

from conftest import assert_outputs_close, nontrivial_outputs

pytestmark = pytest.mark.registration
SCALES = "nsmlx"
BUNDLED = sorted(p.name for p in yolo_fasternet.cfg_dir().glob("*.yaml"))


def _model(name: str) -> nn.Module:
    try:
        return YOLO(name, verbose=False).model.eval()
    except RuntimeError as e:
        if "needs Ultralytics" in str(e):
            pytest.skip(str(e))
        raise


def _prediction(out) -> torch.Tensor:
    """The inference tensor of a model output (eval mode also returns raw per-level maps, which depend on width)."""
    return out if isinstance(out, torch.Tensor) else _prediction(out[0])


def test_counterpart_names_follow_ultralytics_naming():
    assert scaled_name("yolov8-fasternet-seg.yaml", "s") == "yolov8s-fasternet-seg.yaml"
    assert stock_counterpart("yolov8-fasternet-seg.yaml", "s") == "yolov8s-seg.yaml"
    assert stock_counterpart("yolo11-c3k2-faster.yaml", "x") == "yolo11x.yaml"
    assert stock_counterpart("yolo26-fasternet.yaml", "n") == "yolo26n.yaml"
    assert stock_counterpart("yolov8-partialnet.yaml", "m") == "yolov8m.yaml"
    assert stock_counterpart("yolov8-spconv.yaml", "n") == "yolov8n.yaml"
    assert stock_counterpart("yolo26-fasternet-pose.yaml", "l") == "yolo26l-pose.yaml"
    assert stock_counterpart("yolo26-partialnet-sem.yaml", "s") == "yolo26s-sem.yaml"
    # Ultralytics has semantic and depth models for YOLO26 only: YOLOv8/YOLO11 variants are compared with those
    assert stock_counterpart("yolov8-fasternet-sem.yaml", "n") == "yolo26n-sem.yaml"
    assert stock_counterpart("yolo11-fasternet-depth.yaml", "x") == "yolo26x-depth.yaml"
    assert len(BUNDLED) == 37


@pytest.mark.parametrize("yaml_name", BUNDLED)
def test_every_yaml_builds_runs_and_fuses_at_every_scale(yaml_name):
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ours_n = _model(scaled_name(yaml_name, "n"))  # first: skips where this Ultralytics is too old for the head
        stock = _model(stock_counterpart(yaml_name, "n"))
        expected = list(_prediction(stock(x)).shape)
        if yaml_name.endswith("-cls.yaml"):  # stock -cls YAMLs changed their nc across releases; ours keeps 1000
            expected[-1] = ours_n.yaml["nc"]
        for scale in SCALES:
            model = nontrivial_outputs(_model(scaled_name(yaml_name, scale)))
            assert model.yaml["scale"] == scale
            before = model(x)
            assert list(_prediction(before).shape) == expected, (yaml_name, scale)  # the same task output as stock
            # detection-style heads: [8, 16, 32]; semantic and depth: the deepest stride (32); classify: 1
            assert model.stride.tolist() == stock.stride.tolist(), (yaml_name, scale)
            model.fuse(verbose=False)
            assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), (yaml_name, scale)
            assert_outputs_close(model(x), before, model, what=f"fused {yaml_name} at {scale}")  # every part


TASK_SUFFIXES = {"segment": "seg", "pose": "pose", "obb": "obb", "classify": "cls", "semantic": "sem", "depth": "depth"}


@pytest.mark.parametrize("task", list(TASK_SUFFIXES))
def test_task_variants_are_recognised_by_ultralytics(task):
    """Ultralytics guesses the task of each bundled task YAML from its head, as for its own ``yolo26n-sem.yaml``."""
    names = [scaled_name(name, "n") for name in BUNDLED if name.endswith(f"-{TASK_SUFFIXES[task]}.yaml")]
    assert names
    buildable = [name for name in names if _builds_here(name)]
    if not buildable:
        pytest.skip(f"every {task} YAML needs a newer Ultralytics than {ultralytics.__version__}")
    for name in buildable:
        assert YOLO(name, verbose=False).task == task, name


def _builds_here(name: str) -> bool:
    """False where the YAML's min_ultralytics is newer than the installed Ultralytics (it refuses to load there)."""
    try:
        tasks.yaml_model_load(name)
    except RuntimeError as e:
        if "needs Ultralytics" in str(e):
            return False
        raise
    return True


@pytest.mark.parametrize("scale", SCALES)
def test_c3k2_faster_scales_like_c3k2(scale):
    ours, stock = _model(f"yolo11{scale}-c3k2-faster.yaml"), _model(f"yolo11{scale}.yaml")
    assert len(ours.model) == len(stock.model)
    for a, b in zip(ours.model, stock.model):
        if isinstance(a, C3k2_Faster):
            assert type(b) is C3k2 and len(a.m) == len(b.m), (a.i, scale)
            assert a.cv1.conv.weight.shape == b.cv1.conv.weight.shape
            assert a.cv2.conv.weight.shape == b.cv2.conv.weight.shape
            # the m/l/x switch: Ultralytics turns c3k on for C3k2 rows at these scales, and so for ours
            assert [type(m).__name__ for m in b.m] == [
                {"C3k_Faster": "C3k", "FasterNetBlock": "Bottleneck"}[type(m).__name__] for m in a.m
            ]
        else:
            assert a.type == b.type and a.np == b.np, (a.i, a.type, scale)
    inner = [m for layer in ours.model if isinstance(layer, C3k2_Faster) for m in layer.m]
    all_c3k = all(isinstance(m, C3k_Faster) for m in inner)
    assert all_c3k == (scale in "mlx")  # at m/l/x every row switches to c3k, at n/s only the YAML's c3k=True rows


def test_c3k2_faster_turns_off_legacy_detect_like_c3k2():
    _model("yolo11n-c3k2-faster.yaml")
    detect = ultralytics.nn.modules.Detect
    if hasattr(detect, "legacy"):
        assert detect.legacy is False


@pytest.mark.parametrize("c3k, attn", [(False, False), (True, False), (False, True)])
def test_c3k2_faster_shapes_and_gradients(c3k, attn):
    torch.manual_seed(0)
    block = C3k2_Faster(64, 96, 2, c3k, 0.5, attn).train()
    y = block(torch.randn(2, 64, 16, 16))
    assert y.shape == (2, 96, 16, 16)
    y.square().mean().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None]
    assert not missing
    assert sum(isinstance(m, FasterNetBlock) for m in block.modules()) == (4 if c3k else 2)


def test_c3k2_faster_rejects_groups():
    with pytest.raises(ValueError, match="g=2"):
        C3k2_Faster(32, 32, 1, False, 0.5, False, 2)


def test_yolo26_needs_ultralytics_8_4(monkeypatch):
    # the YAML as written (loading it through Ultralytics checks the bound already, against the installed release)
    d = {
        **yaml.safe_load((yolo_fasternet.cfg_dir() / "yolo26-fasternet.yaml").read_text()),
        "yaml_file": "yolo26n-fasternet.yaml",
    }
    with pytest.raises(RuntimeError, match=r"yolo26n-fasternet.yaml needs Ultralytics >= 8.4.0 \(installed: 8.3.0\)"):
        check_min_ultralytics(d, "8.3.0")
    check_min_ultralytics(d, "8.4.0")
    d2 = copy.deepcopy(d)
    d2.pop("min_ultralytics")
    check_min_ultralytics(d2, "8.3.0")  # YAMLs without the key are never refused
