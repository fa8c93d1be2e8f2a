"""Knowledge distillation with plugin models: Ultralytics' native ``distill_model=`` through the stock CLI."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO
from ultralytics.utils import DEFAULT_CFG_DICT

from yolo_fasternet.apps import train
from yolo_fasternet.apps.compression.teacher import DISTILLATION_ULTRALYTICS

from conftest import run_checked

HAS_DISTILLATION = "distill_model" in DEFAULT_CFG_DICT


@pytest.mark.slow
@pytest.mark.skipif(not HAS_DISTILLATION, reason="this Ultralytics has no distill_model= (added by 8.4.190)")
@pytest.mark.parametrize("teacher_yaml", ["yolov8n-c2f-faster.yaml", "yolov8n.yaml"])  # a plugin and a stock teacher
def test_plugin_student_distils_through_the_stock_cli(teacher_yaml, coco8_yaml, tmp_path):
    """``yolo train model=yolov8n-fasternet.yaml distill_model=teacher.pt`` trains one epoch in a fresh process, and
    its results have a distillation loss column."""
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pt"
    torch.save({"model": YOLO(teacher_yaml, verbose=False).model.half(), "train_args": {}}, teacher)
    yolo = str(Path(os.sys.executable).with_name("yolo"))
    run_checked(
        [yolo, "train", "model=yolov8n-fasternet.yaml", f"distill_model={teacher}", f"data={coco8_yaml}", "epochs=1",
         "imgsz=64", "batch=4", "workers=0", "device=cpu", "plots=False", f"project={tmp_path}", "name=distil"],
        cwd=tmp_path,
    )  # fmt: skip
    with open(tmp_path / "distil" / "results.csv") as f:
        columns = [c.strip() for c in next(csv.reader(f))]
    assert any("dis_loss" in c for c in columns), columns
    assert (tmp_path / "distil" / "weights" / "last.pt").is_file()


def test_distillation_keys_on_an_ultralytics_without_them_name_the_release_needed(monkeypatch, capsys):
    """On an Ultralytics whose config has no ``distill_model`` (8.3.x), ``yolo-fasternet train distill_model=...``
    is refused in one line naming the release that has it, not as an unknown argument."""
    without = {k: v for k, v in DEFAULT_CFG_DICT.items() if k not in ("distill_model", "dis")}
    monkeypatch.setattr(train, "DEFAULT_CFG_DICT", without)
    with pytest.raises(SystemExit) as stopped:
        train.parse_args(["distill_model=teacher.pt"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "distill_model" in err[0] and DISTILLATION_ULTRALYTICS in err[0], err
