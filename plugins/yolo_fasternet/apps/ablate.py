"""Backbone ablations: train and validate several model YAMLs under identical settings; one table, one plot.

    python ablate_yolo.py --preset quick --out runs/ablate-quick          # ranks accuracy in ~30 min on 2 CPU cores
    python ablate_yolo.py --data ../shared/datasets/coco128/coco128.yaml --epochs 3 --imgsz 320 --out runs/ablate
    python ablate_yolo.py --models yolov8n.yaml yolov8n-saconv.yaml --seeds 0 1 2 --executor ray --address auto

Every model gets the same data, augmentation, schedule, seed and ``deterministic=True``; repeated models or seeds
run once. Each training runs in its own worker process (so peak RSS is that run's own): a local child process
(``--jobs`` at a time, never outliving this process) or a Ray task (``--executor ray``, see ablation/executors.py). A
finished run leaves ``metrics.json`` and then a ``DONE`` marker; re-running the same command skips runs with a
marker and restarts the others from scratch (a restarted run repeats the same deterministic schedule, which resuming
mid-way from ``last.pt`` would not guarantee for the epoch times). Latency is measured in this process, all models
one after another, run by run, on the fused models at batch 1.

Every validated run also keeps its per-image evaluation records (``records.npz``, see ablation/records.py), so every
statistic can be recomputed later without retraining: ``--report-only --out DIR`` does that (also with another
``--baseline``). Each model is judged against the baseline (the first model) by a two-level paired bootstrap over
seeds and validation images (ablation/bootstrap.py; ``--resamples``, ``--bootstrap-seed``); runs finished before
records were kept fall back to the seeds' paired t-interval, with a note.

Outputs in ``--out``: ``results.md`` (the verdicts first: Δ mAP50-95 and Δ mAP50 in percentage points with 95%
intervals and P(Δ > 0); then mean ± std per model), ``results.csv`` (one row per run), ``comparison.csv`` (each model
against the baseline) and ``pareto.png`` (mAP50-95 with its interval against CPU latency, the baseline's interval
as a band, Pareto front marked, inseparable models hollow). Each is written to a temporary file first and then
renamed, so an interrupted invocation never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from .ablation.executors import CONNECT_TIMEOUT_S, LocalExecutor, RayExecutor, RunFailedError
from .ablation.presets import PRESETS
from .ablation.report import pareto_front  # noqa: F401  part of this module's API
from .ablation.results import ABLATION, COLUMNS, measure_file, report  # noqa: F401  COLUMNS: part of the API
from .ablation.runs import (  # noqa: F401  prepare_run_folder, record_results: part of this module's API
    DONE,
    METRIC_KEYS,
    SPEC,
    prepare_run_folder,
    record_results,
    run_dir,
    run_epochs,
    settings_hash,
    write_atomic,
)
from .ablation.shared_data import prepare_label_caches
from .ablation.variants import PRUNED_CHECKPOINT, check_variants, depends_on, parse_variants, variant_spec
from .arguments import key_value_to_options
from .command_errors import CommandError, CommandParser, InterruptedCommandError, UsageError, command

DEFAULT_MODELS = (
    "yolov8n.yaml",
    "yolov8n-fasternet.yaml",
    "yolov8n-c2f-faster.yaml",
    "yolov8n-saconv.yaml",
    "yolo11n.yaml",
    "yolo11n-fasternet.yaml",
    "yolo11n-c3k2-faster.yaml",
)


# --------------------------------------------------------------------------------------------------------- latency
def time_models(models: dict, imgsz: int, runs: int, device: str = "cpu", warmup: int = 10) -> dict[str, float]:
    """Median milliseconds of a batch-1 forward of each model, all models in turn within every run.

    The first few forwards of a fresh model are ~50x slower on CPU (oneDNN primitive creation), hence the warmup.
    Round-robin like ``zoo.time_pair``, generalised to any number of models: a slow phase of the
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


def measure_models(names: list[str], imgsz: int, runs: int, sources: dict | None = None) -> dict[str, dict]:
    """Parameters, GFLOPs and fused latency (CPU; GPU too where present) of every model, timed in this process.

    ``sources[name]`` is what to build for a name that is no model file (a variant: its pruned checkpoint, or the
    student's YAML).
    """
    import torch

    from .zoo import build

    built, sizes = {}, {}
    for name in names:
        model, row = build((sources or {}).get(name, name), imgsz)  # fused eval model
        sizes[name] = {"params": row.params, "gflops": row.gflops}
        built[name] = model
    cpu = time_models(built, imgsz, runs)
    gpu = {}
    if torch.cuda.is_available():
        gpu = time_models({n: m.cuda() for n, m in built.items()}, imgsz, runs, device="cuda")
    return {n: {**sizes[n], "cpu_latency_ms": cpu[n], "gpu_latency_ms": gpu.get(n)} for n in names}


# --------------------------------------------------------------------------------------------------------- reports
def summarize_verdicts(v) -> None:
    """One line per model against the baseline, one per compression variant against its source, and the notes."""
    pairs = [(model, v.baseline, by_metric) for model, by_metric in v.against.items()]
    pairs += [(variant, f"its source {source}", by_metric) for variant, (source, _, by_metric) in v.sources.items()]
    for model, against, by_metric in pairs:
        d = by_metric["mAP50-95"]
        interval = f" [{d.low * 100:+.2f}, {d.high * 100:+.2f}]" if d.low is not None else ""
        chance = f", P(Δ > 0) {d.p_better:.3f}" if d.p_better is not None else ""
        print(f"{model} vs {against}: mAP50-95 {d.delta * 100:+.2f} pt{interval}{chance}: {d.verdict}", flush=True)
    for note in v.notes:
        print(f"note: {note}", flush=True)


# ------------------------------------------------------------------------------------------------------------ main
# Training arguments the ablation sets itself (per run or from its own options): no extra key=value may override them
OWN_KEYS = {"model", "data", "epochs", "imgsz", "batch", "device", "seed", "project", "name", "exist_ok"}
FALLBACK = {"models": list(DEFAULT_MODELS), "data": "coco8.yaml", "epochs": 3, "imgsz": 320, "batch": 16, "seeds": [0]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; extra ``key=value`` tokens pass to every ``YOLO.train()`` call alike.

    A ``--preset`` fills every argument not given explicitly (``ablation/presets.py``); the rest fall back to FALLBACK.
    Every value is checked here, extra keys with Ultralytics' own ``check_cfg``, so a typo fails with status 2
    before the first training instead of inside it.
    """
    from ultralytics.cfg import check_cfg
    from ultralytics.utils import DEFAULT_CFG_DICT

    from .compression.teacher import missing_distillation
    from .preflight import check_ranges
    from .train import parse_overrides

    parser = CommandParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=PRESETS, help="; ".join(f"{k}: {p.summary}" for k, p in PRESETS.items()))
    parser.add_argument(
        "--models", nargs="+", help="model YAMLs, baseline first (default: the preset's, else the 7 of DEFAULT_MODELS)"
    )
    parser.add_argument("--data", help="dataset YAML (default: the preset's, else coco8.yaml)")
    parser.add_argument("--epochs", type=int, help="default: the preset's, else 3")
    parser.add_argument("--imgsz", type=int, help="default: the preset's, else 320")
    parser.add_argument("--batch", type=int, help="default: the preset's, else 16")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: the preset's, else 0")
    variants = (  # compression variants (ablation/variants.py): option, its two values, help
        ("--prune", ("SOURCE", "TARGET"), "each seed's SOURCE run (one of --models) pruned to TARGET (a channel ratio "
         "such as 0.3, or a GFLOPs speed-up such as 1.5x), then fine-tuned with the same settings"),
        ("--distill", ("STUDENT", "TEACHER"), "STUDENT (one of --models) trained with distill_model=TEACHER, one of "
         "--models (its run of the same seed) or a trained .pt"),
    )  # fmt: skip
    for option, metavar, text in variants:
        parser.add_argument(option, nargs=2, action="append", metavar=metavar, help=f"a variant: {text}; repeatable")
    parser.add_argument(
        "--fine-tune-epochs", type=int, help="a pruned variant's fine-tune epochs (default: the preset's, or --epochs)"
    )
    parser.add_argument("--device", default=None, help="cpu or a CUDA index (default: 0 if CUDA is available)")
    parser.add_argument("--latency-runs", type=int, default=20, help="timed forwards per model (median reported)")
    parser.add_argument("--out", type=Path, default=Path("runs/ablate"), help="results folder")
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where runs train (default: local)"
    )
    parser.add_argument("--jobs", type=int, help="local runs at a time (default: the preset's, else 1)")
    parser.add_argument("--address", help="Ray cluster address (default: a local Ray instance)")
    parser.add_argument("--cpus-per-run", type=int, default=1, help="Ray: CPUs (and torch threads) per run")
    parser.add_argument("--retries", type=int, default=2, help="Ray: resubmissions of a run whose worker was lost")
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=CONNECT_TIMEOUT_S,
        help=f"Ray: seconds to wait for --address HOST:PORT to accept a connection (default: {CONNECT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="train nothing: recompute every table and the plot in --out"
    )
    parser.add_argument("--baseline", help="the model the others are compared with (default: the first model)")
    parser.add_argument(
        "--resamples", type=int, default=2000, help="bootstrap resamples of seeds and validation images (>= 2000)"
    )
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap's draws (default: 0)")
    tokens = key_value_to_options(argv, parser)
    # key=value tokens that name no option of ours are Ultralytics arguments; set aside first, so that --models'
    # nargs="+" does not take `lr0=0.02` for a model
    extra = [t for t in tokens if "=" in t and not t.startswith("-")]
    args, more = parser.parse_known_args([t for t in tokens if t not in extra])
    extra += more
    preset = PRESETS.get(args.preset)
    for key, fallback in FALLBACK.items():
        if getattr(args, key) is None:
            setattr(args, key, getattr(preset, key, fallback) if key != "data" or not preset else None)
    if args.jobs is None:
        args.jobs = preset.jobs if preset else 1
    for key in ("prune", "distill", "fine_tune_epochs"):
        if getattr(args, key) is None and preset:
            setattr(args, key, getattr(preset, key))
    args.fine_tune_epochs = args.fine_tune_epochs or args.epochs
    minimum = {"--epochs": 1, "--imgsz": 32, "--batch": 1, "--latency-runs": 1, "--jobs": 1, "--cpus-per-run": 1}
    minimum.update({"--retries": 0, "--resamples": 2000, "--bootstrap-seed": 0, "--fine-tune-epochs": 1})
    for option, least in minimum.items():
        value = getattr(args, option[2:].replace("-", "_"))
        if value < least:
            parser.error(f"{option} must be >= {least}, got {value}")
    if not args.connect_timeout > 0:
        parser.error(f"--connect-timeout must be > 0 seconds, got {args.connect_timeout:g}")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds must be >= 0, got {' '.join(map(str, args.seeds))}")
    given = parse_overrides(extra, parser)  # unknown keys fail here, with close matches
    own = sorted(OWN_KEYS & set(given))
    if own:
        parser.error(f"{', '.join(own)}: set by the ablation itself (use its own options, see --help)")
    args.overrides = {**(dict(preset.train) if preset else {}), **given}
    try:
        check_cfg(dict(args.overrides))
        check_ranges(args.overrides)
    except (TypeError, ValueError, UsageError) as e:
        parser.error(str(e).splitlines()[0])
    if args.distill and "distill_model" not in DEFAULT_CFG_DICT and not args.report_only:
        parser.error(missing_distillation("--distill"))
    try:
        args.models, args.seeds = fold_duplicates(args.models, args.seeds)
        wanted = (args.prune, args.distill, args.models, args.fine_tune_epochs)
        args.variants = [] if args.report_only else parse_variants(*wanted)
    except ValueError as e:
        parser.error(str(e))
    names = {Path(m).stem for m in args.models} | {v.name for v in args.variants}
    if args.baseline and not args.report_only and Path(args.baseline).stem not in names:
        parser.error(f"--baseline {args.baseline}: not one of --models ({' '.join(args.models)}) or their variants")
    return args


def fold_duplicates(models: list[str], seeds: list[int]) -> tuple[list[str], list[int]]:
    """Drop repeated models and seeds (a repeat would train the same run twice and fake a spread), saying so.

    Two different model paths with the same file stem would share run folders and table rows: ValueError.
    """
    for name, values in (("--models", models), ("--seeds", seeds)):
        repeats = sorted({str(v) for v in values if values.count(v) > 1})
        if repeats:
            print(f"{name}: {', '.join(repeats)} given more than once; each runs once", file=sys.stderr, flush=True)
    models, seeds = list(dict.fromkeys(models)), list(dict.fromkeys(seeds))
    stems: dict[str, str] = {}
    for m in models:
        other = stems.setdefault(Path(m).stem, m)
        if other != m:
            raise ValueError(f"--models: {other} and {m} have the same name {Path(m).stem!r}; rename one")
    return models, seeds


def _finished_as(spec: dict) -> bool:
    """Whether the run folder of ``spec`` holds a finished run of the same variant (target, fine-tune, teacher),
    finished after the runs it was made from (a source retrained by an earlier, interrupted invocation: not)."""
    folder = Path(spec["run"])
    made_from = [Path(spec[k]) / DONE for k in ("source_run", "teacher_run") if k in spec]
    try:
        finished = (folder / DONE).stat().st_mtime
        if any(done.stat().st_mtime > finished for done in made_from if done.exists()):
            return False
        return json.loads((folder / SPEC).read_text()).get("variant") == spec["variant"]
    except (OSError, ValueError):
        return False


def make_executor(args: argparse.Namespace, device: str):
    """The executor for ``--executor``; a run on the local executor gets cpu_count // jobs torch threads."""
    if args.executor == "ray":
        return RayExecutor(args.address, args.cpus_per_run, args.retries, connect_timeout=args.connect_timeout)
    return LocalExecutor(jobs=args.jobs)


def preflight(args: argparse.Namespace, data: str, device: str) -> None:
    """Everything that can fail before the first training, checked now: device, ``--out``, each model, the data,
    the compression variants (``variants.check_variants``); then the dataset's label caches, built once here
    (``shared_data``) so that runs starting together never race on them. Classification models are refused: the
    ablation's metrics and verdicts are mAP.
    """
    from .preflight import check_dataset, check_device, check_output_folder, load_model

    check_device(device)
    check_output_folder(args.out, "--out")
    tasks = {name: load_model(name).task for name in dict.fromkeys(args.models)}  # each model built once
    if len(set(tasks.values())) > 1:
        raise UsageError(f"--models mix tasks ({', '.join(f'{Path(m).name}: {t}' for m, t in tasks.items())})")
    task = next(iter(tasks.values()))
    if task == "classify":
        raise UsageError(f"--models: {next(iter(tasks))} is a classification model; ablate compares detection models")
    check_dataset(data, task)
    check_variants(args.variants, tasks, data)
    prepare_label_caches(data, task)


@command("yolo-fasternet ablate")
def main(argv: list[str] | None = None) -> int:
    """Train every (model, seed) that has no DONE marker, then measure latency and write the reports."""
    args = parse_args(argv)
    if args.report_only:
        started = time.perf_counter()
        summarize_verdicts(report(args.out, args.baseline, args.resamples, args.bootstrap_seed))
        print(f"results in {args.out} ({time.perf_counter() - started:.1f} s)")
        return 0

    import torch
    from tqdm import tqdm

    device = args.device or ("0" if torch.cuda.is_available() else "cpu")
    try:
        executor = make_executor(args, device)
    except RunFailedError as e:  # --executor ray without Ray installed: an argument the machine cannot honour
        raise UsageError(str(e)) from e
    dataset = Path(args.data).name if args.data else None
    if args.data is None:  # a preset's generated dataset (deterministic, cached), named by its folder
        args.data = str(PRESETS[args.preset].data_yaml())
        dataset = Path(args.data).parent.name
    data = str(Path(args.data).resolve()) if Path(args.data).is_file() else args.data  # a run's cwd may differ
    preflight(args, data, device)
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
    # Parallel local runs share the cores; alone, a run keeps Ultralytics' own thread count
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.executor == "local" and args.jobs > 1 else None
    threads = args.cpus_per_run if args.executor == "ray" else threads
    plain = [
        {"model": m, "seed": s, "run": str(run_dir(out, m, s, key)), "train": train, "threads": threads}
        for s in args.seeds
        for m in args.models
    ]
    todo = [spec for spec in plain if not (Path(spec["run"]) / DONE).exists()]
    # Compression variants train once their sources and teachers have: a second stage, in the same executor
    retrained = {(spec["model"], spec["seed"]) for spec in todo}
    derived, todo_derived = [], []
    for s in args.seeds:
        for v in args.variants:
            spec = {"model": v.name, "seed": s, "run": str(run_dir(out, v.name, s, key)), "train": train}
            spec.update(threads=threads, **variant_spec(v, s, lambda m, seed: run_dir(out, m, seed, key)))
            derived.append(spec)
            if not _finished_as(spec) or any((m, s) in retrained for m in depends_on(v)):
                todo_derived.append(spec)
    runs = plain + derived
    if len(todo) + len(todo_derived) < len(runs):
        done_before = len(runs) - len(todo) - len(todo_derived)
        print(f"{done_before} of {len(runs)} runs already finished, skipping them", flush=True)
    stages = [stage for stage in (todo, todo_derived) if stage]
    t0 = time.perf_counter()
    total = sum(run_epochs(spec) for stage in stages for spec in stage)
    with tqdm(total=total, unit="epoch", desc="ablation", dynamic_ncols=True) as bar:
        finished = []

        def on_done(spec):
            finished.append(spec)
            rec = json.loads((Path(spec["run"]) / "metrics.json").read_text())
            bar.set_postfix_str(f"{len(finished)}/{len(todo) + len(todo_derived)} runs")
            tqdm.write(
                f"done {Path(spec['model']).stem} seed {spec['seed']}: mAP50-95 {rec['mAP50-95']:.3g} "
                f"mAP50 {rec['mAP50']:.3g} {statistics.mean(rec['epoch_times_s']):.1f} s/epoch, "
                f"peak RSS {rec['peak_mem_mb']:.0f} MB"
            )

        try:
            for stage in stages:
                executor.run(stage, lambda spec: out / f"{Path(spec['run']).name}.log", bar.update, on_done)
        except (CommandError, KeyboardInterrupt) as e:
            bar.close()
            done = sum((Path(spec["run"]) / DONE).exists() for spec in runs)
            kept = f"{done} of {len(runs)} runs finished and kept in {out}; the same command continues from there"
            if isinstance(e, KeyboardInterrupt):
                raise InterruptedCommandError(f"interrupted; {kept}") from e
            raise CommandError(f"{e}\n{kept}") from e

    # Latency of every model in this one process, one after another, so the numbers are comparable with each other.
    # Cached per (models, imgsz, runs): a re-run with nothing to train does not re-time on a different machine state.
    # A pruned variant is timed as its pruned checkpoint (the same widths for every seed), a distilled one as its
    # student's YAML (distillation changes the weights, not the architecture).
    models = args.models + [v.name for v in args.variants]
    first = args.seeds[0]
    sources = {
        v.name: str(run_dir(out, v.name, first, key) / PRUNED_CHECKPOINT) if v.kind == "prune" else v.source
        for v in args.variants
    }
    cache = measure_file(out, models, args.imgsz, args.latency_runs)
    if cache.exists() and not todo_derived:
        measured = json.loads(cache.read_text())
    else:
        print(f"timing {len(models)} fused models, batch 1, imgsz {args.imgsz}, {args.latency_runs} runs", flush=True)
        measured = measure_models(models, args.imgsz, args.latency_runs, sources)
        write_atomic(cache, json.dumps(measured, indent=1))

    source = f"preset {args.preset}, " if args.preset else ""
    header = (
        f"# Ablation on {dataset} ({source}{args.executor} executor): {args.epochs} epochs, "
        f"imgsz {args.imgsz}, batch {args.batch}, seeds {' '.join(map(str, args.seeds))}, device {device}"
    )
    write_atomic(out / ABLATION, json.dumps({"models": models, "header": header, "key": key}, indent=1))
    summarize_verdicts(report(out, args.baseline, args.resamples, args.bootstrap_seed, key=key))
    print(f"results in {out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
