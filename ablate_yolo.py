"""Backbone ablations: train and validate several model YAMLs under identical settings; one table, one plot.

    python ablate_yolo.py --data ../shared/datasets/coco128/coco128.yaml --epochs 3 --imgsz 320 --out runs/ablate
    python ablate_yolo.py --models yolov8n.yaml yolov8n-saconv.yaml --seeds 0 1 2 --data coco8.yaml

Every model gets the same data, augmentation, schedule, seed and ``deterministic=True``. Each training runs in its
own subprocess (so peak RSS is that run's own), writes ``metrics.json`` and then a ``DONE`` marker; re-running the
same command skips runs with a marker and restarts the others from scratch (a restarted run repeats the same
deterministic schedule, which resuming mid-way from ``last.pt`` would not guarantee for the epoch times).
Latency is measured in this process, all models one after another, run by run, on the fused models at batch 1.

Outputs in ``--out``: ``results.csv`` (one row per run), ``results.md`` (mean +- std over seeds, deltas against the
first model) and ``pareto.png`` (mAP50-95 against CPU latency, Pareto front marked). All three are written to a
temporary file first and then renamed, so an interrupted invocation never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_MODELS = (
    "yolov8n.yaml",
    "yolov8n-fasternet.yaml",
    "yolov8n-c2f-faster.yaml",
    "yolov8n-saconv.yaml",
    "yolo11n.yaml",
    "yolo11n-fasternet.yaml",
    "yolo11n-c3k2-faster.yaml",
)
DONE = "DONE"  # written last in a run folder: its presence means metrics.json is complete
METRIC_KEYS = {  # column -> key in Ultralytics' validator results_dict ((B): box metrics)
    "precision": "metrics/precision(B)",
    "recall": "metrics/recall(B)",
    "mAP50": "metrics/mAP50(B)",
    "mAP50-95": "metrics/mAP50-95(B)",
}
COLUMNS = (
    "model",
    "seed",
    "params",
    "gflops",
    "cpu_latency_ms",
    "gpu_latency_ms",
    "epoch_time_s",
    "peak_mem_mb",
    "peak_gpu_mem_mb",
    *METRIC_KEYS,
    "epochs",
    "imgsz",
    "batch",
    "run",
)
# Columns averaged over seeds in results.md, with the number format and whether higher is better (for the delta)
SUMMARY = (
    ("params", "params (M)", 1e-6, "{:.2f}"),
    ("gflops", "GFLOPs", 1, "{:.2f}"),
    ("cpu_latency_ms", "CPU ms", 1, "{:.1f}"),
    ("gpu_latency_ms", "GPU ms", 1, "{:.2f}"),
    ("epoch_time_s", "s/epoch", 1, "{:.1f}"),
    ("peak_mem_mb", "peak RSS MB", 1, "{:.0f}"),
    ("peak_gpu_mem_mb", "peak GPU MB", 1, "{:.0f}"),
    ("precision", "P", 1, "{:.3g}"),
    ("recall", "R", 1, "{:.3g}"),
    ("mAP50", "mAP50", 1, "{:.3g}"),
    ("mAP50-95", "mAP50-95", 1, "{:.3g}"),
)


# ----------------------------------------------------------------------------------------------------------- files
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


# ---------------------------------------------------------------------------------------------------------- worker
def train_one(spec: dict) -> None:
    """Train and validate one model in this process (a subprocess of the ablation); write metrics.json, then DONE."""
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

    model = YOLO(spec["model"])
    model.add_callback("on_train_epoch_start", on_epoch_start)
    model.add_callback("on_train_epoch_end", on_epoch_end)
    results = model.train(**spec["train"], seed=spec["seed"], project=str(folder), name="train", exist_ok=True)
    metrics = getattr(results, "results_dict", results) or {}
    record = {
        "epoch_times_s": epoch_times,
        # ru_maxrss is KiB on Linux; this process did nothing but this run, so it is the run's own peak
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
        **{col: float(metrics[key]) for col, key in METRIC_KEYS.items()},
    }
    write_atomic(folder / "metrics.json", json.dumps(record, indent=1))
    write_atomic(folder / DONE, "")


def launch(spec: dict, bar, log: Path) -> None:
    """Run ``train_one`` in a subprocess, advancing ``bar`` by one per finished epoch; raise if it fails."""
    folder = Path(spec["run"])
    if folder.exists():  # an interrupted run: start it over, so its epoch times and metrics come from one run
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_atomic(folder / "spec.json", json.dumps(spec, indent=1))
    progress, seen = folder / "progress.jsonl", 0
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--_worker", str(folder / "spec.json")],
            stdout=f,
            stderr=subprocess.STDOUT,
        )
        while proc.poll() is None:
            time.sleep(0.5)
            if progress.exists():
                done = len(progress.read_text().splitlines())
                bar.update(done - seen)
                seen = done
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"training {spec['model']} (seed {spec['seed']}) failed, see {log}:\n{tail}")
    bar.update(spec["train"]["epochs"] - seen)


# --------------------------------------------------------------------------------------------------------- latency
def time_models(models: dict, imgsz: int, runs: int, device: str = "cpu", warmup: int = 10) -> dict[str, float]:
    """Median milliseconds of a batch-1 forward of each model, all models in turn within every run.

    The first few forwards of a fresh model are ~50x slower on CPU (oneDNN primitive creation), hence the warmup.
    Round-robin like ``yolo_fasternet.zoo.time_pair``, generalised to any number of models: a slow phase of the
    machine (the other tenant of a shared CPU) hits every model alike instead of whichever was timed then.
    """
    import torch

    x = torch.rand(1, 3, imgsz, imgsz, device=device)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for i in range(warmup + runs):
            for name, model in models.items():
                sync()
                start = time.perf_counter()
                model(x)
                sync()
                if i >= warmup:
                    times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def measure_models(names: list[str], imgsz: int, runs: int) -> dict[str, dict]:
    """Parameters, GFLOPs and fused latency (CPU; GPU too where present) of every model, timed in this process."""
    import torch

    from yolo_fasternet.zoo import build

    built, sizes = {}, {}
    for name in names:
        model, row = build(name, imgsz)  # fused eval model
        sizes[name] = {"params": row.params, "gflops": row.gflops}
        built[name] = model
    cpu = time_models(built, imgsz, runs)
    gpu = {}
    if torch.cuda.is_available():
        gpu = time_models({n: m.cuda() for n, m in built.items()}, imgsz, runs, device="cuda")
    return {n: {**sizes[n], "cpu_latency_ms": cpu[n], "gpu_latency_ms": gpu.get(n)} for n in names}


# --------------------------------------------------------------------------------------------------------- reports
def fmt(values: list, scale: float, pattern: str) -> str:
    """Mean, and +- standard deviation where there are several values; empty for missing values."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.mean(values) * scale
    if len(values) == 1:
        return pattern.format(mean)
    return f"{pattern.format(mean)} ± {pattern.format(statistics.stdev(values) * scale)}"


def summarize(rows: list[dict], models: list[str]) -> dict[str, dict[str, list]]:
    """Per model, each summary column's values over seeds."""
    return {m: {col: [r[col] for r in rows if r["model"] == m] for col, *_ in SUMMARY} for m in models}


def markdown(rows: list[dict], models: list[str], header: str) -> str:
    """The results table: mean (+- std over seeds) per model, then its deltas against the first (baseline) model."""
    summary = summarize(rows, models)
    base = models[0]
    cols = [c for c, *_ in SUMMARY if any(v is not None for m in models for v in summary[m][c])]
    spec = {c: (title, scale, pat) for c, title, scale, pat in SUMMARY}
    lines = [header, "", "| model | seeds | " + " | ".join(spec[c][0] for c in cols) + " |"]
    lines.append("|---" * (len(cols) + 2) + "|")
    for m in models:
        n = len(summary[m]["mAP50-95"])
        lines.append(f"| {Path(m).stem} | {n} | " + " | ".join(fmt(summary[m][c], *spec[c][1:]) for c in cols) + " |")
    lines += ["", f"Deltas against the baseline, {Path(base).stem} (relative for cost, absolute for accuracy):", ""]
    lines.append("| model | " + " | ".join(f"Δ {spec[c][0].split(' (')[0]}" for c in cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for m in models[1:]:
        cells = []
        for c in cols:
            a = [v for v in summary[m][c] if v is not None]
            b = [v for v in summary[base][c] if v is not None]
            if not a or not b:
                cells.append("-")
            elif c in METRIC_KEYS:  # accuracy: percentage points
                cells.append(f"{(statistics.mean(a) - statistics.mean(b)) * 100:+.3g} pt")
            else:  # cost: percent
                cells.append(f"{(statistics.mean(a) / statistics.mean(b) - 1) * 100:+.1f}%")
        lines.append(f"| {Path(m).stem} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names not dominated in (lower latency, higher mAP): no other point is at least as good in both, better in one."""
    front = []
    for n, (lat, acc) in points.items():
        dominated = any(
            (lat2 <= lat and acc2 >= acc) and (lat2 < lat or acc2 > acc)
            for n2, (lat2, acc2) in points.items()
            if n2 != n
        )
        if not dominated:
            front.append(n)
    return sorted(front, key=lambda n: points[n][0])


def plot(rows: list[dict], models: list[str], path: Path, title: str) -> None:
    """mAP50-95 (mean, std as error bar) against fused CPU latency; the Pareto front as a line."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    summary = summarize(rows, models)
    points = {
        Path(m).stem: (statistics.mean(summary[m]["cpu_latency_ms"]), statistics.mean(summary[m]["mAP50-95"]))
        for m in models
    }
    errors = {
        Path(m).stem: statistics.stdev(summary[m]["mAP50-95"]) if len(summary[m]["mAP50-95"]) > 1 else 0.0
        for m in models
    }
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for rank, (name, (lat, acc)) in enumerate(sorted(points.items(), key=lambda p: p[1][0])):
        on_front = name in front
        ax.errorbar(
            lat,
            acc,
            yerr=errors[name],
            fmt="o" if on_front else "s",
            ms=7 if on_front else 5,
            color="tab:red" if on_front else "tab:gray",
            capsize=3,
        )
        ax.annotate(name, (lat, acc), textcoords="offset points", xytext=(5, 4 if rank % 2 else -11), fontsize=8)
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], "--", color="tab:red", label="Pareto front")
    ax.set_xlabel("fused CPU latency, batch 1 (ms)")
    ax.set_ylabel("mAP50-95")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.margins(x=0.12, y=0.12)  # room for the labels
    ax.legend(loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def write_reports(out: Path, rows: list[dict], models: list[str], header: str) -> None:
    """results.csv, results.md and pareto.png, each written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if r.get(k) is None else r[k]) for k in COLUMNS} for r in rows)
    write_atomic(out / "results.csv", buf.getvalue())
    write_atomic(out / "results.md", markdown(rows, models, header))
    plot(rows, models, out / "pareto.png", header.lstrip("# "))


# ------------------------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; extra ``key=value`` tokens pass to every ``YOLO.train()`` call alike."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="model YAMLs, baseline first")
    parser.add_argument("--data", default="coco8.yaml", help="dataset YAML (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--device", default=None, help="cpu or a CUDA index (default: 0 if CUDA is available)")
    parser.add_argument("--latency-runs", type=int, default=20, help="timed forwards per model (median reported)")
    parser.add_argument("--out", type=Path, default=Path("runs/ablate"), help="results folder")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args(argv)
    if args.epochs < 1 or args.imgsz < 32 or args.batch < 1 or args.latency_runs < 1:
        parser.error("--epochs, --batch and --latency-runs must be >= 1, --imgsz >= 32")
    args.overrides = {}
    for token in extra:
        key, eq, value = token.lstrip("-").partition("=")
        if not eq:
            parser.error(f"unrecognised argument {token!r}; extra Ultralytics arguments go as key=value")
        from ultralytics.cfg import smart_value

        args.overrides[key] = smart_value(value)
    return args


def main(argv: list[str] | None = None) -> int:
    """Train every (model, seed) that has no DONE marker, then measure latency and write the reports."""
    args = parse_args(argv)
    if args._worker:
        train_one(json.loads(Path(args._worker).read_text()))
        return 0

    import torch
    from tqdm import tqdm

    device = args.device or ("0" if torch.cuda.is_available() else "cpu")
    data = str(Path(args.data).resolve()) if Path(args.data).is_file() else args.data  # a run's cwd may differ
    train = {
        "data": data,
        "epochs": args.epochs,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "device": device,
        "deterministic": True,
        "workers": 0 if device == "cpu" else 8,  # loader workers would compete with training for 2-4 CPU cores
        "plots": False,
        "verbose": False,
        "val": True,
        **args.overrides,
    }
    key = settings_hash(train)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = [(m, s) for s in args.seeds for m in args.models]
    todo = [(m, s) for m, s in runs if not (run_dir(out, m, s, key) / DONE).exists()]
    if len(todo) < len(runs):
        print(f"{len(runs) - len(todo)} of {len(runs)} runs already finished, skipping them", flush=True)
    t0 = time.perf_counter()
    with tqdm(total=len(todo) * args.epochs, unit="epoch", desc="ablation", dynamic_ncols=True) as bar:
        for i, (model, seed) in enumerate(todo):
            folder = run_dir(out, model, seed, key)
            bar.set_postfix_str(f"run {i + 1}/{len(todo)}: {Path(model).stem} seed {seed}")
            launch({"model": model, "seed": seed, "run": str(folder), "train": train}, bar, out / f"{folder.name}.log")
            rec = json.loads((folder / "metrics.json").read_text())
            tqdm.write(
                f"done {Path(model).stem} seed {seed}: mAP50-95 {rec['mAP50-95']:.3g} mAP50 {rec['mAP50']:.3g} "
                f"{statistics.mean(rec['epoch_times_s']):.1f} s/epoch, peak RSS {rec['peak_mem_mb']:.0f} MB"
            )

    # Latency of every model in this one process, one after another, so the numbers are comparable with each other.
    # Cached per (models, imgsz, runs): a re-run with nothing to train does not re-time on a different machine state.
    models = list(dict.fromkeys(args.models))
    cache = out / f"measure-{settings_hash({'models': models, 'imgsz': args.imgsz, 'runs': args.latency_runs})}.json"
    if cache.exists():
        measured = json.loads(cache.read_text())
    else:
        print(f"timing {len(models)} fused models, batch 1, imgsz {args.imgsz}, {args.latency_runs} runs", flush=True)
        measured = measure_models(models, args.imgsz, args.latency_runs)
        write_atomic(cache, json.dumps(measured, indent=1))

    rows = []
    for model, seed in runs:
        folder = run_dir(out, model, seed, key)
        rec = json.loads((folder / "metrics.json").read_text())
        rows.append(
            {
                "model": Path(model).stem,
                "seed": seed,
                **measured[model],
                "epoch_time_s": statistics.mean(rec["epoch_times_s"]),
                "peak_mem_mb": rec["peak_mem_mb"],
                "peak_gpu_mem_mb": rec["peak_gpu_mem_mb"],
                **{c: rec[c] for c in METRIC_KEYS},
                "epochs": args.epochs,
                "imgsz": args.imgsz,
                "batch": args.batch,
                "run": str(folder.relative_to(out)),
            }
        )
    header = (
        f"# Ablation on {Path(args.data).name}: {args.epochs} epochs, imgsz {args.imgsz}, batch {args.batch}, "
        f"seeds {' '.join(map(str, args.seeds))}, device {device}"
    )
    write_reports(out, rows, [Path(m).stem for m in models], header)
    print(f"results in {out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
