"""Read a live source on its own thread and hand out only the newest frame, so a slow consumer never falls behind.

A camera or stream keeps producing frames whether or not anyone reads them. Read on the consumer's thread, frames
pile up in the capture's buffer while the model runs, and what is on screen lags further and further behind the
scene. ``LatestFrameCapture`` reads continuously on a background thread into a one-frame slot: a frame the consumer
has not taken by the time the next one arrives is dropped and counted, so the consumer always gets the newest frame
and a frame's age stays bounded by one model step plus one frame interval.

    with LatestFrameCapture(cv2.VideoCapture(0)) as capture:
        while not capture.finished:
            frame = capture.read(timeout=0.1)  # None: no new frame yet (or the stream just ended)
            if frame is not None:
                ...  # frame.index, frame.image, frame.captured_at
    print(capture.frames_read, capture.frames_delivered, capture.frames_dropped)

After ``stop()`` every frame read has been either delivered or dropped: ``delivered + dropped == read``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class FrameReader(Protocol):
    """The part of ``cv2.VideoCapture`` this module uses, so tests can pass a fake camera."""

    def read(self) -> tuple[bool, Any]:
        """Block until the next frame and return ``(ok, image)``; ``ok`` is False at the end of the stream."""

    def release(self) -> None:
        """Close the device or file."""


@dataclass(frozen=True)
class Frame:
    """One frame of a source.

    Attributes:
        index: position in the source, counting from 0 (gaps in the delivered indices are dropped frames).
        image: the BGR image as the capture returned it.
        captured_at: ``time.perf_counter()`` when the frame was read; its age is ``perf_counter() - captured_at``.
    """

    index: int
    image: np.ndarray
    captured_at: float


class LatestFrameCapture:
    """Own a capture on a background thread and keep only its newest frame.

    Args:
        capture: an opened ``cv2.VideoCapture``, or anything with ``read()`` and ``release()`` (``FrameReader``).
            It is released by ``stop()``.
        pace_fps: publish at most this many frames per second, frame ``n`` no earlier than ``n / pace_fps`` seconds
            after the first. A camera paces itself; this makes a video file behave like one (real-time playback),
            so drop behaviour can be tried without a camera. None: publish as fast as ``read()`` returns.
        name: the thread's name.

    Counters (read them after ``stop()`` for final values): ``frames_read`` (frames the capture returned),
    ``frames_delivered`` (returned by ``read()``), ``frames_dropped`` (replaced by a newer frame before anyone took
    them, or still waiting when stopped).
    """

    def __init__(self, capture: FrameReader, pace_fps: float | None = None, name: str = "latest-frame-capture"):
        if pace_fps is not None and pace_fps <= 0:
            raise ValueError(f"pace_fps must be positive, got {pace_fps}")
        self._capture = capture
        self._pace_fps = pace_fps
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._ended = False
        self._stop_requested = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._released = False
        self.frames_read = 0
        self.frames_delivered = 0
        self.frames_dropped = 0
        self.error: BaseException | None = None  # what the capture raised, if reading ended with an exception

    def start(self) -> LatestFrameCapture:
        """Start reading on the background thread; returns self."""
        self._thread.start()
        return self

    def __enter__(self) -> LatestFrameCapture:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def finished(self) -> bool:
        """True once the source has ended (or reading was stopped) and its last frame has been taken or dropped."""
        with self._cond:
            return self._ended and self._slot is None

    def read(self, timeout: float | None = None) -> Frame | None:
        """Take the newest frame not yet taken, waiting up to ``timeout`` seconds (None: until one comes or the end).

        Returns None on timeout or at the end of the stream; ``finished`` tells which. A frame is never returned
        twice: after a slow step the next call returns the frame that arrived last, and the ones in between are
        counted as dropped.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._slot is not None or self._ended, timeout)
            frame, self._slot = self._slot, None
            if frame is not None:
                self.frames_delivered += 1
            return frame

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading, release the capture and count a frame nobody took as dropped. Safe to call twice.

        A ``read()`` of the capture cannot be interrupted; if one is still blocked after ``timeout`` seconds (a
        stalled network stream), the capture is left to the daemon thread rather than released under it, which
        OpenCV does not allow.
        """
        self._stop_requested.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:
            self._ended = True
            if self._slot is not None:
                self.frames_dropped += 1
                self._slot = None
            self._cond.notify_all()
        if not self._thread.is_alive() and not self._released:
            self._released = True
            self._capture.release()

    def _run(self) -> None:
        """The background thread: read, pace if asked, publish into the slot, until the end or ``stop()``."""
        start = None
        try:
            while not self._stop_requested.is_set():
                ok, image = self._capture.read()
                if not ok or image is None:
                    break
                now = time.perf_counter()
                if self._pace_fps is not None:
                    start = now if start is None else start
                    delay = start + self.frames_read / self._pace_fps - now
                    if delay > 0:
                        self._stop_requested.wait(delay)  # cut short by stop(); the frame then counts as dropped
                        now = time.perf_counter()
                self._publish(image, now)
        except Exception as e:  # a broken device or stream ends the stream; the consumer decides how to report it
            self.error = e
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _publish(self, image: np.ndarray, captured_at: float) -> None:
        with self._cond:
            if self._stop_requested.is_set():  # read while stopping: nobody will take it
                self.frames_dropped += 1
            else:
                if self._slot is not None:
                    self.frames_dropped += 1
                self._slot = Frame(self.frames_read, image, captured_at)
                self._cond.notify_all()
            self.frames_read += 1
