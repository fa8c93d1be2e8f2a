"""End-to-end detection FPS through detect_yolo.py's own pipeline: FasterNet against stock, per runtime and precision.

Every (model, runtime) pair runs in this one process on the same video, alternating round by round so all see the
same machine noise, each through ``detect_yolo.run`` exactly as ``detect_yolo.py --source VIDEO --no-show`` runs:
decode, the Ultralytics predictor (preprocess, inference, NMS), drawing boxes and the overlay, every frame in order,
after the script's own warm-up and its thread choice (``--threads auto``: the fastest measured count). The FPS printed
is the median over rounds of each run's mean FPS; the p50 columns pool the frames of all rounds.

Runtimes: ``auto`` (what a user gets: ``detect`` with its default options on the .pt, which exports it once to
the installed runtimes, times them and PyTorch and runs the fastest; the first run of a model starts with an empty
export cache and is reported on its own row, ``auto-first``, with its export time; the rounds after it reuse the cache),
``pytorch`` (``--runtime torch``: the fused model, as ``yolo predict`` runs a .pt, and ``detect``'s default before
``--runtime``), ``onnx`` (ONNX Runtime), ``openvino`` (at
OpenVINO's CPU default precision, which is bf16 on CPUs with AMX or AVX512-BF16: the header says which),
``openvino-f32`` (the same model compiled for f32), and the INT8 forms ``openvino-int8`` (NNCF) and ``onnx-int8``
(ONNX Runtime static quantization), exported through Ultralytics (``yolo export ... quantize=8``) and calibrated on
the synthetic shapes set.

    python benchmarks/detect_fps.py                                    # n and s pairs, every runtime, 640 px
    python benchmarks/detect_fps.py --pairs yolov8s-fasternet:yolov8s --runtimes pytorch openvino openvino-int8
    python benchmarks/detect_fps.py --video clip.mp4 --imgsz 640 320 --frames 100 --rounds 3

The models have random weights: the network costs the same as trained, but with no boxes to keep, NMS and drawing
are cheaper than on a trained model (identical for every row). Accuracy of the INT8 models: ``yolo-fasternet
quantize`` on a trained checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import ultralytics
from ultralytics.utils import LOGGER

from yolo_fasternet.apps import detect as detect_yolo  # the pipeline measured is the command's own
from yolo_fasternet.apps.synthetic_data import make_synthetic_dataset

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


RUNTIMES = {  # runtime -> (Ultralytics export format or None for the .pt, INT8)
    "auto": (None, False),  # the .pt with detect's default --runtime auto (rows auto-first and auto)
    "pytorch": (None, False),
    "onnx": ("onnx", False),
    "openvino": ("openvino", False),  # at OpenVINO's CPU default precision: bf16 where the CPU has AMX/AVX512-BF16
    "openvino-f32": ("openvino", False),  # the same model compiled with INFERENCE_PRECISION_HINT f32
    "onnx-int8": ("onnx", True),
    "openvino-int8": ("openvino", True),
}


@contextlib.contextmanager
def forced_openvino_precision(precision: str | None):
    """Make every OpenVINO compile in this process use ``precision`` (``yolo predict``/``val`` cannot ask for one)."""
    if precision is None:
        yield
        return
    import openvino as ov

    original = ov.Core.compile_model

    def compile_at(self, model, device_name=None, config=None, **kwargs):
        return original(self, model, device_name, {**(config or {}), "INFERENCE_PRECISION_HINT": precision}, **kwargs)

    ov.Core.compile_model = compile_at
    try:
        yield
    finally:
        ov.Core.compile_model = original


def openvino_precision(runtime: str):
    """For ``openvino-f32``, compile every OpenVINO model for f32; other runtimes as they are."""
    return forced_openvino_precision("f32" if runtime == "openvino-f32" else None)


def cpu_description() -> str:
    """The CPU model and the flags that decide OpenVINO's precision and speed (from /proc/cpuinfo on Linux)."""
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
    have = [f for f in wanted if f in flags]
    return f"{model}, {os.cpu_count()} CPUs, flags: {' '.join(have) or 'none of ' + ' '.join(wanted)}"


def openvino_default_precision() -> str:
    """OpenVINO's default inference precision on this CPU (what ``yolo predict`` runs an OpenVINO model at)."""
    try:
        import openvino as ov

        precision = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
        return precision.to_string() if hasattr(precision, "to_string") else str(precision)
    except Exception as e:  # openvino not installed or no CPU plugin: the header says so
        return f"unknown ({type(e).__name__})"


CALIBRATION_IMAGES = 64  # synthetic images the INT8 exports calibrate on (timing does not depend on the weights)


def prepare(model: str, runtime: str, imgsz: int, folder: Path, data: str) -> str:
    """The weights detect_yolo.py is given for ``model`` on ``runtime``: a .pt, or an export of it at ``imgsz``.

    Every runtime of a model gets the same randomly initialised weights (built once, saved as ``folder/model.pt``).
    Each export runs in its own folder, from its own copy of that checkpoint, so the paths Ultralytics picks
    (``m.onnx``, ``m_int8.onnx``, ``m_openvino_model/``, ``m_int8_openvino_model/``) never collide.
    """
    from ultralytics import YOLO

    from yolo_fasternet.apps.quantize import int8_arguments

    fmt, int8 = RUNTIMES[runtime]
    built = folder / f"{model}.pt"
    if not built.exists():
        YOLO(f"{model}.yaml").save(built)
    work = folder / f"{model}-{runtime}-{imgsz}"
    work.mkdir(parents=True)
    checkpoint = work / built.name
    shutil.copy(built, checkpoint)
    if fmt is None:
        return str(checkpoint)
    kwargs = {"format": fmt, "imgsz": imgsz, "device": "cpu"}
    if int8:
        kwargs.update(int8_arguments(fmt), data=data, split="train")
    threads = torch.get_num_threads()
    with contextlib.redirect_stdout(io.StringIO()):
        exported = YOLO(checkpoint).export(**kwargs)
    torch.set_num_threads(threads)  # the exporter's select_device("cpu") leaves torch on cores - 1 threads
    return str(exported)


def measure(weights: str, video: Path, imgsz: int, frames: int, threads: str, runtime: str, cache: Path):
    """One run of the detection pipeline; returns its ``Summary`` and its wall time in seconds (set-up included).

    ``auto`` runs the .pt with detect's default ``--runtime auto`` and its exports kept in ``cache``; ``pytorch``
    runs it with ``--runtime torch``; exported models run as they are. Console output is swallowed.
    """
    argv = ["--weights", weights, "--source", str(video), "--imgsz", str(imgsz), "--device", "cpu"]
    argv += ["--threads", threads, "--no-show", "--max-frames", str(frames), "--export-cache", str(cache)]
    if runtime == "pytorch":
        argv += ["--runtime", "torch"]
    args = detect_yolo.parse_args(argv)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        summary = detect_yolo.run(args)
    return summary, time.perf_counter() - start


def print_default_rows(sizes, models, fps, first_runs, cached_runs, with_pytorch: bool) -> None:
    """What ``detect`` with default options gives on a .pt: the first run (export included) and cached runs."""
    print("\nWhat a user gets: detect's defaults (--runtime auto) on a .pt, first run and cached runs:\n")
    head = "| imgsz | model | chosen | first run: export s | first run: start-up s | first run FPS "
    head += "| cached: start-up s | cached FPS |" + (" cached FPS / --runtime torch FPS |" if with_pytorch else "")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for imgsz in sizes:
        for m in models:
            (first, first_wall), cached = first_runs[imgsz][m], cached_runs[imgsz][m]
            chosen = cached[-1][0].runtime.split(",")[0].split(" (")[0]
            startup = statistics.median(wall - s.elapsed_s for s, wall in cached)
            row = f"| {imgsz} | {m} | {chosen} | {first.export_s:.1f} | {first_wall - first.elapsed_s:.1f} "
            row += f"| {first.fps:.2f} | {startup:.1f} | {fps[imgsz, m, 'auto']:.2f} |"
            if with_pytorch:
                row += f" {fps[imgsz, m, 'auto'] / fps[imgsz, m, 'pytorch']:.2f}x |"
            print(row)


def parse_pairs(text: list[str]) -> list[tuple[str, str]]:
    """``model:stock`` arguments as (model, stock) pairs of bundled model names."""
    pairs = []
    for item in text:
        model, _, stock = item.partition(":")
        if not model or not stock:
            raise SystemExit(f"detect_fps.py: error: --pairs takes model:stock, got {item!r}")
        pairs.append((model.removesuffix(".yaml"), stock.removesuffix(".yaml")))
    return pairs


def main(argv: list[str] | None = None) -> None:
    """Run every (model, runtime) alternately at each size; print FPS, p50 times, and the ratios that matter."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--pairs", nargs="+", default=["yolov8n-fasternet:yolov8n", "yolov8s-fasternet:yolov8s"], help="model:stock")
    add("--runtimes", nargs="+", choices=list(RUNTIMES), default=list(RUNTIMES), help="default: all")
    add("--video", type=Path, help="video to run on (default: a generated 640x480 one)")
    add("--frames", type=int, default=40, help="frames per run (default: %(default)s)")
    add("--imgsz", type=int, nargs="+", default=[640], help="default: %(default)s")
    add("--rounds", type=int, default=2, help="runs per model, runtime and size (default: %(default)s)")
    add("--threads", default="auto", help="detect_yolo.py --threads (default: %(default)s)")
    args = parser.parse_args(argv)
    pairs = parse_pairs(args.pairs)
    LOGGER.setLevel(
        logging.ERROR
    )  # export and model-loading chatter (and calibration-size warnings) would bury the tables
    models = list(dict.fromkeys(m for pair in pairs for m in pair))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = args.video or make_video(folder / "benchmark.mp4", args.frames)
        capture = cv2.VideoCapture(str(video))
        size = f"{int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
        capture.release()
        data = str(make_synthetic_dataset(root=folder / "data", n_train=CALIBRATION_IMAGES, n_val=8))
        print(
            f"detect_fps: {args.frames} frames of a {size} video per run, {args.rounds} alternating rounds, CPU, "
            f"--threads {args.threads}; Ultralytics {ultralytics.__version__}, torch {torch.__version__}; OpenVINO's "
            f"CPU default precision here: {openvino_default_precision()} (the 'openvino' rows)\n"
            f"CPU: {cpu_description()}\n"
        )
        print("| imgsz | runtime | model | FPS | threads | inference p50 ms | latency p50 ms |")
        print("|---|---|---|---|---|---|---|")
        fps, first_runs, cached_runs = {}, {}, {}
        for imgsz in args.imgsz:
            weights = {(m, r): prepare(m, r, imgsz, folder, data) for r in args.runtimes for m in models}
            cache = folder / f"export-cache-{imgsz}"
            first_runs[imgsz] = {  # auto on an empty cache: export included
                m: measure(w, video, imgsz, args.frames, args.threads, r, cache)
                for (m, r), w in weights.items()
                if r == "auto"
            }
            runs = {key: [] for key in weights}
            for _ in range(args.rounds):
                for key, w in weights.items():
                    with openvino_precision(key[1]):
                        runs[key].append(measure(w, video, imgsz, args.frames, args.threads, key[1], cache))
            cached_runs[imgsz] = {m: timed for (m, r), timed in runs.items() if r == "auto"}
            runs = {key: [summary for summary, _ in timed] for key, timed in runs.items()}
            for (model, runtime), summaries in runs.items():
                fps[imgsz, model, runtime] = statistics.median(s.fps for s in summaries)
                p50 = {k: np.median([t for s in summaries for t in s.times_ms[k]]) for k in ("inference", "latency")}
                threads = summaries[-1].threads.split(" ")[0]
                print(
                    f"| {imgsz} | {runtime} | {model} | {fps[imgsz, model, runtime]:.2f} | {threads} "
                    f"| {p50['inference']:.1f} | {p50['latency']:.1f} |"
                )
            sys.stdout.flush()
        if "auto" in args.runtimes:
            print_default_rows(args.imgsz, models, fps, first_runs, cached_runs, "pytorch" in args.runtimes)
        print("\nFPS ratios (higher is better):\n")
        print("| imgsz | runtime | " + " | ".join(f"{m} / {s}" for m, s in pairs) + " |")
        print("|---|---|" + "---|" * len(pairs))
        for imgsz in args.imgsz:
            for runtime in args.runtimes:
                ratios = [fps[imgsz, m, runtime] / fps[imgsz, s, runtime] for m, s in pairs]
                print(f"| {imgsz} | {runtime} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
        int8 = [
            (fp, q)
            for fp, q in (("onnx", "onnx-int8"), ("openvino-f32", "openvino-int8"), ("openvino", "openvino-int8"))
            if fp in args.runtimes and q in args.runtimes
        ]
        if int8:
            print("\nINT8 against FP32 on the same runtime (FPS ratio):\n")
            print("| imgsz | runtime | " + " | ".join(models) + " |")
            print("|---|---|" + "---|" * len(models))
            for imgsz in args.imgsz:
                for fp32, q in int8:
                    ratios = [fps[imgsz, m, q] / fps[imgsz, m, fp32] for m in models]
                    print(f"| {imgsz} | {q} / {fp32} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
            if "pytorch" in args.runtimes:
                print("\nFastest runtime against PyTorch FP32 (what the Ultralytics predictor runs a .pt with):\n")
                for imgsz in args.imgsz:
                    for m in models:
                        best = max(args.runtimes, key=lambda r: fps[imgsz, m, r])
                        gain = fps[imgsz, m, best] / fps[imgsz, m, "pytorch"]
                        print(f"- {imgsz} px {m}: {best} {fps[imgsz, m, best]:.2f} FPS, {gain:.2f}x PyTorch FP32")


if __name__ == "__main__":
    main()
