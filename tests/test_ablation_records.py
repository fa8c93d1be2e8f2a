"""Per-image evaluation records: a real tiny training on coco8 keeps them, and they give back the validator's mAP."""

from __future__ import annotations

import numpy as np
import pytest
from ablation_fakes import fresh_copy

from yolo_fasternet.apps.ablation.records import RECORDS, RecordError, load_records, recompute_map
from yolo_fasternet.apps.ablation.runs import train_and_validate


def _guesses_near_the_targets(monkeypatch):
    """Make the real validator score predictions that are the targets jittered, some with the wrong class, beside
    the untrained model's own: its mAP is then well inside (0, 1), where a record that lost, added or reordered
    entries gives another number (after one epoch from scratch the model's own mAP is 0, which any record matches)."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator

    real = DetectionValidator.update_metrics
    generator = torch.Generator().manual_seed(0)

    def update_metrics(self, preds, batch):
        guessed = []
        for si, pred in enumerate(preds):
            target = self._prepare_batch(si, batch)
            boxes, n = target["bboxes"], len(target["cls"])
            near = boxes + torch.randn(boxes.shape, generator=generator) * 0.08 * (boxes[:, 2:] - boxes[:, :2]).repeat(
                1, 2
            )
            cls = target["cls"].clone()
            cls[::3] = (cls[::3] + 1) % 80  # every third guess names the wrong class
            conf = torch.rand(n, generator=generator)
            extra = {"extra": torch.zeros(n, pred["extra"].shape[1])} if "extra" in pred else {}
            guess = {"bboxes": near, "conf": conf, "cls": cls, **extra}
            guessed.append({k: torch.cat([guess[k], pred[k].cpu()]) for k in pred})
        return real(self, guessed, batch)

    monkeypatch.setattr(DetectionValidator, "update_metrics", update_metrics)


@pytest.mark.slow
def test_recomputed_map_equals_the_validators_own(tmp_path, coco8_yaml, monkeypatch):
    data = fresh_copy(coco8_yaml, tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    train = {"data": str(data), "epochs": 1, "imgsz": 64, "batch": 4, "device": "cpu", "workers": 0}
    # An untrained model scores below the validator's usual 0.001: conf=0 keeps its 300 best guesses per image
    train.update(plots=False, verbose=False, deterministic=True, val=True, conf=0.0)
    _guesses_near_the_targets(monkeypatch)
    record = train_and_validate({"model": "yolov8n.yaml", "seed": 0, "run": str(run), "train": train})

    records = load_records(run / RECORDS)
    labels = sorted((data.parent / "labels" / "val").glob("*.txt"))
    assert records.n_images == len(labels) == 4
    assert len(records.target_cls) == sum(len(p.read_text().split("\n")) - 1 for p in labels)  # one line per box
    assert len(records.conf) > 100 and records.tp.shape == (len(records.conf), 10)
    assert set(records.pred_image) == {0, 1, 2, 3} and records.conf.max() <= 1
    assert 0.1 < record["mAP50-95"] < record["mAP50"] < 0.95, record  # a number a faulty record would not give
    recomputed = recompute_map(records)
    # Same arrays, same order, same ap_per_class: equal up to floating-point summation, far below 1e-9.
    assert recomputed["mAP50"] == pytest.approx(record["mAP50"], abs=1e-9)
    assert recomputed["mAP50-95"] == pytest.approx(record["mAP50-95"], abs=1e-9)


def test_the_committed_evidence_runs_records_give_their_reported_map_exactly():
    """docs/ablations.md says so of the committed quick-preset run; each run's records against its metrics.json."""
    import json

    from conftest import REPO

    runs = sorted((REPO / "docs" / "ablation" / "runs").glob("*/" + RECORDS))
    assert len(runs) == 6
    for path in runs:
        reported = json.loads((path.parent / "metrics.json").read_text())
        recomputed = recompute_map(load_records(path))
        assert recomputed == {"mAP50": reported["mAP50"], "mAP50-95": reported["mAP50-95"]}, path.parent.name


def test_a_file_that_is_not_a_record_is_named(tmp_path):
    bad = tmp_path / RECORDS
    bad.write_bytes(b"not an npz")
    with pytest.raises(RecordError, match=f"{bad}: not a per-image evaluation record"):
        load_records(bad)
    np.savez(bad, images=np.array(["a.jpg"]))
    with pytest.raises(RecordError, match="not a per-image evaluation record"):
        load_records(bad)


class FakeValidator:
    """What the recorder reads from Ultralytics' validator: ``update_metrics`` appending per-image stat entries, in
    8.4's way (``metrics.stats``, one entry per image) or 8.3's (``stats``; no entry for an image with neither
    predictions nor targets)."""

    def __init__(self, records, old: bool):
        self.records, self.old = records, old
        self.iouv = records.iouv
        stats = {"tp": [], "conf": [], "pred_cls": [], "target_cls": [], "target_img": []}
        if old:
            self.stats = stats
        else:
            self.metrics = type("Metrics", (), {"stats": stats})()

    def update_metrics(self, preds, batch):
        stats = self.stats if self.old else self.metrics.stats
        r = self.records
        for i in batch["index"]:
            p, t = r.pred_image == i, r.target_image == i
            if self.old and not p.any() and not t.any():
                continue
            entry = {"tp": r.tp[p], "conf": r.conf[p].astype(np.float32), "pred_cls": r.pred_cls[p]}
            entry.update(target_cls=r.target_cls[t], target_img=np.unique(r.target_cls[t]))
            for k, v in entry.items():
                stats[k].append(v)

    def validate(self, recorder, batch_size=4):
        recorder.on_val_start(self)
        r = self.records
        for start in range(0, r.n_images, batch_size):
            index = list(range(start, min(start + batch_size, r.n_images)))
            preds = [np.zeros((int((r.pred_image == i).sum()), 6)) for i in index]
            batch_idx = np.concatenate([np.full(int((r.target_image == i).sum()), k) for k, i in enumerate(index)])
            self.update_metrics(preds, {"index": index, "im_file": [f"/d/val/{r.images[i]}" for i in index],
                                        "batch_idx": batch_idx})  # fmt: skip


@pytest.mark.parametrize("old", [False, True], ids=["8.4", "8.3"])
def test_the_recorder_keeps_every_image_in_order(old):
    from ablation_fakes import make_records

    from yolo_fasternet.apps.ablation.records import Records, ValidationRecorder

    source = make_records(5, n_images=30, background=3)
    empty = np.isin(source.pred_image, [3, 4]) | False
    keep_t = ~np.isin(source.target_image, [3, 4])  # images 3 and 4: no predictions, no targets
    kept = [source.pred_image[~empty], source.tp[~empty], source.conf[~empty], source.pred_cls[~empty]]
    source = Records(source.images, *kept, source.target_image[keep_t], source.target_cls[keep_t], source.iouv)
    recorder = ValidationRecorder()
    FakeValidator(source, old).validate(recorder)
    FakeValidator(source, old).validate(recorder)  # a second validation replaces the first
    got = Records(**{k: v for k, v in recorder.arrays().items() if k in Records.__dataclass_fields__})
    assert list(got.images) == list(source.images)
    np.testing.assert_array_equal(got.pred_image, source.pred_image)
    np.testing.assert_array_equal(got.tp, source.tp)
    np.testing.assert_array_equal(got.target_image, source.target_image)
    assert recompute_map(got) == pytest.approx(recompute_map(source), abs=1e-12)
