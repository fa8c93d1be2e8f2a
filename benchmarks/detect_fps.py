"""End-to-end detection FPS of yolov8n-fasternet next to stock yolov8n, through detect_yolo.py's own pipeline.

Both models run in this one process on the same video, alternating (A, B, A, B, ...) so both see the same machine
noise, each through ``detect_yolo.run`` exactly as ``detect_yolo.py --source VIDEO --no-show`` runs: decode, the
Ultralytics predictor (preprocess, inference, NMS), drawing boxes and the overlay, every frame in order, after the
script's own warm-up. The FPS printed is the median over rounds of each run's mean FPS; the p50 columns pool the
frames of all rounds.

    python benchmarks/detect_fps.py                                   # 640 and 320 px on a generated 640x480 video
    python benchmarks/detect_fps.py --video clip.mp4 --imgsz 640 --device 0 --frames 300
    python benchmarks/detect_fps.py --model runs/a/best.pt --baseline runs/b/best.pt

Without --model/--baseline both models have random weights: the network costs the same as trained, but with no
boxes to keep, NMS and drawing are cheaper than on a trained model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
import ultralytics

from yolo_fasternet.apps import detect as detect_yolo  # the pipeline measured is the command's own

REPO = Path(__file__).resolve().parents[1]


def make_video(path: Path, frames: int, size: tuple[int, int] = (640, 480), fps: float = 30) -> Path:
    """A deterministic video of coloured shapes moving over a textured background (webcam resolution)."""
    width, height = size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([(xx * 255 // width), (yy * 255 // height), ((xx + yy) * 127 // (width + height))], -1)
    background = (background + rng.integers(0, 40, background.shape)).clip(0, 255).astype(np.uint8)
    shapes = [(rng.integers(20, 60), rng.uniform(-6, 6, 2), rng.integers(0, 255, 3).tolist()) for _ in range(6)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        image = background.copy()
        for k, (radius, velocity, colour) in enumerate(shapes):
            x = int((width / 2 + 150 * np.cos(k) + velocity[0] * i) % width)
            y = int((height / 2 + 100 * np.sin(k) + velocity[1] * i) % height)
            if k % 2:
                cv2.circle(image, (x, y), int(radius), colour, cv2.FILLED)
            else:
                cv2.rectangle(image, (x - radius, y - radius), (x + radius, y + radius), colour, cv2.FILLED)
        writer.write(image)
    writer.release()
    return path


def short_name(weights: str) -> str:
    """``yolov8n-fasternet`` for a bundled YAML, the path as given for a checkpoint."""
    return Path(weights).stem if weights.endswith((".yaml", ".yml")) else weights


def measure(detect_yolo, weights: str, video: Path, imgsz: int, device: str, frames: int):
    """One run of the detection pipeline; returns its ``Summary``. Its console output is swallowed."""
    args = detect_yolo.parse_args(
        ["--weights", weights, "--source", str(video), "--imgsz", str(imgsz), "--device", device]
        + ["--no-show", "--max-frames", str(frames)]
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return detect_yolo.run(args)


def main(argv: list[str] | None = None) -> None:
    """Run both models alternately at each size and print FPS, p50 stage times and the FPS ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="yolov8n-fasternet.yaml", help="default: %(default)s")
    parser.add_argument("--baseline", default="yolov8n.yaml", help="default: %(default)s")
    parser.add_argument("--video", type=Path, help="video to run on (default: a generated 640x480 one)")
    parser.add_argument("--frames", type=int, default=60, help="frames per run (default: %(default)s)")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640, 320], help="default: %(default)s")
    parser.add_argument("--rounds", type=int, default=3, help="runs per model and size (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="default: %(default)s")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or make_video(Path(tmp) / "benchmark.mp4", args.frames)
        capture = cv2.VideoCapture(str(video))
        size = f"{int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
        capture.release()
        print(
            f"detect_fps: {args.frames} frames of a {size} video ({video.name}) per run, {args.rounds} alternating "
            f"rounds, device {args.device}; Ultralytics {ultralytics.__version__}, torch {torch.__version__}"
        )
        print(
            f"{'imgsz':<6} {'model':<24} {'FPS':>7} {'pre p50':>8} {'inf p50':>8} {'post p50':>9} {'latency p50':>12}"
        )
        for imgsz in args.imgsz:
            runs = {args.model: [], args.baseline: []}
            for _ in range(args.rounds):
                for weights in runs:
                    runs[weights].append(measure(detect_yolo, weights, video, imgsz, args.device, args.frames))
            fps = {}
            for weights, summaries in runs.items():
                fps[weights] = statistics.median(s.fps for s in summaries)
                p50 = {k: np.median([t for s in summaries for t in s.times_ms[k]]) for k in summaries[0].times_ms}
                print(
                    f"{imgsz:<6} {short_name(weights):<24} {fps[weights]:>7.2f} {p50['preprocess']:>8.1f}"
                    f" {p50['inference']:>8.1f} {p50['postprocess']:>9.1f} {p50['latency']:>12.1f}"
                )
            ratio = fps[args.model] / fps[args.baseline]
            print(f"{imgsz:<6} FPS ratio {short_name(args.model)} / {short_name(args.baseline)}: {ratio:.2f}x")
        # Ultralytics' select_device() sets the CPU thread count (min(8, cores - 1)) when the predictor starts.
        print(f"torch CPU threads as the Ultralytics predictor ran: {torch.get_num_threads()}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
