"""Per-image evaluation records: a real tiny training on coco8 keeps them, and they give back the validator's mAP."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from yolo_fasternet.apps.ablation.records import RECORDS, RecordError, load_records, recompute_map
from yolo_fasternet.apps.ablation.runs import train_and_validate


def fresh_copy(dataset_yaml, tmp_path):
    """A writable copy of a shared dataset folder without label caches (the shared folder is read-only)."""
    folder = shutil.copytree(
        dataset_yaml.parent, tmp_path / dataset_yaml.parent.name, ignore=shutil.ignore_patterns("*.cache")
    )
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
    os.chmod(folder, 0o755)
    return folder / dataset_yaml.name


@pytest.mark.slow
def test_recomputed_map_equals_the_validators_own(tmp_path, coco8_yaml):
    data = fresh_copy(coco8_yaml, tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    train = {"data": str(data), "epochs": 1, "imgsz": 64, "batch": 4, "device": "cpu", "workers": 0}
    # An untrained model scores below the validator's usual 0.001: conf=0 keeps its 300 best guesses per image
    train.update(plots=False, verbose=False, deterministic=True, val=True, conf=0.0)
    record = train_and_validate({"model": "yolov8n.yaml", "seed": 0, "run": str(run), "train": train})

    records = load_records(run / RECORDS)
    labels = sorted((data.parent / "labels" / "val").glob("*.txt"))
    assert records.n_images == len(labels) == 4
    assert len(records.target_cls) == sum(len(p.read_text().split("\n")) - 1 for p in labels)  # one line per box
    assert len(records.conf) > 100 and records.tp.shape == (len(records.conf), 10)
    assert set(records.pred_image) == {0, 1, 2, 3} and records.conf.max() <= 1
    recomputed = recompute_map(records)
    # Same arrays, same order, same ap_per_class: equal up to floating-point summation, far below 1e-9. (After one
    # epoch from scratch both are 0; the trained runs of the quick preset, where they are 0.3-0.6, are compared by
    # every report, see test_ablation_bootstrap's report tests.)
    assert recomputed["mAP50"] == pytest.approx(record["mAP50"], abs=1e-9)
    assert recomputed["mAP50-95"] == pytest.approx(record["mAP50-95"], abs=1e-9)


def test_a_file_that_is_not_a_record_is_named(tmp_path):
    bad = tmp_path / RECORDS
    bad.write_bytes(b"not an npz")
    with pytest.raises(RecordError, match=f"{bad}: not a per-image evaluation record"):
        load_records(bad)
    np.savez(bad, images=np.array(["a.jpg"]))
    with pytest.raises(RecordError, match="not a per-image evaluation record"):
        load_records(bad)
