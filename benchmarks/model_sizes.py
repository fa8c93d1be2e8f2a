"""Parameters and GFLOPs (640 px) of every bundled YAML at every scale, next to the stock YOLOv8 of the same scale.

Usage: `python benchmarks/model_sizes.py` (prints a Markdown table; no timing, so it is exact and repeatable).
"""

from __future__ import annotations

import contextlib
import io

from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import get_flops

import yolo_fasternet


def size(name: str) -> tuple[float, float]:
    """Millions of parameters and GFLOPs at 640 px of the model a YAML name builds."""
    with contextlib.redirect_stdout(io.StringIO()):
        model = DetectionModel(name, verbose=False)
    return sum(p.numel() for p in model.parameters()) / 1e6, get_flops(model, 640)


def main() -> None:
    """Print one Markdown row per bundled YAML and scale, with ratios to stock YOLOv8."""
    print("| model | params (M) | GFLOPs | stock | stock params (M) | stock GFLOPs | params ratio | GFLOPs ratio |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for path in sorted(yolo_fasternet.cfg_dir().glob("yolov8-*.yaml")):
        for scale in "nsmlx":
            name = path.name.replace("yolov8-", f"yolov8{scale}-")
            (p, f), (sp, sf) = size(name), size(f"yolov8{scale}.yaml")
            row = [name[:-5], f"{p:.2f}", f"{f:.1f}", f"yolov8{scale}", f"{sp:.2f}", f"{sf:.1f}"]
            print("| " + " | ".join(row + [f"{p / sp:.2f}", f"{f / sf:.2f}"]) + " |")


if __name__ == "__main__":
    main()
