"""Compression variants in ``ablate``: a pruned-and-fine-tuned or distilled model against its source."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import os
import time

import pytest
from ablation_fakes import make_records

from yolo_fasternet.apps import ablate
from yolo_fasternet.apps.ablation.records import RECORDS, recompute_map, save_records
from yolo_fasternet.apps.ablation.variants import PRUNED_CHECKPOINT

SKILL = {"a": 0.45, "b": 0.75, "a-pruned-0_3": 0.3, "b-distilled-a": 0.76}


class StagedExecutor:
    """Finishes every run as a worker would, with hand-made records; remembers the specs of each ``run`` call."""

    def __init__(self):
        self.calls: list[list[dict]] = []

    def run(self, specs, log_of, on_epochs, on_done):
        self.calls.append(list(specs))
        for spec in specs:
            ablate.prepare_run_folder(spec)
            offset = sorted(SKILL).index(spec["model"].removesuffix(".yaml")) * 100
            records = make_records(
                offset + spec["seed"], n_images=16, skill=SKILL[spec["model"].removesuffix(".yaml")], background=4
            )
            save_records(ablate.Path(spec["run"]) / RECORDS, dataclasses.asdict(records))
            metrics = {"precision": 0.5, "recall": 0.5, **recompute_map(records)}
            ablate.record_results(
                spec, {"epoch_times_s": [1.0], "peak_mem_mb": 1.0, "peak_gpu_mem_mb": None, **metrics}
            )
            on_done(spec)


@pytest.fixture
def staged(tmp_path, monkeypatch):
    """Run ``ablate`` with a, b, a pruned at 0.3 and b distilled from a, two seeds, into tmp_path/out."""
    executor = StagedExecutor()
    timed = []

    def measure(names, imgsz, runs, sources=None):
        timed.append(dict(sources or {}))
        return {n: {"params": 50 if "pruned" in n else 100, "gflops": 1.0, "cpu_latency_ms": 1.0} for n in names}

    monkeypatch.setattr(ablate, "make_executor", lambda args, device: executor)
    monkeypatch.setattr(ablate, "preflight", lambda *a: None)
    monkeypatch.setattr(ablate, "measure_models", measure)
    argv = ["--models", "a.yaml", "b.yaml", "--prune", "a.yaml", "0.3", "--distill", "b", "a.yaml"]
    argv += ["--seeds", "0", "1", "--device", "cpu", "--epochs", "2", "--fine-tune-epochs", "1"]

    def run(*more):
        calls = len(executor.calls)
        assert ablate.main([*argv, "--out", str(tmp_path / "out"), *more]) == 0
        return tmp_path / "out", executor.calls[calls:], timed

    return run


def test_variants_train_after_their_sources_from_the_same_seed(staged):
    out, calls, timed = staged()
    assert [sorted(s["model"] for s in c) for c in calls] == [
        ["a.yaml", "a.yaml", "b.yaml", "b.yaml"],
        ["a-pruned-0_3", "a-pruned-0_3", "b-distilled-a", "b-distilled-a"],
    ]
    for spec in calls[1]:
        assert spec["source_run"] == str(
            ablate.run_dir(out.resolve(), spec["variant"]["source"], spec["seed"], spec["run"][-8:])
        )
        assert spec["train"] == calls[0][0]["train"]  # identical settings; only the variant's own part differs
    pruned = next(s for s in calls[1] if s["model"] == "a-pruned-0_3")
    assert pruned["variant"]["ratio"] == 0.3 and pruned["variant"]["epochs"] == 1 and ablate.run_epochs(pruned) == 1
    distilled = next(s for s in calls[1] if s["model"] == "b-distilled-a" and s["seed"] == 1)
    assert distilled["teacher_run"].endswith(f"/a-s1-{distilled['run'][-8:]}")
    # the pruned variant is timed as its first seed's pruned checkpoint, the distilled one as its student's YAML
    assert timed[-1]["a-pruned-0_3"].endswith(f"a-pruned-0_3-s0-{pruned['run'][-8:]}/{PRUNED_CHECKPOINT}")
    assert timed[-1]["b-distilled-a"] == "b.yaml"


def test_the_report_names_each_variant_and_its_source_and_judges_them(staged, capsys):
    out, _, _ = staged()
    printed = capsys.readouterr().out
    assert "a-pruned-0_3 vs its source a: mAP50-95 " in printed and ": worse" in printed
    assert "b-distilled-a vs its source b: mAP50-95 " in printed
    md = (out / "results.md").read_text()
    table = md.split("Compression variants against their source")[1].split("Per model")[0]
    pruned = next(line for line in table.splitlines() if line.startswith("| a-pruned-0_3 |"))
    assert "pruned (ratio 0.3), fine-tuned 1 epoch | a | **worse** |" in pruned and "-50.0%" in pruned
    distilled = next(line for line in table.splitlines() if line.startswith("| b-distilled-a |"))
    assert "distilled from a, same seed | b |" in distilled and "seeds and images" in distilled
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    # the distilled variant: once against the baseline (a), once against its source (b)
    assert sorted(r["baseline"] for r in rows if r["model"] == "b-distilled-a") == ["a", "a", "b", "b"]
    assert {r["baseline"] for r in rows if r["model"] == "a-pruned-0_3"} == {"a"}
    runs = list(csv.DictReader((out / "results.csv").open()))
    assert {(r["model"], r["source"], r["epochs"]) for r in runs if r["source"]} == {
        ("a-pruned-0_3", "a", "1"),
        ("b-distilled-a", "b", "2"),
    }


def test_a_rerun_skips_finished_variants_and_redoes_one_asked_for_differently(staged, capsys):
    staged()
    _, calls, _ = staged()
    assert calls == [] and "8 of 8 runs already finished" in capsys.readouterr().out
    out, calls, _ = staged("--fine-tune-epochs", "3")  # same variant name, another fine-tune: done again
    assert [sorted(s["model"] for s in c) for c in calls] == [["a-pruned-0_3", "a-pruned-0_3"]]
    # a source that finished after its variants (retrained by an earlier, interrupted invocation): they are redone
    (done,) = out.glob("runs/a-s0-*/DONE")
    os.utime(done, (time.time() + 60, time.time() + 60))
    _, calls, _ = staged("--fine-tune-epochs", "3")
    assert [sorted((s["model"], s["seed"]) for s in c) for c in calls] == [[("a-pruned-0_3", 0), ("b-distilled-a", 0)]]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--prune", "a.yaml", "1"], ["--prune a.yaml 1", "between 0 and 1"]),
        (["--prune", "a.yaml", "0.8x"], ["speed-up must be above 1", "0.8x"]),
        (["--prune", "nosuch.yaml", "0.3"], ["nosuch.yaml is not one of --models"]),
        (["--distill", "nosuch.yaml", "a.yaml"], ["student nosuch.yaml is not one of --models"]),
        (["--distill", "a.yaml", "b.yaml"], ["teacher is neither one of --models nor a trained .pt"]),
        (["--distill", "a.yaml", "x/t.pt", "--distill", "a.yaml", "y/t.pt"], ["named a-distilled-t"]),
    ],
)
def test_a_bad_variant_is_one_line_before_any_work(args, words, capsys):
    with pytest.raises(SystemExit) as stopped:
        ablate.parse_args(["--models", "a.yaml", *args])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_distill_on_an_ultralytics_without_it_names_the_release_needed(monkeypatch, capsys):
    import ultralytics.utils

    from yolo_fasternet.apps.compression.teacher import DISTILLATION_ULTRALYTICS

    without = {k: v for k, v in ultralytics.utils.DEFAULT_CFG_DICT.items() if k not in ("distill_model", "dis")}
    monkeypatch.setattr(ultralytics.utils, "DEFAULT_CFG_DICT", without)
    with pytest.raises(SystemExit) as stopped:
        ablate.parse_args(["--models", "a.yaml", "--distill", "a.yaml", "t.pt"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--distill" in err[0] and DISTILLATION_ULTRALYTICS in err[0], err


def test_prune_without_torch_pruning_is_one_line_before_any_work(monkeypatch):
    from yolo_fasternet.apps.ablation import variants
    from yolo_fasternet.apps.command_errors import CommandError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch_pruning" else real(name))
    wanted = variants.parse_variants([("a.yaml", "0.3")], [], ["a.yaml"], 1)
    with pytest.raises(CommandError, match=r"--prune needs torch-pruning: pip install 'yolo-fasternet\[prune\]'"):
        variants.check_variants(wanted, {"a.yaml": "detect"}, "data.yaml")


def test_the_compress_preset_trains_prunes_fine_tunes_and_distils():
    args = ablate.parse_args(["--preset", "compress"])
    preset = ablate.PRESETS["compress"]
    assert args.models == list(preset.models) and args.fine_tune_epochs == preset.fine_tune_epochs
    kinds = {v.kind: v for v in args.variants}
    assert kinds["prune"].source == "yolov8s-fasternet.yaml" and kinds["prune"].ratio == 0.6
    assert (kinds["distill"].source, kinds["distill"].teacher) == ("yolov8n-fasternet.yaml", "yolov8s-fasternet.yaml")
    assert kinds["distill"].teacher_in_ablation


# --- end to end: real trainings, pruning and distillation on coco8 -------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch_pruning") is None, reason="torch-pruning is not installed")
@pytest.mark.skipif(
    "distill_model" not in __import__("ultralytics.utils", fromlist=["DEFAULT_CFG_DICT"]).DEFAULT_CFG_DICT,
    reason="this Ultralytics has no distill_model= (added by 8.4.190)",
)
def test_a_pruned_and_a_distilled_variant_end_to_end(coco8_yaml, tmp_path, capsys):
    """yolov8n and yolov8n-fasternet train one epoch; yolov8n-fasternet is pruned (0.3) and fine-tuned one epoch;
    yolov8n-fasternet also trains with the yolov8n run as its teacher. 4 trainings at 64 px."""
    out = tmp_path / "ablate"
    argv = ["--models", "yolov8n.yaml", "yolov8n-fasternet.yaml", "--data", str(coco8_yaml), "--epochs", "1"]
    argv += ["--imgsz", "64", "--batch", "4", "--device", "cpu", "--latency-runs", "2", "--out", str(out)]
    argv += ["--prune", "yolov8n-fasternet.yaml", "0.3", "--fine-tune-epochs", "1"]
    argv += ["--distill", "yolov8n-fasternet.yaml", "yolov8n.yaml"]
    assert ablate.main(argv) == 0
    rows = {r["model"]: r for r in csv.DictReader((out / "results.csv").open())}
    pruned, source = rows["yolov8n-fasternet-pruned-0_3"], rows["yolov8n-fasternet"]
    assert int(pruned["params"]) < int(source["params"]) and pruned["source"] == "yolov8n-fasternet"
    run = out / pruned["run"]
    assert (run / PRUNED_CHECKPOINT).is_file()
    assert len((run / "progress.jsonl").read_text().splitlines()) == 1  # the fine-tune's one epoch ran
    with open(run / "train" / "results.csv") as f:
        assert len(list(csv.reader(f))) == 2  # header + the fine-tune epoch
    import torch

    trained = torch.load(run / "train" / "weights" / "last.pt", weights_only=False)
    trained_params = sum(p.numel() for p in (trained["ema"] or trained["model"]).parameters())
    assert trained_params == int(pruned["params"])  # the fine-tune kept the pruned widths

    distilled = rows["yolov8n-fasternet-distilled-yolov8n"]
    assert distilled["source"] == "yolov8n-fasternet" and distilled["params"] == source["params"]
    with open(out / distilled["run"] / "train" / "results.csv") as f:
        assert any("dis_loss" in c for c in next(csv.reader(f)))
    spec = json.loads((out / distilled["run"] / "spec.json").read_text())
    assert spec["teacher_run"].endswith(f"yolov8n-s0-{distilled['run'][-8:]}")
    md = (out / "results.md").read_text()
    assert "| yolov8n-fasternet-pruned-0_3 | pruned (ratio 0.3), fine-tuned 1 epoch | yolov8n-fasternet |" in md
    assert "| yolov8n-fasternet-distilled-yolov8n | distilled from yolov8n, same seed | yolov8n-fasternet |" in md


@pytest.mark.skipif(importlib.util.find_spec("torch_pruning") is None, reason="torch-pruning is not installed")
def test_a_ratio_prunes_differently_trained_weights_to_the_same_widths():
    """Why a pruned variant's cost is measured on its first seed alone: the widths follow the ratio, not the
    weights (two different initialisations, as two seeds' runs have, prune to the same shapes)."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from yolo_fasternet.apps.compression.channel_pruning import prune

    shapes = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = DetectionModel("yolov8n-fasternet.yaml", nc=4, verbose=False)
        for m in model.modules():  # BatchNorm scales differ per seed too, as after training
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.data.uniform_(0.1, 1.0)
        unpruned = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        pruned = prune(model, 64, ratio=0.3).model
        shapes.append({k: tuple(v.shape) for k, v in pruned.state_dict().items()})
        assert shapes[-1] != unpruned  # it did prune
    assert shapes[0] == shapes[1]
