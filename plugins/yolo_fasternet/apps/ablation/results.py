"""From finished run folders to the report files: what both a full ablation and ``--report-only`` write.

``collect(out)`` reads every finished run (``runs/*/DONE``) of one settings group, its ``spec.json`` (a compression
variant's also names its source), ``metrics.json`` and, where kept, ``records.npz``; the latency measured for the
group's models (``measure-*.json``); and the model order and title the ablation stored in ``ablation.json``
(older folders: the order of ``results.csv``). ``write_reports`` writes ``results.csv`` (one row per run),
``comparison.csv`` (each model against the baseline, each compression variant against its source), ``results.md``
and ``pareto.png``, each atomically.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..command_errors import CommandError, UsageError
from .records import RECORDS, RecordError, Records, load_records
from .report import comparison_csv, markdown, plot_png
from .runs import DONE, METRIC_KEYS, METRICS_FILE, SPEC, settings_hash, write_atomic
from .verdicts import Verdicts, against_sources, verdicts

ABLATION = "ablation.json"  # the ablation's model order (baseline first) and title, written by the ablation
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
    "variant",
    "source",
    "epochs",
    "imgsz",
    "batch",
    "run",
)


@dataclass
class Collected:
    """The finished runs of one settings group of an output folder."""

    rows: list[dict]
    models: list[str]  # model stems, the ablation's baseline first
    header: str
    records: dict[tuple[str, int], Records] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # variant -> (its source, how it was made)


def measure_file(out: Path, models: list[str], imgsz: int, runs: int) -> Path:
    """Where the latency of ``models`` (names as given) at ``imgsz`` over ``runs`` timed forwards is cached."""
    return out / f"measure-{settings_hash({'models': models, 'imgsz': imgsz, 'runs': runs})}.json"


def _measured(out: Path, names: set[str]) -> dict[str, dict]:
    """The most recent latency file that covers every model in ``names``; {} where none does."""
    for path in sorted(out.glob("measure-*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            measured = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(measured, dict) and names <= set(measured):
            return measured
    return {}


def _model_order(out: Path, stems: set[str], key: str) -> tuple[list[str], str | None]:
    """The ablation's own model order (and title) for the group ``key``: ablation.json, else results.csv's rows."""
    order: list[str] = []
    title = None
    try:
        stored = json.loads((out / ABLATION).read_text())
        if stored.get("key") == key:
            order, title = [Path(m).stem for m in stored["models"]], stored.get("header")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    if not order and (out / "results.csv").is_file():
        with open(out / "results.csv", newline="") as f:
            order = list(dict.fromkeys(r.get("model", "") for r in csv.DictReader(f)))
    known = [m for m in order if m in stems]
    return known + sorted(stems - set(known)), title


def collect(out: Path, key: str | None = None) -> Collected:
    """Read the finished runs in ``out`` of settings group ``key`` (default: the most recently finished group, with
    a note if there are others); a folder without finished runs is a ``CommandError``."""
    if not out.is_dir():
        raise CommandError(f"--out {out}: no such folder")
    groups: dict[str, list[tuple[Path, dict]]] = {}
    for done in (out / "runs").glob(f"*/{DONE}"):
        folder = done.parent
        try:
            spec = json.loads((folder / SPEC).read_text())
            key = settings_hash(spec["train"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        groups.setdefault(key, []).append((folder, spec))
    if not groups:
        raise CommandError(f"--out {out}: no finished runs (runs/*/{DONE}); nothing to report")
    newest = {k: max((f / DONE).stat().st_mtime for f, _ in runs) for k, runs in groups.items()}
    key = key if key in groups else max(newest, key=newest.get)
    notes = []
    if len(groups) > 1:
        notes.append(f"{out} also holds runs under other settings ({', '.join(sorted(set(groups) - {key}))}); not used")
    runs = sorted(groups[key], key=lambda fs: (fs[1]["seed"], fs[0].name))
    measured = _measured(out, {spec["model"] for _, spec in runs})
    stems = {Path(spec["model"]).stem for _, spec in runs}
    models, title = _model_order(out, stems, key)
    rows, records, sources = [], {}, {}
    for folder, spec in runs:
        rec = json.loads((folder / METRICS_FILE).read_text())
        stem, train = Path(spec["model"]).stem, spec["train"]
        variant = spec.get("variant") or {}
        if variant:
            sources[stem] = (Path(variant["source"]).stem, variant["description"])
        blank = dict.fromkeys(("params", "gflops", "cpu_latency_ms", "gpu_latency_ms"))
        rows.append(
            {
                "model": stem,
                "seed": spec["seed"],
                **{**blank, **measured.get(spec["model"], {})},
                "epoch_time_s": statistics.mean(rec["epoch_times_s"]) if rec.get("epoch_times_s") else None,
                "peak_mem_mb": rec.get("peak_mem_mb"),
                "peak_gpu_mem_mb": rec.get("peak_gpu_mem_mb"),
                **{c: rec[c] for c in METRIC_KEYS},
                "variant": variant.get("description"),
                "source": sources[stem][0] if variant else None,
                "epochs": variant.get("epochs") or train.get("epochs"),
                "imgsz": train.get("imgsz"),
                "batch": train.get("batch"),
                "run": str(folder.relative_to(out)),
            }
        )
        if (folder / RECORDS).is_file():
            try:
                records[(stem, int(spec["seed"]))] = load_records(folder / RECORDS)
            except RecordError as e:
                notes.append(str(e))
    rows.sort(key=lambda r: (r["seed"], models.index(r["model"])))
    if title is None:
        train = runs[0][1]["train"]
        data = Path(str(train.get("data", "?")))
        dataset = data.parent.name if data.name in ("data.yaml", "dataset.yaml") else data.name
        seeds = " ".join(str(s) for s in sorted({int(spec["seed"]) for _, spec in runs}))
        title = (
            f"# Ablation on {dataset}: {train.get('epochs')} epochs, imgsz {train.get('imgsz')}, "
            f"batch {train.get('batch')}, seeds {seeds}, device {train.get('device')}"
        )
    sources = {v: s for v, s in sources.items() if s[0] in models}  # a source whose runs are gone: no pair
    return Collected(rows, models, title, records, notes, sources)


def pick_baseline(models: list[str], baseline: str | None, out: Path) -> str:
    """``--baseline`` as a model stem or YAML name among the runs; default the ablation's first model."""
    if baseline is None:
        return models[0]
    stem = Path(baseline).stem
    if stem not in models:
        raise UsageError(f"--baseline {baseline}: not among the runs in {out} (models: {', '.join(models)})")
    return stem


def write_reports(out: Path, found: Collected, v: Verdicts) -> None:
    """results.csv, comparison.csv, results.md and pareto.png, each written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if r.get(k) is None else r[k]) for k in COLUMNS} for r in found.rows)
    write_atomic(out / "results.csv", buf.getvalue())
    write_atomic(out / "comparison.csv", comparison_csv(v))
    write_atomic(out / "results.md", markdown(found.rows, found.models, found.header, v))
    write_atomic(out / "pareto.png", plot_png(found.rows, found.models, found.header.lstrip("# "), v))


def report(
    out: Path, baseline: str | None = None, resamples: int = 2000, bootstrap_seed: int = 0, key: str | None = None
) -> Verdicts:
    """Collect the finished runs in ``out`` (settings group ``key``), judge every model against the baseline, write
    the reports."""
    found = collect(out, key)
    base = pick_baseline(found.models, baseline, out)
    models = [base] + [m for m in found.models if m != base]
    found.models = models
    v = verdicts(found.rows, models, found.records, base, resamples, bootstrap_seed)
    v.notes = found.notes + v.notes
    v.sources = against_sources(found.rows, found.sources, found.records, resamples, bootstrap_seed)
    write_reports(out, found, v)
    return v
