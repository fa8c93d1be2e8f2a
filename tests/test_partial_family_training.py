"""Stock `yolo train` of yolov8n-spconv and yolov8n-partialnet; the checkpoints load safely and export to ONNX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_python

YOLO_CLI = Path(sys.executable).with_name("yolo")

# In a fresh process under ULTRALYTICS_SAFE_LOAD=1: restricted loading of best.pt, ONNX export of it, and the
# exported graph's output against the fused PyTorch model on the same input, part by part (boxes, class scores) with
# the bounds ``detect`` checks its own exports with (1e-4 of each part's magnitude plus 1e-6: the scores of a one-epoch
# model are ~1e-4, far below the boxes).
CHECK = """
import copy, json, sys
import numpy as np, onnx, onnxruntime, torch
from ultralytics import YOLO
from ultralytics.nn.tasks import torch_safe_load
from yolo_fasternet.apps.detection.runtime_choice import OUTPUT_ATOL, OUTPUT_RTOL
from yolo_fasternet.integration.output_parts import compare_outputs, layout_of

best = sys.argv[1]
ckpt, _ = torch_safe_load(best, safe_only=True)
yolo = YOLO(best)
onnx_file = yolo.export(format="onnx", imgsz=64, device="cpu")
x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
model = copy.deepcopy(yolo.model).float().eval().fuse(verbose=False)
with torch.no_grad():
    expected = model(x)[0]
session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
actual = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
print(json.dumps({
    "safe_loaded": type(ckpt["model"].model[2]).__name__,
    "ops": sorted({n.op_type for n in onnx.load(onnx_file).graph.node}),
    "parts": {d.name: [d.diff, d.magnitude, d.bound, d.ok] for d in compare_outputs(
        actual, expected, layout_of(model), rel=OUTPUT_RTOL, atol=OUTPUT_ATOL)},
    "shape": list(actual.shape),
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, layer2", [("yolov8n-spconv.yaml", "C2f_SPConv"), ("yolov8n-partialnet.yaml", "PatchMerging")]
)
def test_stock_yolo_train_safe_reload_and_onnx_export(model, layer2, coco8_yaml, tmp_path):
    proc = subprocess.run(
        [str(YOLO_CLI), "train", f"model={model}", f"data={coco8_yaml}", "epochs=1", "imgsz=64", "batch=4",
         "workers=0", "device=cpu", f"project={tmp_path}", "name=run", "plots=False"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    best = tmp_path / "run" / "weights" / "best.pt"
    assert best.is_file()
    out = run_python(CHECK.replace("sys.argv[1]", repr(str(best))), env={"ULTRALYTICS_SAFE_LOAD": "1"}).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["safe_loaded"] == layer2
    assert "ScatterND" not in result["ops"]
    assert result["shape"] == [1, 84, 84]  # 4 box + 80 class rows, 64 + 16 + 4 anchors at 64 px
    assert list(result["parts"]) == ["boxes", "class scores"]
    assert all(ok for *_, ok in result["parts"].values()), result["parts"]
    assert all(magnitude > 0 for _, magnitude, *_ in result["parts"].values()), result["parts"]
