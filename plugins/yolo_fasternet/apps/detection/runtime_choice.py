"""The runtime ``detect`` runs a checkpoint on: with ``--runtime auto``, the fastest one measured on this CPU.

``--runtime`` takes ``auto`` (the default), ``torch``, ``openvino``, ``onnx``, ``ncnn``, ``mnn`` or
``openvino-int8``:

- ``auto`` on a CPU exports the ``.pt`` through Ultralytics' own exporter to each runtime that is installed (OpenVINO,
  then ONNX Runtime, the ``[export]`` extra; then NCNN and MNN, the ``[ncnn]`` and ``[mnn]`` extras), keeps the exports
  in the export cache (``export_cache``), and times each of them and PyTorch on blank frames of the source's size with
  the thread count ``--threads`` measures or sets. The fastest runs; the summary lists every candidate's FPS. An INT8
  OpenVINO model that ``yolo-fasternet quantize`` wrote beside the checkpoint (``<stem>_int8_openvino_model``, at this
  imgsz, newer than the checkpoint) is a candidate too. On a GPU, ``auto`` runs PyTorch. Model YAMLs (random weights)
  run in PyTorch and exported models as they are.
- ``torch`` runs the checkpoint in PyTorch and never exports; ``openvino``, ``onnx``, ``ncnn`` and ``mnn`` export (or
  reuse the cache) and run that runtime without timing; ``openvino-int8`` runs ``quantize``'s INT8 model of the
  checkpoint.

Precision: the exports are f32 models (``EXPORT_PRECISION``, part of the cache key). When one is made, its raw outputs
on a fixed input, run at f32, are compared with PyTorch's part by part (``outputs_agree``: boxes, class scores, masks,
keypoints and angles, each against its own magnitude): an export that disagrees is not used and not kept. OpenVINO
then runs at its CPU default precision (bf16 on CPUs with AMX or AVX512-BF16, f32 elsewhere), a stated choice: on
the quick preset's checkpoint it cost no mAP50-95 on held-out images (-0.07 points, within the 0.5 allowed;
``benchmarks/openvino_precision.py``) and it is what makes OpenVINO faster than PyTorch on those CPUs. The
summary names the precision that ran (``openvino bf16``); ``--runtime torch`` gives PyTorch's f32 outputs exactly.

Never worse than PyTorch: without the runtimes installed ``auto`` says so in one notice line and runs PyTorch; an
export, load or compile that fails, or outputs that disagree, drop that candidate with one warning line for all of
them; a cached export that fails to load is rebuilt once.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...error_text import first_line
from ...integration.export_packages import missing_line
from ...integration.output_parts import OutputLayout, compare_outputs, layout_of, prediction_arrays, worst_ratio
from ..command_errors import CommandError, UsageError
from ..preflight import load_model
from .export_cache import RUNTIME_PACKAGES, ExportCache
from .inference_threads import (
    TUNE_FRAMES,
    choose_threads,
    cpu_cores,
    current_threads,
    openvino_precision,
    set_threads,
    thread_candidates,
)

RUNTIMES = ("auto", "torch", "openvino", "onnx", "ncnn", "mnn", "openvino-int8")
EXPORTED = ("openvino", "onnx", "ncnn", "mnn")  # what auto exports to, in this order
EXPORT_PRECISION = "f32"  # the exported models; OpenVINO runs them at its CPU default (see the module docstring)
EXTRA = "pip install 'yolo-fasternet[export]'"  # OpenVINO and ONNX Runtime; NCNN and MNN: export_packages
WARMUP_RUNS = 2  # the first call builds the predictor and fuses the model, the second settles CPU kernels
# Raw outputs of an f32 export against PyTorch's, part by part (``integration.output_parts``: boxes, class scores,
# masks, keypoints, angles): each part may differ by 1e-4 of its own largest magnitude (f32 rounding through the
# network grows with the values' size) plus 1e-6, the floor for near-zero parts (ONNX Runtime's Sigmoid alone is off by
# ~1e-7). Scores are judged on their own scale, so an untrained model's ~1e-4 scores are checked too.
OUTPUT_RTOL = 1e-4
OUTPUT_ATOL = 1e-6


def installed(runtime: str) -> bool:
    """True where the packages that export and run ``runtime`` are importable (no install is attempted)."""
    return all(importlib.util.find_spec(name) is not None for name in RUNTIME_PACKAGES[runtime])


def outputs_agree(actual, expected, layout: OutputLayout) -> tuple[bool, str]:
    """Whether two raw network outputs agree part by part; and, where they do not, the parts that differ."""
    differences = compare_outputs(actual, expected, layout, rel=OUTPUT_RTOL, atol=OUTPUT_ATOL)
    failed = [d for d in differences if not d.ok]
    worst = worst_ratio(differences)
    return not failed, "; ".join(f"{d} = {worst_ratio([d]):.1f}x" for d in failed) or f"{worst:.2f}x the bound"


def raw_outputs(model, x: torch.Tensor) -> list[np.ndarray]:
    """The predictor's network outputs (before NMS) for ``x``, whatever the backend returns them as."""
    return prediction_arrays(model.predictor.model(x))


@dataclass
class Candidate:
    """A loaded, warmed-up model on one runtime, and what timing it found."""

    runtime: str
    model: object  # ultralytics YOLO
    weights: str  # the file or folder it was loaded from
    fps: float | None = None
    threads: str = ""  # how its CPU threads were set, for the summary
    note: str = ""  # where it came from (cached, exported in N s, quantize's INT8 model)


@dataclass
class Choice:
    """The runtime a run uses and the summary line saying why."""

    chosen: Candidate
    line: str
    export_s: float = 0.0  # seconds spent exporting in this run (0 when every export came from the cache)
    candidates: list[Candidate] = field(default_factory=list)


class RuntimeChooser:
    """Load ``weights`` on the runtime ``--runtime`` asks for; see the module docstring."""

    def __init__(self, args, blank: np.ndarray, predict_kwargs: dict, warn: Callable[[str], None] | None = None):
        self.args, self.blank, self.predict_kwargs = args, blank, predict_kwargs
        self.warn = warn or (lambda text: print(text, file=sys.stderr, flush=True))
        self.failures: list[str] = []
        self.skipped: list[str] = []  # candidates that exist but do not fit this run (a stale INT8 model)
        self.export_s = 0.0

    # --- loading ----------------------------------------------------------------------------------------------------

    def warm_up(self, model) -> None:
        """Run ``model`` on blank frames: set-up (building the predictor, fusing, compiling) is not frame time."""
        for _ in range(WARMUP_RUNS):
            model.predict(self.blank, **self.predict_kwargs)

    def frame_work(self, model) -> Callable[[], object]:
        """One frame's work as the loop does it: predict and draw."""
        return lambda: model.predict(self.blank, **self.predict_kwargs)[0].plot()

    def load_torch(self) -> Candidate:
        """The checkpoint (or YAML) in PyTorch, warmed up; errors are one line naming the file and device."""
        model = load_model(self.args.weights)
        try:
            self.warm_up(model)
        except Exception as e:  # bad device, unusable checkpoint
            device = self.args.device or "default"
            raise CommandError(f"cannot run {self.args.weights} on device {device}: {first_line(e)}") from e
        return Candidate("torch", model, self.args.weights)

    def load_exported(self, runtime: str, path: Path, task: str) -> Candidate:
        """An exported model, warmed up (OpenVINO: compiled at its CPU default precision)."""
        from ultralytics import YOLO
        from ultralytics.utils import LOGGER

        model, level = YOLO(str(path), task=task), LOGGER.level
        LOGGER.setLevel(logging.WARNING)  # "Loading ... for OpenVINO inference": the summary says what runs
        try:
            self.warm_up(model)
        finally:
            LOGGER.setLevel(level)
        return Candidate(runtime, model, str(path))

    def check_outputs(self, candidate: Candidate, reference: tuple[torch.Tensor, list, OutputLayout]) -> None:
        """Raise unless the export's f32 outputs for ``reference``'s input equal PyTorch's (OpenVINO: recompiled at
        f32 for the check, then at the precision it ran with)."""
        model, path = candidate.model, candidate.weights
        running = openvino_precision(model)
        if running not in (None, EXPORT_PRECISION):
            set_threads(model, current_threads(model) or cpu_cores(), path, precision=EXPORT_PRECISION)
        agree, detail = outputs_agree(raw_outputs(model, reference[0]), reference[1], reference[2])
        if running not in (None, EXPORT_PRECISION):
            set_threads(model, current_threads(model) or cpu_cores(), path, precision=running)
            model.predict(self.blank, **self.predict_kwargs)  # the first frame after a compile is slower
        if not agree:
            raise RuntimeError(f"its f32 outputs differ from PyTorch's: {detail}")

    def exported(self, cache: ExportCache, torch_candidate: Candidate, runtime: str, reference) -> Candidate:
        """``runtime``'s export of the checkpoint (cached or built now), loaded and checked against PyTorch.

        A new export is checked against PyTorch (and dropped from the cache if it disagrees); a cached export that
        does not load is rebuilt once. Raises on failure; the caller decides what that means.
        """
        imgsz, task = self.args.imgsz, torch_candidate.model.task
        message = f"Exporting {self.args.weights} to {runtime} at imgsz {imgsz} (once: the export is cached)"
        for attempt in range(2):
            export = cache.get(
                torch_candidate.model, runtime, imgsz, EXPORT_PRECISION, self.warn, lambda: print(message, flush=True)
            )
            self.export_s += export.seconds
            try:
                candidate = self.load_exported(runtime, export.path, task)
                break
            except Exception:
                if not export.reused or attempt:
                    raise
                self.warn(f"cached {runtime} export {export.path} does not load; rebuilding it")
                cache.discard(runtime, imgsz, EXPORT_PRECISION)
        candidate.note = "cached export" if export.reused else f"exported in {export.seconds:.1f} s"
        if not export.reused:  # a cached entry passed this check when it was built, and its bytes are verified
            try:
                self.check_outputs(candidate, reference)
            except RuntimeError:
                cache.discard(runtime, imgsz, EXPORT_PRECISION)  # never reused unchecked
                raise
        return candidate

    def quantized(self, task: str, required: bool) -> Candidate | None:
        """``quantize``'s INT8 OpenVINO model of the checkpoint, if there is one at this imgsz and it is current."""
        checkpoint = Path(self.args.weights)
        folder = checkpoint.with_name(f"{checkpoint.stem}_int8_openvino_model")
        problem = None
        if not any(folder.glob("*.xml")):
            problem = f"no INT8 model of {checkpoint} at {folder}; make one with yolo-fasternet quantize --weights"
            problem += f" {checkpoint}"
        elif min(p.stat().st_mtime for p in folder.glob("*.xml")) < checkpoint.stat().st_mtime:
            problem = f"the INT8 model {folder} is older than {checkpoint}; run yolo-fasternet quantize again"
        elif (size := exported_imgsz(folder)) not in (None, self.args.imgsz):
            problem = f"the INT8 model {folder} was exported at imgsz {size}; run with --imgsz {size}"
        if problem:
            if required:
                raise CommandError(f"--runtime openvino-int8: {problem}")
            if folder.exists():  # there is one, but it does not fit: the summary says why it was not timed
                self.skipped.append(f"openvino-int8 not used: {problem}")
            return None
        candidate = self.load_exported("openvino-int8", folder, task)
        candidate.note = "yolo-fasternet quantize's INT8 model"
        return candidate

    # --- timing -----------------------------------------------------------------------------------------------------

    def tune(self, candidate: Candidate, timed: bool) -> None:
        """Apply ``--threads`` to a CPU model (a count, or the fastest measured one); with ``timed``, record its FPS."""
        model, weights, threads = candidate.model, candidate.weights, self.args.threads
        work = self.frame_work(model)
        if threads == "auto":
            cores = cpu_cores()
            chosen = choose_threads(model, weights, work, thread_candidates(cores))
            if chosen is None:
                candidate.threads = "backend default (this model format offers no thread setting)"
            else:
                best, fps = chosen
                measured = ", ".join(f"{n}: {v:.1f}" for n, v in fps.items())
                candidate.threads = f"{best} of {cores} cores, the fastest measured (FPS by threads: {measured})"
                candidate.fps = fps[best]
        else:
            if not set_threads(model, threads, weights):
                raise CommandError(f"--threads {threads}: this model format ({weights}) offers no thread setting")
            candidate.threads = f"{threads} (--threads)"
        if timed and candidate.fps is None:
            work()
            start = time.perf_counter()
            for _ in range(TUNE_FRAMES):
                work()
            candidate.fps = TUNE_FRAMES / (time.perf_counter() - start)

    # --- the choice -------------------------------------------------------------------------------------------------

    def choose(self) -> Choice:
        """Load, export, time and pick; the returned model is warmed up and runs on its chosen threads."""
        args = self.args
        runtime, checkpoint = args.runtime, Path(args.weights).suffix == ".pt"
        if not checkpoint and runtime not in ("auto", "torch"):
            raise UsageError(f"--runtime {runtime}: needs a .pt checkpoint; {args.weights} runs as it is")
        base = self.load_torch()
        device = base.model.predictor.device
        on_cpu = device.type == "cpu"
        if not checkpoint or runtime == "torch" or not on_cpu:
            if runtime not in ("auto", "torch"):
                raise UsageError(f"--runtime {runtime} runs on the CPU; use --device cpu (or --runtime auto)")
            if on_cpu:
                self.tune(base, timed=False)
            why = "--runtime torch" if runtime == "torch" else "not a .pt checkpoint" if not checkpoint else ""
            why = why or f"auto keeps PyTorch on {device}"
            name = "torch" if Path(args.weights).suffix in {".pt", ".yaml", ".yml"} else "as exported"
            return Choice(base, f"{name} ({why})", candidates=[base])
        if runtime == "openvino-int8":
            chosen = self.quantized(base.model.task, required=True)
            self.tune(chosen, timed=False)
            return Choice(chosen, f"openvino-int8 ({chosen.weights}, {chosen.note})", candidates=[chosen])
        wanted = EXPORTED if runtime == "auto" else (runtime,)
        missing = [r for r in wanted if not installed(r)]
        if runtime != "auto" and missing:
            raise CommandError(f"--runtime {runtime}: {missing_line(runtime)}")
        if len(missing) == len(wanted):
            none = "OpenVINO, ONNX Runtime, NCNN and MNN are not installed"
            self.warn(f"--runtime auto: {none}; running PyTorch ({EXTRA}, and [ncnn], [mnn])")
            self.tune(base, timed=False)
            return Choice(base, "torch (no export runtime installed)", candidates=[base])
        x = torch.rand(1, 3, args.imgsz, args.imgsz, generator=torch.Generator().manual_seed(0))
        reference = (x, raw_outputs(base.model, x), layout_of(base.model))
        cache = ExportCache(base.model.ckpt_path or args.weights, args.export_cache)  # where YOLO() found the file
        candidates = []
        for name in (r for r in wanted if r not in missing):
            try:
                candidates.append(self.exported(cache, base, name, reference))
            except Exception as e:  # a failed export, load or compile, or outputs that disagree: not used
                if runtime != "auto":
                    raise CommandError(f"--runtime {runtime}: {args.weights}: {first_line(e)}") from e
                self.failures.append(f"{name}: {first_line(e)}")
        if runtime == "auto":
            try:
                if (int8 := self.quantized(base.model.task, required=False)) is not None:
                    candidates.append(int8)
            except Exception as e:
                self.failures.append(f"openvino-int8: {first_line(e)}")
        if self.failures:
            self.warn(f"--runtime auto: not used: {'; '.join(self.failures)}")
        if runtime != "auto":
            chosen = candidates[0]
            self.tune(chosen, timed=False)
            line = f"{named(chosen)} ({chosen.note}, {cache_text(cache)})"
            return Choice(chosen, line, self.export_s, candidates)
        everything = [base, *candidates]
        for candidate in everything:
            self.tune(candidate, timed=True)
        chosen = max(everything, key=lambda c: c.fps)  # each keeps its own threads: timing one never resets another
        measured = ", ".join(f"{c.runtime} {c.fps:.1f}" for c in everything)
        notes = "; ".join([*(f"{c.runtime}: {c.note}" for c in candidates), *self.skipped])
        line = f"{named(chosen)}, the fastest measured (FPS: {measured})"
        if candidates:
            line += f"; {notes}; {cache_text(cache)}"
        return Choice(chosen, line, self.export_s, everything)


def named(candidate: Candidate) -> str:
    """The runtime and, for OpenVINO f32 exports, the precision it runs at (``openvino bf16``)."""
    if candidate.runtime != "openvino":
        return candidate.runtime
    return f"{candidate.runtime} {openvino_precision(candidate.model)}"


def cache_text(cache: ExportCache) -> str:
    """Where the exports of this run are kept, for the summary."""
    return f"export cache {cache.fallback or cache.root}" + (" (temporary)" if cache.fallback else "")


def exported_imgsz(folder: Path) -> int | None:
    """The square imgsz Ultralytics recorded in an export's ``metadata.yaml`` (None where it records none)."""
    import yaml

    try:
        size = (yaml.safe_load((folder / "metadata.yaml").read_text()) or {}).get("imgsz")
    except (OSError, yaml.YAMLError):
        return None
    if isinstance(size, (list, tuple)) and size and all(s == size[0] for s in size):
        return int(size[0])
    return int(size) if isinstance(size, int) else None
