"""Real-time detection with a (FasterNet) YOLO model on a webcam, stream, video file, image or folder of images.

    python detect_yolo.py --weights runs/detect/train/weights/best.pt --source 0          # webcam 0, in a window
    python detect_yolo.py --weights best.pt --source clip.mp4 --save --no-show            # every frame, saved
    python detect_yolo.py --weights best.pt --source rtsp://192.168.1.20:554/live --imgsz 480
    python detect_yolo.py --weights yolov8n-fasternet.yaml --source clip.mp4 --max-frames 30   # smoke run
    python detect_yolo.py --weights best_int8_openvino_model --source 0        # an exported model (OpenVINO INT8)

A trained ``.pt`` runs on the fastest runtime measured on this CPU (``--runtime auto``, the default; see
``runtime_choice``): the first run exports it once to OpenVINO and ONNX Runtime where installed (kept in the export
cache, ``export_cache``), times them and PyTorch on the warm-up frames and keeps the fastest; ``--runtime torch``
never exports. On a GPU it runs in PyTorch. Exported models (ONNX, OpenVINO, TorchScript: whatever ``YOLO()`` loads)
run as they are. On a CPU the model's thread count is measured, not assumed (``--threads auto``): after the warm-up,
1..cores threads each run a few frames of the full per-frame work next to the capture thread, and the fastest count
is kept and printed in the summary.

Live sources (a camera index or a stream URL, or a video file with --live) are read on their own thread and the
model always takes the newest frame: when it is slower than the source, stale frames are dropped and counted instead
of queueing up, so what is shown stays current. Video files and images are processed frame by frame, in order.
Stop with q or Esc in the window, or Ctrl-C; the saved video is finalized either way. The summary at the end gives
frames read, processed and dropped, the mean end-to-end FPS, and p50/p95 of the preprocess, inference and
postprocess times and of the latency from frame capture to annotated frame.

Saved videos (--save, mp4v) play in real time. A video file is written frame for frame at its own frame rate. A live
source is written at the frame rate it reports (30 where it reports none), one video frame per source frame: each
processed frame is held over the slots of the frames dropped after it, so the video shows what was on screen and
never holds more frames than the source delivered.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from ultralytics import YOLO
from ultralytics.utils import DEFAULT_CFG_DICT, TQDM
from ultralytics.utils.files import increment_path

from ..error_text import first_line
from .arguments import key_value_to_options
from .command_errors import CommandError, CommandParser, command
from .detection.export_cache import CACHE_ENV
from .detection.inference_threads import cpu_cores
from .detection.live_capture import Frame, LatestFrameCapture
from .detection.runtime_choice import RUNTIMES, Choice, RuntimeChooser
from .detection.video_source import (
    DEFAULT_FPS,
    SourceError,
    SourceSpec,
    capture_fps,
    capture_frame_count,
    capture_size,
    image_frames,
    open_capture,
    parse_source,
    video_frames,
)
from .preflight import check_device, check_output_folder

# FFmpeg's own log lines ("Connection refused", "moov atom not found") would follow our one-line errors and
# interleave with the progress line; OpenCV reads this when it first uses FFmpeg. Set it to 16 to see them again.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

EXIT_ERROR = 1  # a live source that failed after frames were processed; the summary is printed first
FIRST_FRAME_TIMEOUT_S = 15.0  # a camera can take a few seconds to start streaming
LIVE_POLL_S = 0.05  # while waiting for a live frame, how often keys and Ctrl-C are looked at
QUIT_KEYS = {ord("q"), ord("Q"), 27}  # 27: Esc
FPS_SMOOTHING = 0.1  # weight of the newest frame interval in the on-screen FPS
# Ultralytics rounds imgsz up to a multiple of the stride (32); above 8192 a frame's tensors alone exceed most memory.
MIN_IMGSZ, MAX_IMGSZ = 32, 8192
STAGES = ("preprocess", "inference", "postprocess")  # the keys of Ultralytics' Results.speed, in ms
_END = object()


class DetectError(CommandError):
    """A model, device or output problem; the message is one line, meant for the user."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = CommandParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    add = parser.add_argument
    add(
        "--weights",
        required=True,
        help="trained checkpoint (.pt), an exported model (.onnx, .torchscript, .mnn, a LiteRT .tflite, an OpenVINO "
        "*_openvino_model or NCNN *_ncnn_model folder: what YOLO() loads), or a model YAML such as "
        "yolov8n-fasternet.yaml (a smoke run, random weights)",
    )
    add(
        "--source",
        default="0",
        help="camera index, video file, image, folder of images, or stream URL (rtsp://, http://, ...) "
        "(default: %(default)s)",
    )
    add(
        "--imgsz",
        type=int,
        default=640,
        help=f"inference size in pixels, {MIN_IMGSZ}..{MAX_IMGSZ} (default: %(default)s)",
    )
    add("--conf", type=float, default=0.25, help="confidence threshold (default: %(default)s)")
    add("--iou", type=float, default=0.7, help="NMS IoU threshold (default: %(default)s)")
    add("--device", help="cpu, 0, cuda:1, mps, ... (default: GPU 0 if there is one, else cpu)")
    add("--half", action="store_true", help="FP16 inference where the device supports it (CUDA)")
    add(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="what runs a .pt checkpoint: 'auto' exports it once (cached) to OpenVINO and ONNX Runtime where "
        "installed, times them and PyTorch on the warm-up frames and keeps the fastest (PyTorch on a GPU); 'torch' "
        "never exports; "
        "'openvino'/'onnx' use that export; 'openvino-int8' the INT8 model 'yolo-fasternet quantize' made "
        "(default: %(default)s)",
    )
    add(
        "--export-cache",
        type=Path,
        help=f"folder for the exports --runtime makes (default: ${CACHE_ENV}/exports, else "
        "~/.cache/yolo-fasternet/exports; a temporary folder where it cannot be written)",
    )
    add(
        "--threads",
        default="auto",
        help="CPU inference threads (1..cores; more is lowered to the cores, with a notice), or 'auto': time "
        "1..cores threads on the warm-up frame next to the capture thread and keep the fastest (default: "
        "%(default)s; Ultralytics alone uses cores - 1 for PyTorch)",
    )
    add(
        "--show",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the annotated frames in a window (default: when a display is available)",
    )
    add("--save", action="store_true", help="save the annotated video (or images) into --output")
    add("--output", type=Path, help="folder for --save (default: runs/detect_yolo/run, run2, ...)")
    add("--max-frames", type=int, help="stop after this many processed frames")
    add(
        "--live",
        action="store_true",
        help="treat a video file like a camera: play it back in real time at its frame rate on the capture "
        "thread, dropping the frames the model cannot keep up with",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; a bad value exits with status 2 and a one-line error."""
    parser = build_parser()
    args = parser.parse_args(key_value_to_options(argv, parser))
    problems = [
        (not MIN_IMGSZ <= args.imgsz <= MAX_IMGSZ, f"--imgsz must be {MIN_IMGSZ}..{MAX_IMGSZ}, got {args.imgsz}"),
        (not 0 <= args.conf <= 1, f"--conf must be between 0 and 1, got {args.conf}"),
        (not 0 <= args.iou <= 1, f"--iou must be between 0 and 1, got {args.iou}"),
        (args.max_frames is not None and args.max_frames <= 0, f"--max-frames must be positive, got {args.max_frames}"),
    ]
    if args.threads != "auto":
        threads = int(args.threads) if args.threads.isdigit() else 0
        problems.append((threads < 1, f"--threads must be 'auto' or a positive integer, got {args.threads!r}"))
        args.threads = threads
    for failed, message in problems:
        if failed:
            parser.exit(2, f"{parser.prog}: error: {message}\n")
    cores = cpu_cores()
    if args.threads != "auto" and args.threads > cores:
        print(f"--threads {args.threads}: this machine has {cores} cores; using {cores}", file=sys.stderr)
        args.threads = cores
    return args


# --- timing --------------------------------------------------------------------------------------------------------


@dataclass
class Summary:
    """What a run did: frame counts, wall time and per-frame times in milliseconds."""

    description: str
    live: bool
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    elapsed_s: float = 0.0
    times_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in (*STAGES, "latency")})
    stop_reason: str = "end of stream"
    saved: Path | None = None
    saved_frames: int = 0
    error: str | None = None  # a live source that failed after frames were processed
    threads: str = ""  # the CPU inference threads and how they were chosen
    runtime: str = ""  # the runtime the model ran on and why (--runtime)
    export_s: float = 0.0  # seconds this run spent exporting the checkpoint (0: none, or every export was cached)
    runtime_fps: dict[str, float] = field(default_factory=dict)  # --runtime auto: the FPS measured per runtime
    signum: int | None = None  # the stop signal (SIGINT, SIGTERM) that ended the run, if one did

    @property
    def fps(self) -> float:
        """Mean end-to-end frames per second: processed frames over the wall time of the processing loop."""
        return self.frames_processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentiles(self, key: str) -> tuple[float, float]:
        """p50 and p95 of one time series (NaN when nothing was processed)."""
        values = self.times_ms[key]
        return tuple(np.percentile(values, [50, 95]).tolist()) if values else (float("nan"), float("nan"))

    def report(self) -> str:
        """The console summary; tests and the benchmark read its lines, so keep their shape."""
        lines = [
            f"Summary: {self.description}",
            f"  frames: read {self.frames_read}, processed {self.frames_processed}, dropped {self.frames_dropped}"
            f" ({'live: newest frame only' if self.live else 'file: every frame'}); stopped: {self.stop_reason}",
            f"  mean FPS: {self.fps:.2f} ({self.frames_processed} frames in {self.elapsed_s:.2f} s, end to end)",
            *([f"  runtime: {self.runtime}"] if self.runtime else []),
            *([f"  threads: {self.threads}"] if self.threads else []),
            f"  {'ms':<12} {'p50':>8} {'p95':>8}",
        ]
        for key in (*STAGES, "latency"):
            p50, p95 = self.percentiles(key)
            note = "  (capture to annotated frame)" if key == "latency" else ""
            lines.append(f"  {key:<12} {p50:>8.1f} {p95:>8.1f}{note}")
        if self.saved is not None:
            lines.append(f"  saved: {self.saved} ({self.saved_frames} {'images' if self.saved.is_dir() else 'frames'})")
        return "\n".join(lines)


class FpsMeter:
    """The on-screen FPS: an exponential moving average of the interval between processed frames."""

    def __init__(self):
        self._last: float | None = None
        self._interval: float | None = None

    def tick(self) -> float | None:
        """Record a processed frame; return the smoothed FPS, or None before there are two frames."""
        now = time.perf_counter()
        if self._last is not None:
            dt = now - self._last
            self._interval = dt if self._interval is None else (1 - FPS_SMOOTHING) * self._interval + FPS_SMOOTHING * dt
        self._last = now
        return 1 / self._interval if self._interval else None


def draw_overlay(image: np.ndarray, fps: float | None, speed: dict, latency_ms: float, dropped: int | None) -> None:
    """Write FPS, inference time, latency (and dropped frames, for live sources) in the top-left corner."""
    parts = [
        f"{fps:.1f} FPS" if fps else "-- FPS",
        f"infer {speed['inference']:.0f} ms",
        f"latency {latency_ms:.0f} ms",
    ]
    if dropped is not None:
        parts.append(f"dropped {dropped}")
    text = "  ".join(parts)
    height, width = image.shape[:2]
    scale = max(0.4, min(width, height) / 800)
    thickness = max(1, round(scale * 2))
    (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, th // 3)
    cv2.rectangle(image, (0, 0), (tw + 2 * pad, th + baseline + 2 * pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


# --- display, output, signals ----------------------------------------------------------------------------------------


def display_problem() -> str | None:
    """Why no window can be opened here, or None if one probably can.

    On Linux, OpenCV's Qt backend aborts the whole process when there is no display, so this must be decided from
    the environment before any window call; elsewhere a failing window call raises ``cv2.error``.
    """
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None


class Window:
    """An OpenCV window that reports q, Esc and the window being closed as a quit request."""

    def __init__(self, title: str):
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, image: np.ndarray) -> bool:
        """Show a frame; True if the user asked to quit."""
        cv2.imshow(self.title, image)
        return self.poll()

    def poll(self) -> bool:
        """Let the window handle its events; True if the user asked to quit."""
        key = cv2.waitKey(1) & 0xFF
        return key in QUIT_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        """Close the window."""
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # lets the GUI thread actually take the window down


def open_window(show: bool | None, title: str) -> Window | None:
    """A window if ``show`` asks for one (None: if there is a display); with --show and no display, say so."""
    if show is False:
        return None
    problem = display_problem()
    if problem is None:
        try:
            return Window(title)
        except cv2.error as e:  # e.g. opencv-python-headless: "The function is not implemented"
            problem = f"OpenCV cannot open a window ({str(e).strip().splitlines()[-1]})"
    if show:
        print(f"--show: {problem}; carrying on without a window", file=sys.stderr)
    return None


class VideoSink:
    """Write annotated frames to an mp4v video; see the module docstring for the frame rate of live sources."""

    def __init__(self, path: Path, fps: float, live: bool):
        self.path, self.fps, self.live = path, fps, live
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._first_index = 0
        self._last: np.ndarray | None = None

    def write(self, image: np.ndarray, frame: Frame) -> None:
        """Append ``image``; for a live source, first hold the previous frame until ``frame``'s capture time."""
        if self._writer is None:
            height, width = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._writer.isOpened():
                raise DetectError(f"cannot write video {self.path} (mp4v, {width}x{height} at {self.fps:g} FPS)")
            self._first_index = frame.index
        if self.live and self._last is not None:
            due = frame.index - self._first_index  # this frame's slot: one video frame per source frame
            while self.frames < due:
                self._writer.write(self._last)
                self.frames += 1
        self._writer.write(image)
        self.frames += 1
        self._last = image

    def close(self) -> None:
        """Finalize the file (writes the index that makes an mp4 playable)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class ImageSink:
    """Write each annotated image under its source name into a folder."""

    def __init__(self, folder: Path, names: tuple[Path, ...]):
        self.path, self._names = folder, names
        self.frames = 0

    def write(self, image: np.ndarray, frame: Frame) -> None:
        """Write the annotated image for ``frame``."""
        target = self.path / self._names[frame.index].name
        if not cv2.imwrite(str(target), image):
            raise DetectError(f"cannot write image {target}")
        self.frames += 1

    def close(self) -> None:
        """Nothing to finalize: every image is complete when written."""


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current frame, so outputs are finalized.

    A second Ctrl-C interrupts at once (``KeyboardInterrupt``). Signal handlers can only be installed from the
    main thread; elsewhere (the script run from a worker thread) only the window keys stop the loop.
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived."""
        return self.signum is not None

    def _handle(self, signum, _frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print("\nStopping after the current frame (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


# --- the run ---------------------------------------------------------------------------------------------------------


def fp16_kwargs(half: bool) -> dict:
    """The predict argument asking for FP16: ``quantize=16`` where Ultralytics has it (8.4.x warns on every call
    given ``half``), ``half=True`` before that; nothing at all for FP32."""
    if not half:
        return {}
    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}


def live_frames(capture: LatestFrameCapture) -> Iterator[Frame | None]:
    """Newest frames of a live capture; None while none has arrived yet, so the caller can poll keys and signals."""
    while not capture.finished:
        yield capture.read(timeout=LIVE_POLL_S)


def first_live_frame(capture: LatestFrameCapture, spec: SourceSpec) -> Frame:
    """Wait for the first frame of a live source; a source that never delivers one is an error, not a hang."""
    frame = capture.read(timeout=FIRST_FRAME_TIMEOUT_S)
    if frame is not None:
        return frame
    if capture.error is not None:
        raise SourceError(f"cannot read {spec}: {first_line(capture.error)}")
    if capture.finished:
        raise SourceError(f"cannot read {spec}: it opened but delivered no frames")
    raise SourceError(f"cannot read {spec}: no frame within {FIRST_FRAME_TIMEOUT_S:g} s")


@dataclass
class OpenSource:
    """An opened source: how to get its frames and what it says about itself."""

    spec: SourceSpec
    live: bool
    capture: cv2.VideoCapture | None = None  # video files, cameras, streams
    latest: LatestFrameCapture | None = None  # live sources: the capture, read on its own thread
    fps: float | None = None
    size: tuple[int, int] | None = None
    total: int | None = None  # frames to expect, for the progress bar

    def frames(self) -> Iterator[Frame | None]:
        """The frames to process (None: a live source has no new frame yet). Starts a live capture's thread."""
        if self.latest is not None:
            self.latest.start()
            return itertools.chain([first_live_frame(self.latest, self.spec)], live_frames(self.latest))
        return video_frames(self.capture) if self.capture is not None else image_frames(self.spec.images)


def open_source(args: argparse.Namespace, stack: contextlib.ExitStack) -> OpenSource:
    """Parse and open ``args.source``; ``stack`` releases it."""
    spec = parse_source(args.source)
    if args.live and spec.kind == "images":
        raise SourceError("--live needs a video file: images are always processed one by one")
    source = OpenSource(spec, live=spec.live or args.live)
    if spec.kind == "images":
        source.total = len(spec.images)
    else:
        source.capture = open_capture(spec)
        source.fps, source.size = capture_fps(source.capture), capture_size(source.capture)
        if source.live:
            # --live paces a file at its own frame rate; cameras and streams pace themselves.
            pace = None if spec.live else source.fps or DEFAULT_FPS
            source.latest = LatestFrameCapture(source.capture, pace_fps=pace)
            stack.callback(source.latest.stop)  # also releases the capture
        else:
            stack.callback(source.capture.release)
            source.total = capture_frame_count(source.capture)
    if args.max_frames:
        source.total = min(source.total, args.max_frames) if source.total else args.max_frames
    return source


def load_and_warm_up(args: argparse.Namespace, size: tuple[int, int] | None) -> tuple[YOLO, dict, Choice]:
    """Load the model on the runtime ``--runtime`` picks, warmed up on blank frames of the source's size.

    Returns the model, the keyword arguments for ``model.predict`` and the runtime choice (with its threads line).
    """
    predict_kwargs = {"imgsz": args.imgsz, "conf": args.conf, "iou": args.iou, "device": args.device}
    predict_kwargs.update(verbose=False, **fp16_kwargs(args.half))
    width, height = size or (640, 480)
    choice = RuntimeChooser(args, np.zeros((height, width, 3), np.uint8), predict_kwargs).choose()
    model = choice.chosen.model
    if args.half and not getattr(model.predictor.model, "fp16", False):
        print(f"--half: no FP16 inference on {model.predictor.device.type}; running FP32", file=sys.stderr)
    return model, predict_kwargs, choice


def output_folder(args: argparse.Namespace) -> Path:
    """The ``--save`` folder, checked (not created) so that an impossible one fails before the model is loaded."""
    folder = args.output or increment_path(Path("runs/detect_yolo/run"), sep="")
    check_output_folder(folder, "--output")
    return folder


def make_sink(folder: Path, source: OpenSource) -> VideoSink | ImageSink:
    """Where ``--save`` writes: a video named after the source, or the annotated images under their own names."""
    folder.mkdir(parents=True, exist_ok=True)
    if source.spec.kind == "images":
        return ImageSink(folder, source.spec.images)
    return VideoSink(folder / f"{source.spec.stem}.mp4", source.fps or DEFAULT_FPS, source.live)


def run(args: argparse.Namespace) -> Summary:
    """Detect on ``args.source`` with ``args.weights`` and return the summary (also used by the benchmark)."""
    with contextlib.ExitStack() as stack:
        check_device(args.device)
        folder = output_folder(args) if args.save else None
        source = open_source(args, stack)
        model, predict_kwargs, choice = load_and_warm_up(args, source.size)
        spec, latest = source.spec, source.latest
        summary = Summary(f"{args.weights} on {spec} imgsz={args.imgsz} device={model.predictor.device}", source.live)
        summary.threads, summary.runtime, summary.export_s = choice.chosen.threads, choice.line, choice.export_s
        summary.runtime_fps = {c.runtime: c.fps for c in choice.candidates if c.fps is not None}
        sink = make_sink(folder, source) if folder is not None else None
        if sink is not None:
            stack.callback(sink.close)
        window = open_window(args.show, f"detect_yolo: {spec}")
        if window is not None:
            stack.callback(window.close)
        stop = stack.enter_context(StopRequest())

        frames = source.frames()
        keys = "q or Esc in the window, or Ctrl-C" if window else "Ctrl-C"
        print(f"Detecting: {summary.description} ({'live' if source.live else 'file'}); {keys} stops", flush=True)
        progress = TQDM(total=source.total, desc=f"detect {spec}", unit="frame", file=sys.stderr)
        stack.callback(progress.close)
        meter = FpsMeter()
        read = 0  # frames taken from a file or folder; a live capture counts its own
        start = time.perf_counter()
        while not stop.requested:
            frame = next(frames, _END)
            if frame is _END:
                break
            if frame is None:  # live source, no new frame yet
                if window is not None and window.poll():
                    summary.stop_reason = "quit from the window"
                    break
                continue
            read += 1
            result = model.predict(frame.image, **predict_kwargs)[0]
            annotated = result.plot()
            latency_ms = (time.perf_counter() - frame.captured_at) * 1e3
            summary.frames_processed += 1
            for key in STAGES:
                summary.times_ms[key].append(result.speed[key])
            summary.times_ms["latency"].append(latency_ms)

            fps_now = meter.tick()
            dropped = latest.frames_dropped if latest is not None else None
            draw_overlay(annotated, fps_now, result.speed, latency_ms, dropped)
            if sink is not None:
                sink.write(annotated, frame)
            progress.update()
            progress.set_postfix(fps=f"{fps_now or 0:.1f}", **({} if dropped is None else {"dropped": dropped}))
            if window is not None and window.show(annotated):
                summary.stop_reason = "quit from the window"
                break
            if args.max_frames and summary.frames_processed >= args.max_frames:
                summary.stop_reason = f"--max-frames {args.max_frames}"
                break
        summary.elapsed_s = time.perf_counter() - start
        if stop.requested:
            summary.signum, summary.stop_reason = stop.signum, signal.Signals(stop.signum).name

        if latest is not None:
            latest.stop()
            summary.frames_read = latest.frames_read
            # A frame handed out but not processed (interrupted mid-frame) was dropped as well.
            summary.frames_dropped = latest.frames_dropped + latest.frames_delivered - summary.frames_processed
            if latest.error is not None:
                summary.error = f"reading {spec} failed: {first_line(latest.error)}"
        else:
            summary.frames_read = read
            summary.frames_dropped = read - summary.frames_processed
            if read == 0 and summary.stop_reason == "end of stream":
                raise SourceError(f"cannot read {spec}: no frames")
        if sink is not None:
            sink.close()
            summary.saved, summary.saved_frames = sink.path, sink.frames
        return summary


@command("yolo-fasternet detect")
def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors print one line and return 1, a stop signal returns 128 + its number.

    A second Ctrl-C (``KeyboardInterrupt``) ends with status 130 after the outputs were closed on the way out.
    """
    args = parse_args(argv)
    prog = build_parser().prog
    summary = run(args)
    print(summary.report())
    if summary.error:
        print(f"{prog}: error: {summary.error}", file=sys.stderr)
        return EXIT_ERROR
    return 128 + summary.signum if summary.signum else 0


if __name__ == "__main__":
    raise SystemExit(main())
