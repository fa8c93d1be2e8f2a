"""Hand-made per-image evaluation records for the ablation's tests: realistic in shape, made without training."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from yolo_fasternet.apps.ablation.records import Records

IOUV = np.linspace(0.5, 0.95, 10)


def make_records(
    seed: int, n_images: int = 64, n_classes: int = 4, skill: float = 0.6, background: int = 20
) -> Records:
    """Records of a detector of the given ``skill`` (0..1: how well its boxes fit and how sure it is of them).

    Each target gets up to two predictions of its class with an IoU drawn around ``skill`` (the first one, by
    confidence, with IoU >= t hits at threshold t: no target is matched twice), plus ``background`` low-confidence
    misses per image, as an NMS output at conf 0.001 has them.
    """
    rng = np.random.default_rng(seed)
    pred_image, tp, conf, pred_cls, target_image, target_cls = [], [], [], [], [], []
    for i in range(n_images):
        classes = rng.integers(0, n_classes, rng.integers(1, 6))
        target_image += [i] * len(classes)
        target_cls += list(classes)
        for c in classes:
            n = rng.integers(0, 3)
            ious = np.clip(rng.normal(skill + 0.25, 0.15, n), 0, 1)
            confs = np.clip(rng.normal(skill, 0.2, n), 0.001, 1)
            matched = np.zeros(len(IOUV), bool)
            for k in np.argsort(-confs):
                hits = (ious[k] >= IOUV) & ~matched
                matched |= hits
                pred_image.append(i), tp.append(hits), conf.append(confs[k]), pred_cls.append(c)
        for _ in range(background):
            pred_image.append(i), tp.append(np.zeros(len(IOUV), bool))
            conf.append(rng.uniform(0.001, 0.3)), pred_cls.append(rng.integers(0, n_classes))
    return Records(
        images=np.array([f"im{i:04d}.jpg" for i in range(n_images)]),
        pred_image=np.array(pred_image, np.int32),
        tp=np.array(tp, bool).reshape(-1, len(IOUV)),
        conf=np.array(conf, np.float64),
        pred_cls=np.array(pred_cls, np.float64),
        target_image=np.array(target_image, np.int32),
        target_cls=np.array(target_cls, np.float64),
        iouv=IOUV,
    )


def fresh_copy(dataset_yaml: Path, tmp_path: Path) -> Path:
    """A writable copy of a shared dataset folder without label caches (the shared folder is read-only)."""
    folder = shutil.copytree(dataset_yaml.parent, tmp_path / "data", ignore=shutil.ignore_patterns("*.cache"))
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    os.chmod(folder, 0o755)
    return folder / dataset_yaml.name
