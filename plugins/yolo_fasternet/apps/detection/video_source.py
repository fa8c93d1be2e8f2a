"""What a detection ``--source`` means (camera, stream, video file, images) and opening it with one-line errors.

``parse_source("0")`` is webcam 0, ``parse_source("rtsp://...")`` a network stream, an existing path a video file,
an image or a folder of images. ``open_capture()`` opens cameras, streams and video files with ``cv2.VideoCapture``
and turns "could not open" into a ``SourceError`` whose message says what to check, instead of OpenCV's log noise
and a capture that silently returns nothing.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from ultralytics.data.utils import IMG_FORMATS

from ..command_errors import CommandError
from .live_capture import Frame

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "tcp://", "udp://", "rtp://", "srt://")
# OpenCV's FFmpeg backend waits 30 s by default for a stream that does not answer; 10 s is long enough for a slow
# camera on a LAN and short enough that a wrong address fails while the user is still looking.
STREAM_OPEN_TIMEOUT_MS = 10_000
STREAM_READ_TIMEOUT_MS = 10_000
DEFAULT_FPS = 30.0  # used where a source reports no frame rate (many webcams and streams)


class SourceError(CommandError):
    """A source that cannot be found, opened or read; the message is one line, meant for the user."""


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source``.

    Attributes:
        kind: ``"webcam"``, ``"stream"``, ``"video"`` or ``"images"``.
        target: camera index (int), stream URL or path.
        images: for ``"images"``, the image files in the order they are processed.
    """

    kind: str
    target: int | str | Path
    images: tuple[Path, ...] = field(default=())

    @property
    def live(self) -> bool:
        """Cameras and streams run in real time whether or not anyone reads them."""
        return self.kind in ("webcam", "stream")

    @property
    def stem(self) -> str:
        """A file-name-safe name for outputs: ``webcam0``, ``stream``, or the file or folder name."""
        if self.kind == "webcam":
            return f"webcam{self.target}"
        if self.kind == "stream":
            return "stream"
        return Path(self.target).stem or "source"

    def __str__(self) -> str:
        return f"camera {self.target}" if self.kind == "webcam" else str(self.target)


def _is_image(path: Path) -> bool:
    return path.suffix[1:].lower() in IMG_FORMATS


def parse_source(source: str) -> SourceSpec:
    """Classify ``source``: a camera index (``"0"``), a stream URL, or an existing video, image or image folder.

    Raises ``SourceError`` for a path that does not exist or a folder without images.
    """
    text = str(source).strip()
    if text.isdigit():
        return SourceSpec("webcam", int(text))
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceSpec("stream", text)
    path = Path(text).expanduser()
    if path.is_dir():
        images = tuple(sorted(p for p in path.iterdir() if p.is_file() and _is_image(p)))
        if not images:
            raise SourceError(f"no images in folder {path} (looked for {', '.join(sorted(IMG_FORMATS))})")
        return SourceSpec("images", path, images)
    if path.exists():  # also device nodes such as /dev/video0, which OpenCV opens as cameras
        return SourceSpec("images", path, (path,)) if _is_image(path) else SourceSpec("video", path)
    raise SourceError(f"source not found: {text} (expected a camera index such as 0, a stream URL or a file)")


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's own warnings (``[ WARN:0] ... can't open camera by index``) while opening a source.

    The caller reports failures itself, in one line.
    """
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:  # OpenCV builds without the logging bindings print what they print
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def open_capture(spec: SourceSpec) -> cv2.VideoCapture:
    """Open a webcam, stream or video file; raise ``SourceError`` with what to check if OpenCV cannot."""
    if spec.kind == "images":
        raise ValueError("images are read with cv2.imread, not a VideoCapture")
    with quiet_opencv():
        if spec.kind == "webcam":
            capture = cv2.VideoCapture(spec.target)
        elif spec.kind == "stream":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_OPEN_TIMEOUT_MS]
            params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_READ_TIMEOUT_MS]
            capture = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params)
        else:
            capture = cv2.VideoCapture(str(spec.target))
    if capture.isOpened():
        return capture
    capture.release()
    if spec.kind == "webcam":
        raise SourceError(f"cannot open camera {spec.target}: no such camera, or it is in use by another program")
    if spec.kind == "stream":
        raise SourceError(
            f"cannot open stream {spec.target}: unreachable within {STREAM_OPEN_TIMEOUT_MS // 1000} s, "
            "wrong address or credentials, or not a video stream"
        )
    raise SourceError(f"cannot read video {spec.target}: not a video, damaged, or a codec OpenCV cannot decode")


def capture_fps(capture: cv2.VideoCapture) -> float | None:
    """The frame rate the capture reports, or None where it reports none or nonsense (0, NaN, 90000 for RTSP)."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return fps if math.isfinite(fps) and 0 < fps <= 1000 else None


def capture_size(capture: cv2.VideoCapture) -> tuple[int, int] | None:
    """``(width, height)`` the capture reports, or None where it reports none."""
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    return (width, height) if width > 0 and height > 0 else None


def capture_frame_count(capture: cv2.VideoCapture) -> int | None:
    """The number of frames a video file says it has (an estimate for some containers), or None."""
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if math.isfinite(count) and count > 0 else None


def video_frames(capture: cv2.VideoCapture) -> Iterator[Frame]:
    """Every frame of a video file, in order, until the file ends."""
    index = 0
    while True:
        ok, image = capture.read()
        if not ok or image is None:
            return
        yield Frame(index, image, time.perf_counter())
        index += 1


def image_frames(paths: tuple[Path, ...]) -> Iterator[Frame]:
    """The images in order (``Frame.index``: position in ``paths``); an unreadable one raises ``SourceError``."""
    for index, path in enumerate(paths):
        image = cv2.imread(str(path))
        if image is None:
            raise SourceError(f"cannot read image {path}: not an image, damaged, or a format OpenCV cannot decode")
        yield Frame(index, image, time.perf_counter())
