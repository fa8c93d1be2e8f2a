"""Every bundled detection YAML exports through Ultralytics' own exporter, and each export computes what PyTorch does.

Each model is built at scale ``n`` with randomized BatchNorm statistics (so fusing and the plugin modules' inference
form are really exercised), exported with ``YOLO.export()`` to ONNX, TorchScript and OpenVINO, and run in its own
runtime. The reference is the same model fused in eager PyTorch (``model.fuse()``, as the exporter does it).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO

from yolo_fasternet.apps.zoo import scaled_name
from yolo_fasternet.integration.yaml_lookup import cfg_dir

from conftest import assert_outputs_close, nontrivial_outputs

IMGSZ = 96  # P3/P4/P5 maps of 12, 6 and 3: odd sizes at the deepest level, and still fast on CPU
TASK_SUFFIX = re.compile(r"-(seg|pose|obb|cls|sem|depth)$")
DETECTION_YAMLS = sorted(p.name for p in cfg_dir().glob("*.yaml") if not TASK_SUFFIX.search(p.stem))
FORMATS = ["onnx", "torchscript", "openvino"]


def _build(yaml_name: str) -> YOLO:
    """The ``n`` scale of ``yaml_name`` with random weights, BN statistics and mid-range class scores; skipped where
    Ultralytics is too old."""
    torch.manual_seed(0)
    try:
        yolo = YOLO(scaled_name(yaml_name, "n"), verbose=False)
    except RuntimeError as e:
        if "needs Ultralytics" in str(e):
            pytest.skip(str(e))
        raise
    nontrivial_outputs(yolo.model)
    return yolo


def _reference(yolo: YOLO, x: torch.Tensor) -> torch.Tensor:
    """Detect's decoded predictions (its first output) from a fused copy of the model in eager PyTorch."""
    model = copy.deepcopy(yolo.model).eval()
    if getattr(model, "end2end", False):
        # The exporter's default (nms=None) exports the one-to-many head of an end-to-end (YOLO26) model.
        model.end2end = False
    model = model.fuse(verbose=False)
    with torch.no_grad():
        return model(x)[0]


def _export(yolo: YOLO, fmt: str, directory: Path, monkeypatch) -> Path:
    """Export with Ultralytics' exporter; a model built from a YAML is written to the working directory."""
    monkeypatch.chdir(directory)
    return (directory / yolo.export(format=fmt, imgsz=IMGSZ, batch=1, device="cpu")).resolve()


def _run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def _run_torchscript(path: Path, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.jit.load(str(path), map_location="cpu")(x)


def _run_openvino(path: Path, x: torch.Tensor) -> torch.Tensor:
    ov = pytest.importorskip("openvino")
    (xml,) = path.glob("*.xml")
    # OpenVINO's CPU plugin defaults to bf16 inference where the CPU supports it (max abs diff ~1 here); f32 is what
    # PyTorch computes, so ask for it rather than loosen the tolerance.
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return torch.from_numpy(compiled([x.numpy()])[compiled.output(0)])


RUNNERS = {"onnx": _run_onnx, "torchscript": _run_torchscript, "openvino": _run_openvino}


def test_detection_yamls_are_discovered():
    """The bundled detection YAMLs are found by name in cfg/, without a task suffix."""
    assert DETECTION_YAMLS, f"no detection YAMLs in {cfg_dir()}"
    assert "yolov8-fasternet.yaml" in DETECTION_YAMLS
    assert not any(TASK_SUFFIX.search(Path(name).stem) for name in DETECTION_YAMLS)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("yaml_name", DETECTION_YAMLS)
def test_export_matches_pytorch(yaml_name, fmt, tmp_path, monkeypatch):
    """The exported model's output equals the fused PyTorch model's output, for each detection YAML and format."""
    if fmt == "openvino":
        pytest.importorskip("openvino", reason="OpenVINO is not installed")
    yolo = _build(yaml_name)
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    expected = _reference(yolo, x)
    actual = RUNNERS[fmt](_export(yolo, fmt, tmp_path, monkeypatch), x)
    # Boxes (pixels, up to a few hundred) and class scores (0..1) are each judged against their own magnitude.
    assert_outputs_close(actual, expected, yolo.model, what=f"{yaml_name} as {fmt}")


@pytest.mark.slow
@pytest.mark.parametrize("yaml_name", DETECTION_YAMLS)
def test_onnx_export_has_no_scatternd(yaml_name, tmp_path, monkeypatch):
    """No ScatterND in the exported graph: PConv must export through split/concat, not in-place slice assignment."""
    onnx = pytest.importorskip("onnx")
    yolo = _build(yaml_name)
    graph = onnx.load(str(_export(yolo, "onnx", tmp_path, monkeypatch))).graph
    scatter = [node.name for node in graph.node if node.op_type == "ScatterND"]
    assert not scatter, f"{yaml_name}: ScatterND nodes in the ONNX export: {scatter}"
