"""``ablate --report-only``: reports from finished runs (with or without per-image records), without training."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
from ablation_fakes import make_records

from yolo_fasternet.apps import ablate
from yolo_fasternet.apps.ablation.records import RECORDS, recompute_map, save_records

SKILL = {"a.yaml": 0.45, "b.yaml": 0.75, "c.yaml": 0.45}  # b is far better than a; c is a's equal


class RecordingExecutor:
    """Finishes every run as a worker would, with hand-made per-image records (or, ``old``, without them).

    Each run's reported mAP is what Ultralytics' own ``ap_per_class`` gives on its records (as the validator reports
    it), so the report's check that the bootstrap's weighted AP reproduces it compares two implementations;
    ``misreport`` names one (model, seed) whose reported mAP50-95 is off by 0.01, as a mismatched record would be.
    """

    def __init__(self, old: bool = False, misreport: tuple[str, int] | None = None):
        self.old, self.misreport = old, misreport

    def run(self, specs, log_of, on_epochs, on_done):
        for spec in specs:
            ablate.prepare_run_folder(spec)
            offset = {"a.yaml": 0, "b.yaml": 100, "c.yaml": 200}[spec["model"]]
            records = make_records(offset + spec["seed"], n_images=48, skill=SKILL[spec["model"]])
            reported = recompute_map(records)
            if (spec["model"], spec["seed"]) == self.misreport:
                reported["mAP50-95"] += 0.01
            if not self.old:
                save_records(ablate.Path(spec["run"]) / RECORDS, dataclasses.asdict(records))
            metrics = {"precision": 0.5, "recall": 0.5, **reported}
            ablate.record_results(
                spec, {"epoch_times_s": [1.0], "peak_mem_mb": 1.0, "peak_gpu_mem_mb": None, **metrics}
            )
            on_done(spec)


@pytest.fixture
def finished(tmp_path, monkeypatch):
    """A function that runs an ablation of a, b, c over two seeds into tmp_path/out (old=True: no records)."""

    def run(old: bool = False, misreport: tuple[str, int] | None = None):
        measured = {"params": 1, "gflops": 1.0, "cpu_latency_ms": 1.0, "gpu_latency_ms": None}
        monkeypatch.setattr(ablate, "make_executor", lambda args, device: RecordingExecutor(old, misreport))
        monkeypatch.setattr(ablate, "preflight", lambda *a: None)
        monkeypatch.setattr(ablate, "measure_models", lambda names, *a: {n: measured for n in names})
        argv = ["--models", "a.yaml", "b.yaml", "c.yaml", "--seeds", "0", "1", "--device", "cpu"]
        assert ablate.main([*argv, "--out", str(tmp_path / "out"), "--resamples", "2000"]) == 0
        return tmp_path / "out"

    return run


def verdict_line(md: str, model: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"| {model} |") and " pt " in line)


def test_a_finished_ablation_leads_with_bootstrap_verdicts(finished, capsys):
    out = finished()
    md = (out / "results.md").read_text()
    assert md.index("vs baseline") < md.index("Per model")  # verdicts first
    assert "**better**" in verdict_line(md, "b") and "seeds and images" in verdict_line(md, "b")
    assert "**not separable**" in verdict_line(md, "c")
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    b = next(r for r in rows if r["model"] == "b" and r["metric"] == "mAP50-95")
    assert b["baseline"] == "a" and b["method"] == "bootstrap" and b["resamples"] == "2000"
    assert 0 < float(b["low_pt"]) < float(b["delta_pt"]) < float(b["high_pt"]) and float(b["p_better"]) == 1.0
    assert "b vs a: mAP50-95 +" in capsys.readouterr().out


def test_report_only_recomputes_the_same_reports_without_training(finished, monkeypatch, capsys):
    out = finished()
    before = {name: (out / name).read_text() for name in ("results.md", "results.csv", "comparison.csv")}
    monkeypatch.setattr(ablate, "make_executor", lambda *a: pytest.fail("--report-only must not train"))
    (out / "results.md").unlink()
    assert ablate.main(["--report-only", "--out", str(out)]) == 0
    assert {name: (out / name).read_text() for name in before} == before


def test_report_only_with_another_baseline(finished):
    out = finished()
    assert ablate.main(["--report-only", "--out", str(out), "--baseline", "c.yaml"]) == 0
    md = (out / "results.md").read_text()
    assert "Against the baseline, **c**" in md and "| c (baseline) |" in md
    assert "**better**" in verdict_line(md, "b") and "**not separable**" in verdict_line(md, "a")
    assert {r["baseline"] for r in csv.DictReader((out / "comparison.csv").open())} == {"c"}


def test_old_runs_without_records_get_seed_level_statistics_and_one_note(finished, capsys):
    out = finished(old=True)
    (out / "ablation.json").unlink()  # as an ablation from before: the model order comes from results.csv
    capsys.readouterr()
    assert ablate.main(["--report-only", "--out", str(out)]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "no per-image records for a seed 0" in notes[0] and "seed-level" in notes[0]
    md = (out / "results.md").read_text()
    assert "2 seeds, t-interval" in verdict_line(md, "b") and "| a (baseline) |" in md
    assert json.loads(json.dumps(list(csv.DictReader((out / "comparison.csv").open()))))[0]["method"] == "seeds"


def test_a_run_whose_records_do_not_give_its_reported_map_is_named_and_left_out(finished, capsys):
    out = finished(misreport=("c.yaml", 1))
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert any("c seed 1: its records give an mAP 0.01 away from metrics.json; unused" in n for n in notes), notes
    md = (out / "results.md").read_text()
    assert "2 seeds, t-interval" in verdict_line(md, "c")  # c lacks a usable record for seed 1: seed-level
    assert "seeds and images" in verdict_line(md, "b")  # b and a keep the paired bootstrap


def test_report_only_on_an_empty_folder_is_one_line(tmp_path, capsys):
    assert ablate.main(["--report-only", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"yolo-fasternet ablate: error: --out {tmp_path}: no finished runs (runs/*/DONE); nothing to report"


def test_report_only_with_an_unknown_baseline_is_one_line(finished, capsys):
    out = finished()
    capsys.readouterr()
    assert ablate.main(["--report-only", "--out", str(out), "--baseline", "nosuch.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"yolo-fasternet ablate: error: --baseline nosuch.yaml: not among the runs in {out} (models: a, b, c)"
    ]


def _rows_and_records(seeds):
    rows, records = [], {}
    for model, offset in (("a", 0), ("b", 100)):
        for seed in seeds:
            r = make_records(offset + seed, n_images=32, skill=SKILL[f"{model}.yaml"])
            records[(model, seed)] = r
            rows.append({"model": model, "seed": seed, **recompute_map(r), "cpu_latency_ms": 1.0})
    return rows, records


@pytest.mark.parametrize("seeds, with_t", [((0,), False), ((0, 1), False), ((0, 1, 2), True)])
def test_the_seeds_t_interval_is_a_second_column_from_three_seeds(seeds, with_t):
    from yolo_fasternet.apps.ablation.report import markdown
    from yolo_fasternet.apps.ablation.verdicts import verdicts

    rows, records = _rows_and_records(seeds)
    md = markdown(rows, ["a", "b"], "# t", verdicts(rows, ["a", "b"], records, resamples=300))
    assert ("seeds' t-interval" in md) == with_t
    line = verdict_line(md, "b")
    assert "**better**" in line
    assert ("1 seed: images only" in line) == (len(seeds) == 1)
