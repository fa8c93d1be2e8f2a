"""train_yolo.py: named options, Ultralytics pass-through arguments, argument errors, and one real short run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from ultralytics.cfg import parse_key_value_pair

from yolo_fasternet.apps import train as train_yolo
from yolo_fasternet.apps.synthetic_data import make_synthetic_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "train_yolo.py"


def _run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=300
    )


def test_defaults():
    args = train_yolo.parse_args([])
    assert (args.model, args.data, args.device) == ("yolov8n-fasternet.yaml", None, None)
    assert args.overrides == {}
    assert train_yolo.train_kwargs(args) == {k: v for k, v in train_yolo.DEFAULTS.items() if k != "model"}


def test_pass_through_forms():
    args = train_yolo.parse_args(["--lr0", "0.02", "mosaic=0.5", "--cos_lr", "--close_mosaic=0", "--epochs", "3"])
    assert args.overrides == {"lr0": 0.02, "mosaic": 0.5, "cos_lr": True, "close_mosaic": 0}
    assert args.epochs == 3
    assert train_yolo.train_kwargs(args).items() >= {"epochs": 3, "lr0": 0.02, "cos_lr": True}.items()


def test_booleans():
    parse = train_yolo.parse_args
    assert parse(["--cos_lr", "false", "--rect"]).overrides == {"cos_lr": False, "rect": True}
    assert parse(["--amp=False", "cos_lr", "plots=false"]).overrides == {"amp": False, "cos_lr": True, "plots": False}
    assert parse(["--cache", "ram", "--rect", "cos_lr"]).overrides == {"cache": "ram", "rect": True, "cos_lr": True}


@pytest.mark.parametrize(
    "pair", ["lr0=1e-3", "name=1e-3", "project=007", "degrees=-5", "classes=[0,2]", "cache=ram", "fraction=0.5"]
)
def test_values_convert_like_the_yolo_command(pair):
    key, expected = parse_key_value_pair(pair)
    raw = pair.split("=", 1)[1]
    for argv in ([pair], [f"--{pair}"], [f"--{key}", raw]):
        args = train_yolo.parse_args(argv)
        value = args.overrides[key] if key in args.overrides else getattr(args, key)
        assert (value, type(value)) == (expected, type(expected)), argv


def test_key_value_sets_named_options():
    args = train_yolo.parse_args(["epochs=5", "--data=foo.yaml", "device=cpu", "--batch", "-1", "--save-period", "2"])
    assert (args.epochs, args.data, args.device, args.batch) == (5, "foo.yaml", "cpu", -1)
    assert args.overrides == {"save_period": 2}


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--lr", "0.1"], ["unknown argument 'lr'", "lr0", "lrf"]),
        (["mosaik=0.5"], ["unknown argument 'mosaik'", "mosaic"]),
        (["--lr0"], ["'lr0' needs a value"]),
        (["--lr0", "--epochs", "3"], ["'lr0' needs a value"]),
        (["lr0"], ["'lr0' needs a value"]),
        (["lr0="], ["'lr0' has an empty value"]),
        (["--lr0", "fast"], ["lr0=fast", "invalid type"]),
        (["--fraction", "2.5"], ["fraction=2.5"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        train_yolo.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for word in words:
        assert word in err


@pytest.fixture
def fake_training(monkeypatch, tmp_path) -> dict:
    """Stand-ins for YOLO, the dataset and the device: record what main() would train with, return canned metrics."""
    calls = {}

    class FakeYOLO:
        task = "detect"

        def __init__(self, model):
            calls["model"] = model

        def train(self, **kwargs):
            calls["train"] = kwargs
            save_dir = Path(kwargs.get("project", "."))
            self.trainer = SimpleNamespace(save_dir=save_dir, best=save_dir / "best.pt")
            return SimpleNamespace(results_dict={"metrics/mAP50(B)": 0.5})

    monkeypatch.setattr(train_yolo, "load_model", FakeYOLO)
    monkeypatch.setattr(train_yolo, "make_synthetic_dataset", lambda: tmp_path / "data.yaml")
    monkeypatch.setattr(train_yolo, "default_device", lambda: "cpu")
    monkeypatch.setattr(train_yolo, "check_device", lambda device: calls.setdefault("device_checked", device))
    monkeypatch.setattr(train_yolo, "check_dataset", lambda data, task: calls.setdefault("data_checked", data))
    return calls


def test_main_trains_on_the_synthetic_dataset_by_default(fake_training, tmp_path, capsys):
    """Without --data: the synthetic dataset and its recipe; on a CPU no loader workers. Options still win."""
    assert train_yolo.main(["--lr0", "0.02", "--project", str(tmp_path)]) == 0
    assert fake_training["model"] == "yolov8n-fasternet.yaml"
    assert fake_training["train"] == {
        **{k: v for k, v in train_yolo.DEFAULTS.items() if k != "model"},
        **train_yolo.SYNTHETIC_RECIPE,
        "nbs": train_yolo.DEFAULTS["batch"],
        "lr0": 0.02,
        "project": str(tmp_path),
        "data": str(tmp_path / "data.yaml"),
        "device": "cpu",
        "workers": 0,
    }
    out = capsys.readouterr().out
    assert f"save_dir   {tmp_path.resolve()}" in out and "best.pt    not saved" in out
    assert "mAP50      0.5000" in out and "recall     n/a" in out


def test_main_leaves_other_datasets_to_ultralytics_defaults(fake_training):
    assert train_yolo.main(["--data", "coco8.yaml", "--batch", "-1", "--device", "0"]) == 0
    assert fake_training["train"] == {
        **train_yolo.train_kwargs(train_yolo.parse_args(["--batch", "-1"])),
        "data": "coco8.yaml",
        "device": "0",
    }
    assert (fake_training["device_checked"], fake_training["data_checked"]) == ("0", "coco8.yaml")  # before training


def test_unknown_key_from_the_command_line(tmp_path):
    proc = _run_script("--epochs", "1", "--lr00", "0.1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("error: unknown argument 'lr00'; did you mean lr0?")


@pytest.mark.slow
def test_short_training_run(tmp_path):
    data = make_synthetic_dataset(tmp_path / "data", n_train=8, n_val=4, imgsz=64)
    args = ["--data", str(data), "--epochs", "1", "--imgsz", "64", "--batch", "4", "--project", str(tmp_path / "runs")]
    proc = _run_script(*args, "--name", "run", "--lr0=0.02", "plots=False", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    save_dir = Path(re.search(r"^  save_dir +(.+)$", proc.stdout, re.M).group(1))
    assert save_dir == (tmp_path / "runs" / "run").resolve()
    assert (save_dir / "weights" / "best.pt").is_file()
    assert re.search(rf"^  best\.pt +{re.escape(str(save_dir / 'weights' / 'best.pt'))}$", proc.stdout, re.M)
    for key in ("precision", "recall", "mAP50", "mAP50-95"):
        assert re.search(rf"^  {re.escape(key)} +\d\.\d{{4}}$", proc.stdout, re.M), key
    run_args = yaml.safe_load((save_dir / "args.yaml").read_text())  # what Ultralytics actually trained with
    assert (run_args["lr0"], run_args["plots"], run_args["imgsz"], run_args["batch"]) == (0.02, False, 64, 4)
    # The run ends with the next commands to try; the printed `yolo predict` line runs as printed.
    best = save_dir / "weights" / "best.pt"
    predict = re.search(r"^  (yolo predict .+)$", proc.stdout, re.M).group(1)
    assert f"model={best}" in predict and f"source={data.parent / 'images' / 'val'}" in predict
    assert re.search(rf"^  python detect_yolo.py --weights {re.escape(str(best))} ", proc.stdout, re.M)
    assert re.search(rf"^  yolo val model={re.escape(str(best))} data={re.escape(str(data))}", proc.stdout, re.M)
    ran = subprocess.run(
        [str(Path(sys.executable).with_name("yolo")), *predict.split()[1:], "save=False"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0 and "Speed:" in ran.stdout + ran.stderr, ran.stderr[-2000:]
