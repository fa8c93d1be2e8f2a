"""Per-image evaluation records: what Ultralytics' validator computed for each validation image, kept with the run.

For detection-family tasks (detect, segment, pose, obb) the validator matches each image's predictions to its
targets and keeps, per image, the IoU-threshold hit vector of every prediction (``tp``: one column per IoU
threshold 0.50:0.05:0.95), its confidence and class, and the image's target classes; mAP50 and mAP50-95 are
``ap_per_class`` over all of them. ``ValidationRecorder`` copies these per-image entries as the validator makes them,
and ``save_records`` writes them as one compact ``records.npz`` per run (a few hundred kB for 128 images):

    images        (N,)  str     image paths relative to their common folder, in validation order
    pred_image    (P,)  int32   the image index of every prediction
    tp            (P, T) bool   hit at each IoU threshold (box IoU; rotated-box IoU for obb)
    conf          (P,)  float64 confidence (the validator's float32 values, widened without change)
    pred_cls      (P,)  float64 predicted class
    target_image  (M,)  int32   the image index of every target
    target_cls    (M,)  float64 target class
    iouv          (T,)  float64 the IoU thresholds
    tp_m / tp_p   (P, T) bool   segment / pose tasks: the mask / keypoint hit vectors as well

Predictions are stored in the validator's own order, so ``recompute_map`` (Ultralytics' ``ap_per_class`` over all
images) gives exactly the mAP50 and mAP50-95 that the validator reported for the run. For segment and pose the
box metrics (``metrics/mAP50(B)``) are the ones recomputed and bootstrapped; obb's (B) metrics are its rotated-box
metrics. Classification validators keep no such per-image matches and no record is written (the ablation compares
detection-family models only; see ``preflight`` in the command).

Works with Ultralytics 8.3.0 to 8.4.x: older versions keep the per-image entries in ``validator.stats`` and skip
images with neither predictions nor targets (recorded here as empty images); newer ones keep them in
``validator.metrics.stats``, one per image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RECORDS = "records.npz"  # the file name in a run folder
HIT_KEYS = ("tp", "tp_m", "tp_p")  # box, mask, keypoint hit vectors, as the validator names them


class RecordError(RuntimeError):
    """Per-image records could not be taken or read; the message names the file or the validator's state."""


def _numpy(value) -> np.ndarray:
    return value.cpu().numpy() if hasattr(value, "cpu") else np.asarray(value)


def _stats_lists(validator) -> dict | None:
    """The validator's per-image stat lists (8.4: ``metrics.stats``; 8.3: ``stats``), or None (classification)."""
    for owner in (getattr(validator, "metrics", None), validator):
        stats = getattr(owner, "stats", None)
        if isinstance(stats, dict) and isinstance(stats.get("tp"), list):
            return stats
    return None


def _predictions_in(pred) -> int:
    """Number of predictions of one image as ``postprocess`` returned them (8.4: a dict; 8.3: an (n, 6+) tensor)."""
    return len(pred["cls"]) if isinstance(pred, dict) else len(pred)


class ValidationRecorder:
    """Ultralytics callbacks that copy the per-image entries of the most recent validation.

    ``on_val_start`` wraps the validator's ``update_metrics`` (once per validator) and starts a new record; every
    validation of a training (the final one on ``best.pt`` last) replaces the one before.
    """

    def __init__(self):
        self.images: list[str] = []
        self.entries: list[dict[str, np.ndarray]] = []
        self.iouv: np.ndarray | None = None

    def on_val_start(self, validator) -> None:
        self.images, self.entries = [], []
        if getattr(validator, "_per_image_recorder", None) is self:
            return
        original = validator.update_metrics

        def update_metrics(preds, batch):
            stats = _stats_lists(validator)
            before = len(stats["tp"]) if stats is not None else 0
            original(preds, batch)
            if stats is None:
                stats = _stats_lists(validator)
                if stats is None:  # classification: nothing per image to match
                    return
            self._take(validator, stats, before, preds, batch)

        validator.update_metrics = update_metrics
        validator._per_image_recorder = self

    def _take(self, validator, stats: dict, before: int, preds, batch) -> None:
        files = list(batch["im_file"])
        new = len(stats["tp"]) - before
        counts = np.bincount(_numpy(batch["batch_idx"]).astype(int), minlength=len(files))
        if new == len(files):
            kept = list(range(len(files)))
        else:  # 8.3: images with neither predictions nor targets leave no entry
            kept = [i for i, p in enumerate(preds) if _predictions_in(p) or counts[i]]
            if len(kept) != new:
                raise RecordError(f"validator added {new} per-image entries for a batch of {len(files)} images")
        empty = {"tp": np.zeros((0, 0), bool), "conf": np.zeros(0), "pred_cls": np.zeros(0), "target_cls": np.zeros(0)}
        taken = {i: {k: _numpy(v[before + j]) for k, v in stats.items()} for j, i in enumerate(kept)}
        for i, name in enumerate(files):
            self.images.append(name)
            self.entries.append(taken.get(i, empty))
        if self.iouv is None and getattr(validator, "iouv", None) is not None:
            self.iouv = _numpy(validator.iouv).astype(np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The record of the most recent validation as the arrays ``save_records`` writes."""
        if not self.images:
            raise RecordError("no validation was recorded")
        n_iou = len(self.iouv) if self.iouv is not None else 10
        root = os.path.commonpath([os.path.dirname(f) for f in self.images])
        out: dict[str, np.ndarray] = {"images": np.array([os.path.relpath(f, root) for f in self.images])}
        pred_image, target_image = [], []
        hits: dict[str, list] = {k: [] for k in HIT_KEYS if any(k in e for e in self.entries)}
        conf, pred_cls, target_cls = [], [], []
        for i, e in enumerate(self.entries):
            n = len(e["conf"])
            pred_image.append(np.full(n, i, np.int32))
            conf.append(e["conf"].astype(np.float64))
            pred_cls.append(e["pred_cls"].astype(np.float64))
            for k in hits:
                hits[k].append(e.get(k, np.zeros((n, n_iou), bool)).reshape(n, n_iou).astype(bool))
            target_cls.append(e["target_cls"].astype(np.float64).reshape(-1))
            target_image.append(np.full(len(target_cls[-1]), i, np.int32))
        out.update(pred_image=np.concatenate(pred_image), conf=np.concatenate(conf), pred_cls=np.concatenate(pred_cls))
        out.update({k: np.concatenate(v) for k, v in hits.items()})
        out.update(target_image=np.concatenate(target_image), target_cls=np.concatenate(target_cls))
        out["iouv"] = self.iouv if self.iouv is not None else np.linspace(0.5, 0.95, n_iou)
        return out


@dataclass(frozen=True)
class Records:
    """One run's per-image records (the arrays of ``records.npz``)."""

    images: np.ndarray
    pred_image: np.ndarray
    tp: np.ndarray
    conf: np.ndarray
    pred_cls: np.ndarray
    target_image: np.ndarray
    target_cls: np.ndarray
    iouv: np.ndarray

    @property
    def n_images(self) -> int:
        return len(self.images)


def save_records(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the record compressed, via a temporary file and a rename (never a half-written records.npz)."""
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_records(path: Path) -> Records:
    """Read ``records.npz``; a file that is not a record is a ``RecordError`` naming it."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return Records(**{k: f[k] for k in Records.__dataclass_fields__})
    except (OSError, ValueError, KeyError) as e:
        raise RecordError(f"{path}: not a per-image evaluation record ({str(e).splitlines()[0]})") from e


def recompute_map(records: Records) -> dict[str, float]:
    """mAP50 and mAP50-95 over all images with Ultralytics' own ``ap_per_class``, as its validator computes them."""
    from ultralytics.utils.metrics import ap_per_class

    if not records.tp.any():  # Ultralytics 8.3 leaves all metrics at 0 then
        return {"mAP50": 0.0, "mAP50-95": 0.0}
    ap = ap_per_class(records.tp, records.conf, records.pred_cls, records.target_cls)[5]
    return {"mAP50": float(ap[:, 0].mean()) if len(ap) else 0.0, "mAP50-95": float(ap.mean()) if len(ap) else 0.0}
