"""ablate_yolo.py: reports, Pareto front, atomic writes, skipping finished runs, and one real tiny ablation."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))  # ablate_yolo.py is a top-level script, not part of the package
import ablate_yolo  # noqa: E402

METRICS = ("precision", "recall", "mAP50", "mAP50-95")


def test_pareto_front_keeps_only_non_dominated_models():
    points = {"a": (10.0, 0.30), "b": (20.0, 0.40), "c": (25.0, 0.35), "d": (5.0, 0.10), "e": (10.0, 0.25)}
    assert ablate_yolo.pareto_front(points) == ["d", "a", "b"]  # c: slower and worse than b; e: ties a, worse mAP


def test_write_atomic_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.csv"
    ablate_yolo.write_atomic(path, "old\n")
    ablate_yolo.write_atomic(path, b"new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def _row(model, seed, cpu, m):
    base = {c: 1.0 for c in ablate_yolo.COLUMNS}
    return {
        **base,
        "model": model,
        "seed": seed,
        "cpu_latency_ms": cpu,
        "gpu_latency_ms": None,
        **dict.fromkeys(METRICS, m),
    }


def test_markdown_reports_mean_std_and_deltas_against_the_first_model():
    rows = [
        _row("base", 0, 10.0, 0.20),
        _row("base", 1, 10.0, 0.30),
        _row("other", 0, 12.0, 0.30),
        _row("other", 1, 12.0, 0.40),
    ]
    md = ablate_yolo.markdown(rows, ["base", "other"], "# title")
    assert "| base | 2 |" in md and "0.25 ± 0.0707" in md
    assert "GPU ms" not in md  # a column without any value is left out
    delta = next(line for line in md.splitlines() if line.startswith("| other |") and "pt" in line)
    assert "+20.0%" in delta and "+10 pt" in delta


def test_finished_runs_are_skipped_and_unfinished_ones_restart(tmp_path, monkeypatch):
    launched = []

    def fake_launch(spec, bar, log):  # what a successful worker leaves behind, without training
        launched.append((spec["model"], spec["seed"]))
        from pathlib import Path

        folder = Path(spec["run"])
        folder.mkdir(parents=True, exist_ok=True)
        record = {"epoch_times_s": [1.0], "peak_mem_mb": 1.0, "peak_gpu_mem_mb": None, **dict.fromkeys(METRICS, 0.5)}
        ablate_yolo.write_atomic(folder / "metrics.json", json.dumps(record))
        ablate_yolo.write_atomic(folder / ablate_yolo.DONE, "")
        bar.update(spec["train"]["epochs"])

    measured = {"params": 1, "gflops": 1.0, "cpu_latency_ms": 1.0, "gpu_latency_ms": None}
    monkeypatch.setattr(ablate_yolo, "launch", fake_launch)
    monkeypatch.setattr(ablate_yolo, "measure_models", lambda names, *a: {n: measured for n in names})
    argv = ["--models", "a.yaml", "b.yaml", "--seeds", "0", "1", "--device", "cpu", "--out", str(tmp_path)]
    ablate_yolo.main(argv)
    assert len(launched) == 4
    launched.clear()
    (next((tmp_path / "runs").glob("b-s1-*")) / ablate_yolo.DONE).unlink()  # as if interrupted
    ablate_yolo.main(argv)
    assert launched == [("b.yaml", 1)]
    ablate_yolo.main([*argv, "--epochs", "2"])  # other settings: other run folders, nothing reused
    assert len(launched) == 5


@pytest.mark.slow
def test_two_tiny_models_one_epoch_end_to_end(tmp_path, capsys):
    from yolo_fasternet.synthetic_data import make_synthetic_dataset

    data = make_synthetic_dataset(tmp_path / "data", n_train=16, n_val=8, imgsz=64)
    out = tmp_path / "ablate"
    models = ["yolov8n.yaml", "yolov8n-saconv.yaml"]
    argv = ["--models", *models, "--data", str(data), "--epochs", "1", "--imgsz", "64", "--batch", "8"]
    argv += ["--device", "cpu", "--latency-runs", "2", "--out", str(out)]
    assert ablate_yolo.main(argv) == 0
    first = capsys.readouterr()
    assert first.err.count("done yolov8n") == 2 or first.out.count("done yolov8n") == 2  # one line per run

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["model"] for r in rows] == ["yolov8n", "yolov8n-saconv"]
    assert list(rows[0]) == list(ablate_yolo.COLUMNS)
    for r in rows:
        assert int(r["params"]) > 1e6 and float(r["gflops"]) > 0 and float(r["cpu_latency_ms"]) > 0
        assert float(r["epoch_time_s"]) > 0 and float(r["peak_mem_mb"]) > 100
        assert all(0.0 <= float(r[m]) <= 1.0 for m in METRICS)
    md = (out / "results.md").read_text()
    assert "| yolov8n | 1 |" in md and "| yolov8n-saconv |" in md and "Δ mAP50-95" in md
    png = (out / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(out / "pareto.png") as im:
        im.verify()
        assert im.size[0] > 100 and im.size[1] > 100

    markers = sorted(out.glob("runs/*/DONE"))
    assert len(markers) == 2
    stamps = [m.stat().st_mtime_ns for m in markers]
    csv_before = (out / "results.csv").read_text()
    assert ablate_yolo.main(argv) == 0
    second = capsys.readouterr()
    assert "2 of 2 runs already finished" in second.out
    assert "done " not in second.out + second.err
    assert [m.stat().st_mtime_ns for m in markers] == stamps
    assert (out / "results.csv").read_text() == csv_before
