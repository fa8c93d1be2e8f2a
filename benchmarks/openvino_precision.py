"""mAP of trained checkpoints as OpenVINO models at f32 against OpenVINO's CPU default precision, on held-out images.

OpenVINO compiles for bf16 by default on CPUs with AMX or AVX512-BF16, f32 elsewhere. ``detect --runtime auto`` must
state which precision it runs; this measures what the default costs in accuracy: each checkpoint is exported once
(FP32 IR, through Ultralytics) and validated twice on its dataset's ``val`` split, compiled at the default and at f32.

    python benchmarks/openvino_precision.py --weights runs/a/weights/best.pt runs/b/weights/best.pt
    python benchmarks/openvino_precision.py --weights best.pt --data my.yaml --imgsz 640

Data: ``--data``, else each checkpoint's own training dataset; its val split must differ from its train split.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from detect_fps import cpu_description, forced_openvino_precision, openvino_default_precision
from ultralytics.utils import LOGGER

from yolo_fasternet.apps.preflight import check_dataset, load_model
from yolo_fasternet.apps.quantize import check_held_out, export, validate

LIMIT_POINTS = 0.5  # the default precision may cost at most this many mAP50-95 points, else auto uses f32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", nargs="+", required=True, help="trained checkpoints (.pt)")
    parser.add_argument("--data", help="dataset YAML (default: each checkpoint's own)")
    parser.add_argument("--imgsz", type=int, help="default: each checkpoint's training size")
    args = parser.parse_args(argv)
    LOGGER.setLevel(logging.ERROR)
    default = openvino_default_precision()
    print(f"openvino_precision: CPU {cpu_description()}; OpenVINO's CPU default precision here: {default}\n")
    print("| checkpoint | imgsz | precision | mAP50-95 | mAP50 | val ms/img |")
    print("|---|---|---|---|---|---|")
    losses = []
    for weights in args.weights:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Path(tmp) / Path(weights).name  # the export lands beside the checkpoint: not in the run
            shutil.copy(weights, checkpoint)
            model = load_model(str(checkpoint))
            train_args = (getattr(model, "ckpt", None) or {}).get("train_args") or {}
            data = args.data or str(train_args.get("data"))
            check_dataset(data, "detect")
            check_held_out(data)
            imgsz = args.imgsz or int(train_args.get("imgsz") or 640)
            exported = export(model, "openvino", imgsz, data, 1.0, int8=False)
            results = {}
            for label, precision in ((f"default ({default})", None), ("f32", "f32")):
                with forced_openvino_precision(precision):
                    results[label] = accuracy = validate(exported, data, imgsz)
                print(
                    f"| {weights} | {imgsz} | {label} | {accuracy.map50_95:.4f} | {accuracy.map50:.4f} "
                    f"| {accuracy.inference_ms:.1f} |"
                )
            loss = 100 * (results["f32"].map50_95 - results[f"default ({default})"].map50_95)
            losses.append(loss)
            sys.stdout.flush()
    print(f"\nThe default precision ({default}) against f32, mAP50-95 points lost per checkpoint: ")
    print(", ".join(f"{loss:+.2f}" for loss in losses))
    verdict = "more" if max(losses) > LIMIT_POINTS else "no more"
    print(f"Worst: {max(losses):.2f} points: {verdict} than the {LIMIT_POINTS} allowed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
