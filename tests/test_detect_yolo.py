"""detect_yolo.py and its live capture: every frame of a file, newest frame of a live source, outputs, clean errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolo_fasternet.apps import detect as detect_yolo
from yolo_fasternet.apps.detection import runtime_choice
from yolo_fasternet.apps.detection.live_capture import LatestFrameCapture
from yolo_fasternet.apps.detection.video_source import SourceError, parse_source
from yolo_fasternet.cli import main as cli_main

from conftest import REPO

SCRIPT = REPO / "detect_yolo.py"


def detect_command(argv: list[str]) -> int:
    """``yolo-fasternet detect ...`` in this process."""
    return cli_main(["detect", *argv])


TINY = ["--weights", "yolov8n-fasternet.yaml", "--imgsz", "96"]  # random weights: the pipeline, not the boxes
SIZE = (160, 120)  # width, height: not square, so letterboxing and the saved size are both exercised


# --- helpers ---------------------------------------------------------------------------------------------------------


def write_video(path: Path, frames: int, fps: float, size: tuple[int, int] = SIZE) -> Path:
    """A video of a ball moving across a grey background."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        image = np.full((size[1], size[0], 3), 90, np.uint8)
        cv2.circle(image, (10 + (i * 3) % (size[0] - 20), size[1] // 2), 12, (0, 200, 255), cv2.FILLED)
        writer.write(image)
    writer.release()
    return path


def read_video(path: Path) -> tuple[int, float, tuple[int, int]]:
    """Frames actually decodable (not the container's claim), frame rate and (width, height) of a saved video."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"saved video does not open: {path}"
    frames = 0
    while capture.read()[0]:
        frames += 1
    fps, size = capture.get(cv2.CAP_PROP_FPS), (int(capture.get(3)), int(capture.get(4)))
    capture.release()
    return frames, fps, size


def headless_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


@pytest.fixture
def no_display(monkeypatch):
    """Run in-process as on a headless server, whatever the machine running the tests has."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)


def run_script(*args: str, cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=headless_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def parse_summary(stdout: str) -> dict:
    """The figures of the summary detect_yolo.py prints."""
    counts = re.search(r"frames: read (\d+), processed (\d+), dropped (\d+)", stdout)
    fps = re.search(r"mean FPS: ([\d.]+) \((\d+) frames in ([\d.]+) s", stdout)
    assert counts and fps, stdout
    summary = dict(zip(("read", "processed", "dropped"), map(int, counts.groups())))
    summary.update(fps=float(fps[1]), fps_frames=int(fps[2]), elapsed=float(fps[3]))
    rows = re.findall(r"^\s+(preprocess|inference|postprocess|latency)\s+([\d.]+)\s+([\d.]+)", stdout, re.M)
    for key, p50, p95 in rows:
        summary[key] = (float(p50), float(p95))
    saved = re.search(r"saved: (.+) \((\d+) (?:frames|images)\)", stdout)
    if saved:
        summary.update(saved=Path(saved[1]), saved_frames=int(saved[2]))
    return summary


def check_timings(summary: dict) -> None:
    """Every stage reported, p50 <= p95, and the mean FPS agrees with the frame count and wall time it quotes."""
    for key in ("preprocess", "inference", "postprocess", "latency"):
        p50, p95 = summary[key]
        assert 0 <= p50 <= p95, (key, p50, p95)
    assert summary["inference"][0] > 0
    # a frame's latency covers its own pre + inference + post (p50s of sums are not sums of p50s: compare loosely)
    assert summary["latency"][0] >= summary["inference"][0] * 0.9
    assert summary["fps_frames"] == summary["processed"]
    assert summary["fps"] == pytest.approx(summary["processed"] / summary["elapsed"], rel=0.05)


# --- the script on files ---------------------------------------------------------------------------------------------


def test_video_file_processes_every_frame_and_saves_it(tmp_path):
    video = write_video(tmp_path / "clip.mp4", frames=30, fps=25)
    out = tmp_path / "runs" / "detect_yolo" / "run"  # the default --output, as the README says
    proc = run_script(*TINY, "--source", str(video), "--save", "--show", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("--show: no display") == 1  # headless: said once, and the run carried on

    summary = parse_summary(proc.stdout)
    assert (summary["read"], summary["processed"], summary["dropped"]) == (30, 30, 0)
    check_timings(summary)
    assert tmp_path / summary["saved"] == out / "clip.mp4"  # printed as given: relative to the working directory
    assert summary["saved_frames"] == 30
    frames, fps, size = read_video(out / "clip.mp4")
    assert (frames, size) == (30, SIZE)
    assert fps == pytest.approx(25)


def test_max_frames_stops_a_file_early(tmp_path, capsys, no_display):
    video = write_video(tmp_path / "clip.mp4", frames=20, fps=25)
    code = detect_command([*TINY, "--source", str(video), "--max-frames", "7", "--save", "--output", str(tmp_path)])
    summary = parse_summary(capsys.readouterr().out)
    assert code == 0
    assert (summary["read"], summary["processed"], summary["dropped"]) == (7, 7, 0)
    assert read_video(tmp_path / "clip.mp4")[0] == 7


def test_image_folder_saves_each_image(tmp_path, capsys, no_display):
    folder = tmp_path / "images"
    folder.mkdir()
    shapes = {"a.jpg": (100, 150), "b.png": (120, 90)}
    for name, (h, w) in shapes.items():
        cv2.imwrite(str(folder / name), np.full((h, w, 3), 127, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert detect_command([*TINY, "--source", str(folder), "--save", "--output", str(out), "--no-show"]) == 0
    summary = parse_summary(capsys.readouterr().out)
    assert (summary["read"], summary["processed"], summary["dropped"]) == (2, 2, 0)
    assert {p.name: cv2.imread(str(p)).shape[:2] for p in out.iterdir()} == shapes


# --- the script on a live source -------------------------------------------------------------------------------------


class SlowModel:
    """A model that takes at least ``delay`` seconds longer per call: a big model on a slow machine, anywhere."""

    def __init__(self, model, delay: float):
        self.model, self.delay = model, delay

    def predict(self, *args, **kwargs):
        time.sleep(self.delay)
        return self.model.predict(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_live_source_drops_stale_frames_and_latency_stays_bounded(tmp_path, capsys, no_display, monkeypatch):
    # --live plays the file back in real time at 100 FPS; the model manages at most 40 FPS, so frames must be dropped.
    # Read in order instead, the last frame would be shown about 1.5 s after it was captured.
    load_model = runtime_choice.load_model  # where detect loads its model
    monkeypatch.setattr(runtime_choice, "load_model", lambda weights: SlowModel(load_model(weights), delay=0.025))
    video = write_video(tmp_path / "fast.mp4", frames=100, fps=100)
    out = tmp_path / "out"
    assert detect_command([*TINY, "--source", str(video), "--live", "--save", "--output", str(out)]) == 0
    summary = parse_summary(capsys.readouterr().out)
    assert summary["read"] == 100
    assert summary["dropped"] > 0
    assert summary["processed"] + summary["dropped"] == summary["read"]
    check_timings(summary)
    assert summary["latency"][1] < 300, summary["latency"]  # p95 in ms
    # the live video has one frame per source frame: held frames fill the dropped ones' slots
    frames, fps, size = read_video(out / "fast.mp4")
    assert size == SIZE and fps == pytest.approx(100)
    assert frames == summary["saved_frames"]
    assert summary["processed"] <= frames <= summary["read"]


def test_ctrl_c_stops_cleanly_and_the_video_plays(tmp_path):
    video = write_video(tmp_path / "long.mp4", frames=600, fps=30)  # 20 s of real-time playback: ample to interrupt
    out = tmp_path / "out"
    args = [*TINY, "--source", str(video), "--live", "--save", "--output", str(out), "--no-show"]
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        cwd=tmp_path,
        env=headless_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    reader.start()  # drain stderr (the progress line) so the process never blocks on a full pipe
    try:
        first = next((line for line in proc.stdout if line.startswith("Detecting:")), "")
        assert first, "the script ended before it started detecting"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout = first + proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    reader.join(10)
    assert proc.returncode == 128 + signal.SIGINT
    assert "Traceback" not in stderr[0]
    summary = parse_summary(stdout)
    assert "stopped: SIGINT" in stdout
    assert summary["processed"] > 0 and summary["read"] < 600
    assert summary["processed"] + summary["dropped"] == summary["read"]
    frames, _, size = read_video(out / "long.mp4")
    assert frames == summary["saved_frames"] > 0 and size == SIZE


# --- errors ----------------------------------------------------------------------------------------------------------


def one_error_line(stderr: str) -> str:
    """The error line of a failed run, checking it is the only one and that no traceback came with it."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(("detect_yolo.py: error: ", "yolo-fasternet detect: error: ")), (
        stderr
    )
    return errors[0]


def test_missing_file_and_camera_fail_cleanly_in_a_real_process(tmp_path):
    cases = {"missing.mp4": "source not found: missing.mp4", "99": "cannot open camera 99"}
    procs = {  # both at once: most of each run is importing torch
        source: subprocess.Popen(
            [sys.executable, str(SCRIPT), "--weights", "yolov8n-fasternet.yaml", "--source", source],
            cwd=tmp_path,
            env=headless_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in cases
    }
    for source, proc in procs.items():
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr
        assert cases[source] in one_error_line(stderr)


@pytest.mark.parametrize(
    "source, weights, message",
    [
        ("rtsp://127.0.0.1:9/none", "yolov8n-fasternet.yaml", "cannot open stream rtsp://127.0.0.1:9/none"),
        ("garbage.mp4", "yolov8n-fasternet.yaml", "cannot read video garbage.mp4"),
        ("empty", "yolov8n-fasternet.yaml", "no images in folder empty"),
        ("clip.mp4", "missing.pt", "model missing.pt: no such file"),
    ],
    ids=["unreachable-stream", "unreadable-video", "folder-without-images", "missing-weights"],
)
def test_more_errors_are_one_line_with_exit_1(tmp_path, capsys, monkeypatch, source, weights, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.mp4").write_bytes(b"\x00not a video" * 100)
    (tmp_path / "empty").mkdir()
    write_video(tmp_path / "clip.mp4", frames=2, fps=25)
    assert detect_command(["--weights", weights, "--source", source, "--no-show"]) == 1
    assert message in one_error_line(capsys.readouterr().err)


def test_bad_option_values_exit_2():
    for argv in (["--conf", "1.5"], ["--max-frames", "0"], ["--imgsz", "-1"]):
        with pytest.raises(SystemExit) as exc:
            detect_yolo.parse_args(["--weights", "x.pt", *argv])
        assert exc.value.code == 2


def test_parse_source(tmp_path):
    video, image = tmp_path / "clip.mp4", tmp_path / "photo.JPG"
    video.write_bytes(b"")
    image.write_bytes(b"")
    assert (parse_source("0").kind, parse_source("0").target, parse_source("0").live) == ("webcam", 0, True)
    assert parse_source("rtsp://host/stream").kind == "stream" and parse_source("http://host/x.mjpg").live
    assert (parse_source(str(video)).kind, parse_source(str(video)).live) == ("video", False)
    assert parse_source(str(image)).images == (image,)
    assert parse_source(str(tmp_path)).images == (image,)
    with pytest.raises(SourceError, match="source not found"):
        parse_source(str(tmp_path / "nope.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images in folder"):
        parse_source(str(tmp_path / "empty"))


# --- LatestFrameCapture with a fake camera ---------------------------------------------------------------------------


class FakeCamera:
    """A camera that delivers ``frames`` frames at ``fps`` (forever if frames is None), like cv2.VideoCapture.read()."""

    def __init__(self, fps: float, frames: int | None = None, fail_after: int | None = None):
        self.fps, self.frames, self.fail_after = fps, frames, fail_after
        self.produced = 0
        self.released = False
        self._start = None

    def read(self):
        if self.fail_after is not None and self.produced >= self.fail_after:
            raise RuntimeError("USB cable unplugged")
        if self.frames is not None and self.produced >= self.frames:
            return False, None
        self._start = self._start or time.perf_counter()
        delay = self._start + self.produced / self.fps - time.perf_counter() if self.fps else 0
        if delay > 0:
            time.sleep(delay)  # a real camera blocks in read() until the sensor delivers the next frame
        self.produced += 1
        return True, np.full((4, 4, 3), self.produced % 256, np.uint8)

    def release(self):
        self.released = True


def consume(capture: LatestFrameCapture, work_s: float) -> list[tuple[int, float]]:
    """Take frames until the end, spending ``work_s`` on each (a model step); return (index, age at take) pairs."""
    taken = []
    while not capture.finished:
        frame = capture.read(timeout=0.05)
        if frame is not None:
            taken.append((frame.index, time.perf_counter() - frame.captured_at))
            time.sleep(work_s)
    return taken


def test_slow_consumer_drops_frames_instead_of_lagging():
    camera = FakeCamera(fps=100, frames=150)  # 1.5 s of camera
    with LatestFrameCapture(camera) as capture:
        taken = consume(capture, work_s=0.04)  # a 25 FPS model on a 100 FPS camera
    indices, ages = [i for i, _ in taken], [a for _, a in taken]
    assert capture.frames_read == 150
    assert capture.frames_dropped > 0
    assert capture.frames_delivered + capture.frames_dropped == capture.frames_read
    assert capture.frames_delivered == len(taken)
    assert indices == sorted(set(indices))  # never a frame twice, never out of order
    # The consumer keeps up with the camera's present: a FIFO would have reached only frame len(taken) - 1 by now
    # (about 37), with the last one about 1.1 s old; the newest-frame slot ends at the camera's last frame.
    assert indices[-1] >= 140 and indices[-1] > 2 * len(taken)
    assert max(ages) < 0.2, ages  # bounded by one frame interval plus scheduling noise, not growing
    assert np.mean(ages[-5:]) < np.mean(ages[:5]) + 0.05
    assert camera.released


def test_fast_consumer_gets_every_frame_in_order():
    with LatestFrameCapture(FakeCamera(fps=25, frames=15)) as capture:
        taken = consume(capture, work_s=0)
    assert [i for i, _ in taken] == list(range(15))
    assert (capture.frames_read, capture.frames_dropped) == (15, 0)


def test_pace_fps_plays_a_file_back_in_real_time():
    start = time.perf_counter()
    with LatestFrameCapture(FakeCamera(fps=0, frames=30), pace_fps=60) as capture:  # fps=0: instant, like a file
        taken = consume(capture, work_s=0)
    assert time.perf_counter() - start >= 29 / 60
    assert len(taken) + capture.frames_dropped == capture.frames_read == 30


def test_stop_counts_the_untaken_frame_and_releases():
    camera = FakeCamera(fps=200)  # never ends
    capture = LatestFrameCapture(camera).start()
    assert capture.read(timeout=5) is not None
    time.sleep(0.1)
    capture.stop()
    assert capture.finished and camera.released
    assert capture.frames_read > 1
    assert capture.frames_delivered + capture.frames_dropped == capture.frames_read
    assert capture.read(timeout=0) is None


def test_a_failing_camera_ends_the_stream_with_its_error():
    with LatestFrameCapture(FakeCamera(fps=0, fail_after=3)) as capture:
        consume(capture, work_s=0)
    assert isinstance(capture.error, RuntimeError) and capture.frames_read == 3


# --- the benchmark ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_benchmark_prints_every_runtime_and_the_ratios(tmp_path):
    runtimes = ["auto", "pytorch", "onnx", "openvino", "openvino-int8"]
    argv = ["--pairs", "yolov8n-fasternet:yolov8n", "--runtimes", *runtimes, "--imgsz", "64", "--frames", "8"]
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "detect_fps.py"), *argv, "--rounds", "1"],
        cwd=tmp_path,
        env=headless_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for runtime in runtimes:
        for model in ("yolov8n-fasternet", "yolov8n"):
            assert re.search(rf"^\| 64 \| {runtime} \| {model} \| [\d.]+ \| \d+ \|", proc.stdout, re.M), proc.stdout
        assert re.search(rf"^\| 64 \| {runtime} \| [\d.]+x \|$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^\| 64 \| openvino-int8 / openvino \| [\d.]+x \| [\d.]+x \|$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^- 64 px yolov8n-fasternet: \S+ [\d.]+ FPS, [\d.]+x PyTorch FP32$", proc.stdout, re.M)
    for model in ("yolov8n-fasternet", "yolov8n"):  # detect's defaults: the runtime it chose, export time, the ratio
        cells = r" \| [\d.]+" * 5
        row = rf"^\| 64 \| {model} \| (torch|openvino \w+|onnx){cells} \| [\d.]+x \|$"
        assert re.search(row, proc.stdout, re.M), proc.stdout
