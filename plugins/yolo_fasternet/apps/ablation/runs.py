"""One run of an ablation: its folder, its training and validation, and what it leaves behind.

A run folder ``<out>/runs/<model stem>-s<seed>-<settings hash>`` holds ``spec.json`` (what was asked),
``progress.jsonl`` (one line per finished epoch), Ultralytics' own run in ``train/``, ``records.npz`` (per-image
evaluation records of the final validation, see ``records``), ``metrics.json`` and last a ``DONE`` marker: its
presence means everything before it is complete. Whichever executor ran the run, these files are the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .records import RECORDS, ValidationRecorder, save_records

DONE = "DONE"  # written last in a run folder: its presence means metrics.json is complete
SPEC = "spec.json"
METRICS_FILE = "metrics.json"
METRIC_KEYS = {  # column -> key in Ultralytics' validator results_dict ((B): box metrics)
    "precision": "metrics/precision(B)",
    "recall": "metrics/recall(B)",
    "mAP50": "metrics/mAP50(B)",
    "mAP50-95": "metrics/mAP50-95(B)",
}


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace`` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def settings_hash(settings: dict) -> str:
    """A short stable hash of the settings every run shares; a run folder is only reused under the same settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def run_dir(out: Path, model: str, seed: int, key: str) -> Path:
    """``out/runs/<model stem>-s<seed>-<settings hash>``."""
    return out / "runs" / f"{Path(model).stem}-s{seed}-{key}"


def run_epochs(spec: dict) -> int:
    """The epochs this run trains: the shared schedule's, or a pruned variant's fine-tune."""
    return int((spec.get("variant") or {}).get("epochs") or spec["train"]["epochs"])


def run_label(spec: dict) -> str:
    """'<model stem> seed <seed>', how messages name a run."""
    return f"{Path(spec['model']).stem} seed {spec['seed']}"


def train_and_validate(spec: dict) -> dict:
    """Train and validate one model in this process (a worker of the ablation); return its metrics record.

    Ultralytics writes its run into ``<run>/train``; one line per finished epoch goes to ``<run>/progress.jsonl``;
    the per-image records of the final validation go to ``<run>/records.npz``. A compression variant
    (``spec["variant"]``) trains what ``variants.prepare`` makes of it.
    """
    import resource

    import torch
    from ultralytics import YOLO

    import yolo_fasternet  # noqa: F401  registers the plugin modules even where the .pth autoload is off

    folder = Path(spec["run"])
    progress = folder / "progress.jsonl"  # one line per finished epoch; the parent's progress bar reads it
    epoch_times: list[float] = []
    started = {}

    def on_epoch_start(trainer):
        started["t"] = time.perf_counter()

    def on_epoch_end(trainer):
        # train loop only (no validation): the per-epoch cost of the model itself
        epoch_times.append(time.perf_counter() - started["t"])
        with open(progress, "a") as f:
            f.write(json.dumps({"epoch": trainer.epoch + 1, "time_s": epoch_times[-1]}) + "\n")

    def set_threads(trainer):  # after Ultralytics' own torch.set_num_threads (cpu_count - 1) in select_device
        torch.set_num_threads(spec["threads"])

    source, changed = spec["model"], {}
    if spec.get("variant"):  # a compression variant: a pruned source to fine-tune, or a teacher to learn from
        from .variants import prepare

        source, changed = prepare(spec)
    recorder = ValidationRecorder()
    model = YOLO(source)
    model.add_callback("on_train_epoch_start", on_epoch_start)
    model.add_callback("on_train_epoch_end", on_epoch_end)
    model.add_callback("on_val_start", recorder.on_val_start)  # the trainer shares its callbacks with its validator
    if spec.get("threads"):
        model.add_callback("on_pretrain_routine_start", set_threads)
    train = {**spec["train"], **changed}
    results = model.train(**train, seed=spec["seed"], project=str(folder), name="train", exist_ok=True)
    metrics = getattr(results, "results_dict", results) or {}
    if recorder.images:  # the final validation (on best.pt) was the last one recorded
        save_records(folder / RECORDS, recorder.arrays())
    return {
        "epoch_times_s": epoch_times,
        # ru_maxrss is KiB on Linux; this process did nothing but this run, so it is the run's own peak
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
        **{col: float(metrics[key]) for col, key in METRIC_KEYS.items()},
    }


def record_results(spec: dict, record: dict) -> None:
    """Write a run's metrics.json, then its DONE marker (whichever executor ran it)."""
    folder = Path(spec["run"])
    write_atomic(folder / METRICS_FILE, json.dumps(record, indent=1))
    write_atomic(folder / DONE, "")


def train_one(spec: dict) -> None:
    """Train, validate, write metrics.json, then DONE (the local executor's worker process does this)."""
    record_results(spec, train_and_validate(spec))


def prepare_run_folder(spec: dict) -> None:
    """Start a run over in an empty folder (an interrupted run's epoch times and metrics must come from one run).

    Executors call this only once no earlier training can write into the folder any more (see executors).
    """
    folder = Path(spec["run"])
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_atomic(folder / SPEC, json.dumps(spec, indent=1))
