"""detect_yolo.py on exported models (ONNX, OpenVINO, TorchScript) and the CPU thread count it runs them with."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from ultralytics import YOLO

from yolo_fasternet.apps import detect as detect_yolo
from yolo_fasternet.apps.detection.inference_threads import backend_format, current_threads, set_threads
from yolo_fasternet.apps.detection.runtime_choice import raw_outputs
from yolo_fasternet.cli import main as cli_main

from conftest import assert_outputs_close, nontrivial_outputs
from test_detect_yolo import SIZE, parse_summary, write_video

IMGSZ = 64
FORMATS = {"onnx": "onnx", "openvino": "openvino", "torchscript": "torchscript"}  # Ultralytics format -> ours


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Setting threads is process-wide for PyTorch: later tests get the count they started with."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, str]:
    """yolov8n-fasternet (random weights, every output part non-trivial) saved and exported to each format, 64 px."""
    folder = tmp_path_factory.mktemp("exported")
    model = nontrivial_outputs(YOLO("yolov8n-fasternet.yaml"))
    checkpoint = folder / "tiny.pt"
    model.save(checkpoint)
    paths = {"pytorch": str(checkpoint)}
    for fmt in FORMATS:
        paths[FORMATS[fmt]] = str(YOLO(checkpoint).export(format=fmt, imgsz=IMGSZ, device="cpu"))
    return paths


@pytest.mark.parametrize("fmt", ["pytorch", *FORMATS.values()])
def test_threads_are_set_on_every_format_and_outputs_do_not_change(exported, fmt):
    model = YOLO(exported[fmt], task="detect")
    image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    model.predict(image, imgsz=IMGSZ, device="cpu", verbose=False)  # builds the predictor and its backend
    assert backend_format(model) == fmt
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    reference = raw_outputs(model, x)
    layout = YOLO(exported["pytorch"]).model  # the checkpoint's head says what each output row is
    for threads in (1, 2):
        assert set_threads(model, threads, exported[fmt])
        assert current_threads(model) == threads
        assert_outputs_close(raw_outputs(model, x), reference, layout, what=f"{fmt}, {threads} threads")


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_detect_runs_an_exported_model_on_the_measured_fastest_thread_count(exported, fmt, tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", frames=6, fps=30)
    argv = ["detect", "--weights", exported[fmt], "--imgsz", str(IMGSZ), "--source", str(video), "--no-show"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert parse_summary(out)["processed"] == 6
    line = re.search(r"threads: (\d+) of (\d+) cores, the fastest measured \(FPS by threads: (.*)\)", out)
    assert line, out
    chosen, measured = int(line[1]), dict(re.findall(r"(\d+): ([\d.]+)", line[3]))
    assert str(chosen) in measured
    assert float(measured[str(chosen)]) == max(map(float, measured.values()))


def test_fixed_thread_count_and_bad_values(exported, tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", frames=3, fps=30)
    argv = ["detect", "--weights", exported["onnx"], "--imgsz", str(IMGSZ), "--source", str(video), "--no-show"]
    assert cli_main([*argv, "--threads", "1"]) == 0
    assert "threads: 1 (--threads)" in capsys.readouterr().out
    for bad in ("0", "-2", "many"):
        with pytest.raises(SystemExit) as exit_info:
            detect_yolo.parse_args(["--weights", "x.onnx", "--threads", bad])
        assert exit_info.value.code == 2
        assert f"--threads must be 'auto' or a positive integer, got '{bad}'" in capsys.readouterr().err


def test_missing_exported_model_is_one_line(tmp_path, capsys):
    video = str(write_video(tmp_path / "clip.mp4", frames=2, fps=30))
    for name in ("gone.onnx", "gone.torchscript"):
        assert cli_main(["detect", "--weights", str(tmp_path / name), "--source", video, "--no-show"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.endswith(f"{tmp_path / name}: no such file") and len(err.splitlines()) == 1
    folder = tmp_path / "empty_openvino_model"
    folder.mkdir()
    assert cli_main(["detect", "--weights", str(folder), "--source", video, "--no-show"]) == 1
    assert "OpenVINO folder without a .xml model file" in capsys.readouterr().err


def test_openvino_folder_is_accepted_by_the_preflight(exported):
    assert Path(exported["openvino"]).is_dir()
    from yolo_fasternet.apps.preflight import load_model

    assert load_model(exported["openvino"]).task == "detect"
