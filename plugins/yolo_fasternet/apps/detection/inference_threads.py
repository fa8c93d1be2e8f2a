"""Set, and choose by measurement, the CPU threads a loaded ``YOLO`` model infers with, whatever its format.

Ultralytics' ``select_device("cpu")`` sets PyTorch to ``cores - 1`` threads (one on a 2-core machine), ONNX Runtime
sessions get ONNX Runtime's default (one per physical core) and OpenVINO its LATENCY hint's choice. None of these
knows that a live source also needs a capture thread, or measures what the machine gives. ``choose_threads`` times
the full per-frame work (predict and drawing) at each candidate count and keeps the fastest.

Formats: PyTorch (``.pt``, model YAMLs) and TorchScript share ``torch.set_num_threads``; ONNX Runtime sessions are
re-created with ``intra_op_num_threads``; OpenVINO models are re-compiled with ``INFERENCE_NUM_THREADS``. The ONNX
Runtime session and the OpenVINO compiled model are found on Ultralytics' backend object (``session`` and
``ov_compiled_model``, the names from 8.3.0 to 8.4.x); where they are not found, ``set_threads`` says so and changes
nothing. A re-compiled OpenVINO model keeps the inference precision it was compiled with (OpenVINO's CPU default is
bf16 on CPUs with AMX or AVX512-BF16, f32 elsewhere).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

TUNE_FRAMES = 5  # timed frames per candidate, after one untimed frame at the new setting


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _holder(model, attribute: str):
    """The object that owns ``attribute`` in the predictor's AutoBackend (8.4.x: its ``backend``; 8.3.x: itself)."""
    backend = model.predictor.model
    for candidate in (getattr(backend, "__dict__", {}).get("backend"), backend):
        if candidate is not None and attribute in getattr(candidate, "__dict__", {}):
            return candidate
    return None


def backend_format(model) -> str:
    """``pytorch``, ``torchscript``, ``onnx``, ``openvino`` or ``other``: the format the predictor runs."""
    backend = model.predictor.model
    names = {"pt": "pytorch", "torchscript": "torchscript", "onnx": "onnx", "openvino": "openvino"}
    fmt = backend.__dict__.get("format")  # 8.4.x: AutoBackend.format
    if isinstance(fmt, str):
        return names.get(fmt, "other")
    for flag, name in (("pt", "pytorch"), ("jit", "torchscript"), ("onnx", "onnx"), ("xml", "openvino")):  # 8.3.x
        if backend.__dict__.get(flag):
            return name
    return "other"


def set_threads(model, threads: int, weights: str | Path, precision: str | None = None) -> bool:
    """Run ``model``'s predictor on ``threads`` CPU threads; False where its format offers no way to set them.

    ``weights`` is the file (or OpenVINO folder) the model was loaded from: sessions are re-created from it.
    ``precision`` (OpenVINO only, e.g. ``f32``) sets the inference precision; None keeps the one it was compiled with.
    """
    fmt = backend_format(model)
    if fmt in ("pytorch", "torchscript"):
        torch.set_num_threads(threads)
        return True
    if fmt == "onnx" and (holder := _holder(model, "session")) is not None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        providers = holder.session.get_providers()
        holder.session = onnxruntime.InferenceSession(str(weights), options, providers=providers)
        return True
    if fmt == "openvino" and (holder := _holder(model, "ov_compiled_model")) is not None:
        import openvino as ov

        xml = next(Path(weights).glob("*.xml")) if Path(weights).is_dir() else Path(weights)
        precision = precision or holder.ov_compiled_model.get_property("INFERENCE_PRECISION_HINT")
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": precision,
        }
        holder.ov_compiled_model = ov.Core().compile_model(str(xml), "CPU", config)
        return True
    return False


def current_threads(model) -> int | None:
    """The thread count the predictor runs with now, where the format reports it."""
    fmt = backend_format(model)
    if fmt in ("pytorch", "torchscript"):
        return torch.get_num_threads()
    if fmt == "onnx" and (holder := _holder(model, "session")) is not None:
        return holder.session.get_session_options().intra_op_num_threads or None
    if fmt == "openvino" and (holder := _holder(model, "ov_compiled_model")) is not None:
        return int(holder.ov_compiled_model.get_property("INFERENCE_NUM_THREADS")) or None
    return None


def openvino_precision(model) -> str | None:
    """The inference precision (``f32``, ``bf16``, ...) an OpenVINO model was compiled for; None for other formats."""
    if backend_format(model) != "openvino" or (holder := _holder(model, "ov_compiled_model")) is None:
        return None
    precision = holder.ov_compiled_model.get_property("INFERENCE_PRECISION_HINT")
    return precision.to_string() if hasattr(precision, "to_string") else str(precision)


def thread_candidates(cores: int) -> list[int]:
    """The thread counts ``choose_threads`` times: every count up to 4, then half, all but one and all cores."""
    return sorted({n for n in (1, 2, 3, 4, cores // 2, cores - 1, cores) if 1 <= n <= cores})


def choose_threads(
    model, weights: str | Path, frame_work: Callable[[], object], candidates: list[int]
) -> tuple[int, dict[int, float]] | None:
    """Time ``frame_work`` (one frame's predict and drawing) at each thread count; keep and return the fastest.

    Returns the chosen count and the measured frames per second of every candidate, or None (nothing changed) where
    the model's format offers no thread setting. Whatever else runs at the time (a live source's capture thread)
    competes as it will during the run.
    """
    fps = {}
    for threads in candidates:
        if not set_threads(model, threads, weights):
            return None
        frame_work()  # untimed: a re-created session or compiled model runs its first frame slower
        start = time.perf_counter()
        for _ in range(TUNE_FRAMES):
            frame_work()
        fps[threads] = TUNE_FRAMES / (time.perf_counter() - start)
    best = max(fps, key=fps.get)
    if best != candidates[-1]:  # the model still runs on the last count timed
        set_threads(model, best, weights)
    return best, fps
