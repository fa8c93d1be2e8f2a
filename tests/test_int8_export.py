"""INT8 exports of a plugin model, in every format Ultralytics quantizes on a Linux CPU: ONNX, OpenVINO, MNN, LiteRT
(and CoreML, which converts; no runtime on Linux).

yolov8n-fasternet (random weights and BatchNorm statistics, mid-range scores: ``nontrivial_outputs``) is exported by
the stock exporter with ``quantize=8`` (``int8=True`` before 8.4; ``apps.quantize.int8_arguments``), calibrated on
coco8 where the format calibrates (ONNX, OpenVINO, LiteRT: activations too; MNN and CoreML quantize the weights only).
Each file must be INT8 (under half the bytes of its float32 weights), load in its runtime, and give boxes and class
scores within ``1e-3 + 0.1 x magnitude`` of the fused float32 PyTorch model, each part on its own magnitude: INT8
rounding, not a wrong graph. Measured at 64 px (``benchmarks/deploy.py --int8``, docs/deploying.md): up to 2.5e-3 of
the magnitude in ONNX Runtime and OpenVINO, 7e-4 in MNN, 3.5e-2 (class scores) in LiteRT.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from test_edge_export import run_exported
from test_export import _build, _reference

from yolo_fasternet.apps.quantize import int8_arguments

from conftest import assert_outputs_close

IMGSZ = 64
CALIBRATED = ("onnx", "openvino", "litert")  # the formats whose INT8 export takes data= (activation ranges)
FORMAT_MODULES = {
    "onnx": ("onnx", "onnxruntime"),
    "openvino": ("openvino", "nncf"),
    "mnn": ("MNN",),
    "litert": ("litert_torch", "ai_edge_litert"),
    "coreml": ("coremltools",),
}


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMAT_MODULES))
def test_int8_export_is_int8_and_runs_as_pytorch_within_int8_rounding(fmt, coco8_yaml, tmp_path, monkeypatch):
    missing = [m for m in FORMAT_MODULES[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{fmt}: {', '.join(missing)} not installed")
    monkeypatch.chdir(tmp_path)
    yolo = _build("yolov8-fasternet.yaml")
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    expected = _reference(yolo, x)
    kwargs = int8_arguments(fmt)
    if fmt in CALIBRATED:
        kwargs["data"] = str(coco8_yaml)
    exported = (tmp_path / yolo.export(format=fmt, imgsz=IMGSZ, batch=1, device="cpu", **kwargs)).resolve()
    float_bytes = 4 * sum(p.numel() for p in yolo.model.parameters())
    assert _bytes(exported) < 0.5 * float_bytes, (fmt, _bytes(exported), float_bytes)  # INT8 weights, not float
    if fmt == "coreml":  # no CoreML runtime on Linux: it converts and its spec loads
        import coremltools

        assert coremltools.models.MLModel(str(exported), skip_model_load=True).get_spec().description.output
        return
    actual = run_exported(exported, x)
    assert actual.shape == expected.shape
    assert_outputs_close(actual, expected, yolo.model, atol=1e-3, rel=0.1, what=f"INT8 {fmt}")
