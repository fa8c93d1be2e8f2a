"""``yolo-fasternet quantize``: INT8 OpenVINO (NNCF) and ONNX Runtime models of a trained checkpoint, judged by mAP."""

from __future__ import annotations

import re

import pytest
import torch
from ultralytics import YOLO

from yolo_fasternet.apps.synthetic_data import make_synthetic_dataset
from yolo_fasternet.cli import main as cli_main

IMGSZ = 128
pytestmark = pytest.mark.slow  # trains a model for about two minutes, then quantizes it twice
MAX_LOSS_POINTS = 2.0  # mAP50-95 points INT8 may lose on this small val split (64 images) of a briefly trained model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """best.pt of yolov8n-fasternet trained on synthetic shapes (the demo's recipe, 20 epochs at 128 px, ~2 min on
    2 cores): mAP50-95 about 0.18, a model that detects, so quantization can cost accuracy."""
    folder = tmp_path_factory.mktemp("quantize")
    data = make_synthetic_dataset(root=folder / "data", n_train=256, n_val=64, imgsz=IMGSZ)
    model = YOLO("yolov8n-fasternet.yaml")
    model.train(
        data=str(data),
        epochs=20,
        imgsz=IMGSZ,
        batch=8,
        nbs=8,
        optimizer="AdamW",
        lr0=0.004,
        mosaic=0.0,
        warmup_epochs=1,
        workers=0,
        device="cpu",
        project=str(folder / "runs"),
        name="train",
        plots=False,
        val=False,
        verbose=False,
    )
    return folder / "runs" / "train" / "weights" / "best.pt"


def table(out: str) -> dict[str, tuple[float, float]]:
    """mAP50-95 and mAP50 of the FP32 and INT8 rows the command prints."""
    rows = re.findall(r"^\s+(FP32|INT8)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+\S", out, re.M)
    return {name: (float(a), float(b)) for name, a, b in rows}


@pytest.mark.parametrize("fmt", ["openvino", "onnx"])
def test_int8_keeps_the_map_on_held_out_images(trained, fmt, capsys):
    assert cli_main(["quantize", "--weights", str(trained), "--format", fmt, "--max-loss", str(MAX_LOSS_POINTS)]) == 0
    out = capsys.readouterr().out
    assert "calibration on the train split" in out and "val split" in out
    maps = table(out)
    assert set(maps) == {"FP32", "INT8"}, out
    assert maps["FP32"][0] > 0.10, out  # the model detects: a mAP that can move
    assert abs(maps["INT8"][0] - maps["FP32"][0]) <= MAX_LOSS_POINTS / 100, out
    suffix = "_int8_openvino_model" if fmt == "openvino" else "_int8.onnx"
    assert (trained.parent / f"best{suffix}").exists()


def test_bad_arguments_are_one_line(trained, tmp_path, capsys):
    cases = [
        (["--weights", "yolov8n-fasternet.yaml"], 2, "give a trained .pt checkpoint"),
        (["--weights", str(trained), "--fraction", "0"], 2, "--fraction must be in (0, 1], got 0.0"),
        (["--weights", str(trained), "--imgsz", "8"], 2, "--imgsz must be at least 32, got 8"),
        (["--weights", str(tmp_path / "gone.pt")], 1, "gone.pt: no such file"),
        (["--weights", str(trained), "--data", str(tmp_path / "none.yaml")], 1, "none.yaml"),
    ]
    for argv, code, message in cases:
        try:
            status = cli_main(["quantize", *argv])
        except SystemExit as e:  # argparse's own exit for a bad option value, as for every command
            status = e.code
        assert status == code, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_val_split_equal_to_train_split_is_refused(trained, tmp_path, capsys):
    images = trained.parents[3] / "data"
    source = next(images.rglob("*.yaml"))
    text = source.read_text()
    train = re.search(r"^train: (.+)$", text, re.M)[1]
    same = tmp_path / "same.yaml"
    same.write_text(re.sub(r"^val: .+$", f"val: {train}", text, flags=re.M))
    assert cli_main(["quantize", "--weights", str(trained), "--data", str(same)]) == 1
    assert "its val split is its train split" in capsys.readouterr().err


def test_recorded_dataset_missing_here_is_refused(trained, tmp_path, capsys):
    """No silent calibration on other images: a checkpoint's own dataset that is not here needs --data."""
    checkpoint = torch.load(trained, map_location="cpu", weights_only=False)
    checkpoint["train_args"]["data"] = str(tmp_path / "gone.yaml")
    moved = tmp_path / "moved.pt"
    torch.save(checkpoint, moved)
    assert cli_main(["quantize", "--weights", str(moved)]) == 1
    assert "gone.yaml, which is not here; give --data" in capsys.readouterr().err
