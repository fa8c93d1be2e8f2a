"""Model size targets of the bundled YAMLs (on the newest Ultralytics: 8.3.0's Detect head differs in size)."""

from __future__ import annotations

from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import get_flops


def _build(name: str) -> DetectionModel:
    return DetectionModel(name, verbose=False)


def test_yolov8n_fasternet_is_not_larger_than_yolov8n():
    ours, stock = _build("yolov8n-fasternet.yaml"), _build("yolov8n.yaml")
    sizes = {
        name: (sum(p.numel() for p in m.parameters()), get_flops(m, 640))
        for name, m in (("yolov8n-fasternet", ours), ("yolov8n", stock))
    }
    print("params, GFLOPs@640:", sizes)
    assert sizes["yolov8n-fasternet"][0] <= sizes["yolov8n"][0]
    assert sizes["yolov8n-fasternet"][1] <= sizes["yolov8n"][1]
