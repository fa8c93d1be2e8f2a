"""ablate_yolo.py: reports, Pareto front, atomic writes, skipping finished runs, and one real tiny ablation."""

from __future__ import annotations

import csv

import pytest

from yolo_fasternet.apps import ablate as ablate_yolo

METRICS = ("precision", "recall", "mAP50", "mAP50-95")


def test_write_atomic_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.csv"
    ablate_yolo.write_atomic(path, "old\n")
    ablate_yolo.write_atomic(path, b"new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


class FakeExecutor:
    """What a successful executor leaves behind, without training; records what it was asked to run."""

    def __init__(self):
        self.launched = []

    def run(self, specs, log_of, on_epochs, on_done):
        for spec in specs:
            self.launched.append((spec["model"], spec["seed"]))
            ablate_yolo.prepare_run_folder(spec)
            record = {"epoch_times_s": [1.0], "peak_mem_mb": 1.0, "peak_gpu_mem_mb": None}
            ablate_yolo.record_results(spec, {**record, **dict.fromkeys(METRICS, 0.5)})
            on_epochs(spec["train"]["epochs"])
            on_done(spec)


@pytest.fixture
def fake_runs(monkeypatch):
    executor = FakeExecutor()
    measured = {"params": 1, "gflops": 1.0, "cpu_latency_ms": 1.0, "gpu_latency_ms": None}
    monkeypatch.setattr(ablate_yolo, "make_executor", lambda args, device: executor)
    monkeypatch.setattr(ablate_yolo, "preflight", lambda *a: None)  # a.yaml and b.yaml are names, not files
    monkeypatch.setattr(ablate_yolo, "measure_models", lambda names, *a: {n: measured for n in names})
    return executor


def test_finished_runs_are_skipped_and_unfinished_ones_restart(tmp_path, fake_runs):
    launched = fake_runs.launched
    argv = ["--models", "a.yaml", "b.yaml", "--seeds", "0", "1", "--device", "cpu", "--out", str(tmp_path)]
    ablate_yolo.main(argv)
    assert len(launched) == 4
    launched.clear()
    (next((tmp_path / "runs").glob("b-s1-*")) / ablate_yolo.DONE).unlink()  # as if interrupted
    ablate_yolo.main(argv)
    assert launched == [("b.yaml", 1)]
    ablate_yolo.main([*argv, "--epochs", "2"])  # other settings: other run folders, nothing reused
    assert len(launched) == 5


def test_repeated_models_and_seeds_run_once_and_say_so(tmp_path, fake_runs, capsys):
    argv = ["--models", "a.yaml", "b.yaml", "a.yaml", "--seeds", "0", "0", "1", "--device", "cpu"]
    assert ablate_yolo.main([*argv, "--out", str(tmp_path)]) == 0
    assert sorted(fake_runs.launched) == [("a.yaml", 0), ("a.yaml", 1), ("b.yaml", 0), ("b.yaml", 1)]
    err = capsys.readouterr().err
    assert "--models: a.yaml given more than once" in err and "--seeds: 0 given more than once" in err
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["model"], r["seed"]) for r in rows] == [("a", "0"), ("b", "0"), ("a", "1"), ("b", "1")]


def test_two_models_with_the_same_name_are_refused_before_any_training(tmp_path, fake_runs, capsys):
    argv = ["--models", "a.yaml", "other/a.yaml", "--device", "cpu", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        ablate_yolo.main(argv)
    assert exc.value.code == 2 and fake_runs.launched == []
    assert "a.yaml and other/a.yaml have the same name 'a'" in capsys.readouterr().err


def test_preset_fills_only_the_arguments_not_given(monkeypatch):
    preset = ablate_yolo.PRESETS["quick"]
    args = ablate_yolo.parse_args(["--preset", "quick", "--epochs", "2", "lr0=0.01"])
    assert (args.epochs, args.imgsz, args.batch, args.seeds) == (2, preset.imgsz, preset.batch, list(preset.seeds))
    assert args.models == list(preset.models) and args.jobs == preset.jobs and args.data is None
    assert args.overrides == {**preset.train, "lr0": 0.01}


@pytest.mark.slow
def test_two_tiny_models_one_epoch_end_to_end(tmp_path, capsys):
    from yolo_fasternet.apps.synthetic_data import make_synthetic_dataset

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
    assert "| yolov8n (baseline) | 1 |" in md and "| yolov8n-saconv |" in md and "Δ mAP50-95" in md
    assert (out / "comparison.csv").is_file() and len(list(out.glob("runs/*/records.npz"))) == 2
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
