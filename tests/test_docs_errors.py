"""The error lines the docs quote are the lines the commands print: each example is produced here and compared.

``docs/errors.md`` shows one block of example error lines (its ``## Examples`` section). Each line must be exactly
what a real command prints for a real bad input, made here in a temporary folder that stands for ``/home/me`` in
the docs. A message changed in the code, or a docs line typed by hand, fails this test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from yolo_fasternet.apps import ablate

from conftest import REPO, closed_loopback_port
from test_detect_yolo import write_video

ERRORS_PAGE = REPO / "docs" / "errors.md"
HOME = "/home/me"  # the docs' stand-in for the folder the commands ran in
PY = sys.executable
CLI = [str(Path(PY).with_name("yolo-fasternet"))]
FASTERNET = (REPO / "cfg" / "yolov8-fasternet.yaml").read_text()


def documented_examples() -> list[str]:
    """The lines of the first ``text`` block under ``## Examples`` in docs/errors.md."""
    section = ERRORS_PAGE.read_text().split("## Examples", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.S)
    assert block, f"{ERRORS_PAGE}: no text block under '## Examples'"
    return block[1].strip().splitlines()


def _inputs(folder: Path) -> dict[str, list[str]]:
    """The bad inputs, written into ``folder``, and the command line that meets each."""
    (folder / "yolov8n-mine.yaml").write_text(
        FASTERNET.replace("[-1, 1, FasterNetBlock, [64]]", "[-1, 1, FasterNetBlock, [64, 0]]")
    )
    (folder / "yolov8n-typo.yaml").write_text(FASTERNET.replace("FasterNetBlock, [128]", "FasterNetBlok, [128]"))
    (folder / "fasternet_t0.pth").write_text("<!DOCTYPE html><html><body>Not Found</body></html>")
    (folder / "runsfile").write_text("a file where a folder should be")
    write_video(folder / "clip.mp4", frames=2, fps=30)
    model = folder / "m_openvino_model"
    model.mkdir()
    (model / "m.xml").write_text(
        '<net name="m"><layers><layer id="0"><data offset="0" size="12304040"/></layer></layers></net>'
    )
    (model / "m.bin").write_bytes(bytes(1000))
    train, detect, ablate_script = (
        [*CLI, "train"],
        [PY, str(REPO / "detect_yolo.py")],
        [PY, str(REPO / "ablate_yolo.py")],
    )
    train_script = [PY, str(REPO / "train_yolo.py")]
    port = closed_loopback_port()
    return {
        "n_div": [*train, "--model", "yolov8n-mine.yaml"],
        "typo": [*train, "--model", "yolov8n-typo.yaml"],
        "dataset": [*train_script, "--data", "data.yaml"],
        "device": [*train_script, "--device", "7"],
        "imgsz": [*train_script, "--imgsz", "-5"],
        "weights": [*train, "--model", "yolov8n-fasternet.yaml", "--backbone-weights", "fasternet_t0.pth"],
        "output": [
            *detect,
            "--weights",
            "yolov8n-fasternet.yaml",
            "--source",
            "clip.mp4",
            "--save",
            "--output",
            "runsfile/out",
        ],
        "openvino": [*detect, "--weights", "m_openvino_model", "--source", "clip.mp4", "--no-show"],
        "ray": [*ablate_script, "--executor", "ray", "--address", f"127.0.0.1:{port}", "--models", "yolov8n.yaml"],
        "port": [str(port)],
    }


def _error_lines(argv: list[str], cwd: Path) -> list[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (1, 2), (argv, proc.returncode, proc.stderr[-2000:])
    return [line for line in proc.stderr.splitlines() if ": error: " in line]


def _failed_training_lines(folder: Path, capsys, monkeypatch) -> list[str]:
    """A training that fails after the checks (here: its dataset is removed once they passed), as ablate reports it."""
    monkeypatch.chdir(folder)
    monkeypatch.setattr(ablate, "preflight", lambda *a: None)  # the dataset goes missing after the checks
    argv = ["--models", "yolov8n-fasternet.yaml", "--data", str(folder / "gone.yaml"), "--seeds", "1"]
    assert ablate.main([*argv, "--epochs", "1", "--imgsz", "64", "--device", "cpu", "--out", "runs/ablate"]) == 1
    err = capsys.readouterr().err.strip().splitlines()  # the progress bar's lines come first
    return err[next(i for i, line in enumerate(err) if ": error: " in line) :]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the device example is the message of a machine without CUDA")
def test_every_example_error_line_in_the_docs_is_what_the_command_prints(tmp_path, capsys, monkeypatch):
    inputs = _inputs(tmp_path)
    port = inputs.pop("port")[0]
    with ThreadPoolExecutor(2) as pool:  # most of each process is importing torch
        produced = dict(zip(inputs, pool.map(lambda argv: _error_lines(argv, tmp_path), inputs.values())))
    lines = [line for key in inputs for line in produced[key]]
    lines += _failed_training_lines(tmp_path, capsys, monkeypatch)
    shown = [line.replace(str(tmp_path), HOME).replace(f"127.0.0.1:{port}", "127.0.0.1:6390") for line in lines]
    shown = [re.sub(r"-s1-[0-9a-f]{8}\.log", "-s1-1a2b3c4d.log", line) for line in shown]  # the settings' hash
    assert shown == documented_examples()
