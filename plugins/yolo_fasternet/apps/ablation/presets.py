"""Ablation presets: a dataset and a training recipe chosen so that the ablation answers its question in a budget.

``quick``: ranks accuracy on a laptop CPU. The hard mode of the synthetic dataset (six classes, clutter, occlusion,
small and large objects; generated, deterministic, cached) and a from-scratch recipe aimed at the baseline yolov8n
reaching mAP50-95 >= 0.30, with the yolov8n family x 2 seeds finishing within 30 minutes on a 2-core CPU, two runs
at a time (Ultralytics trains on ``cpu_count - 1`` threads, i.e. one thread per run on two cores). See
docs/ablations.md for what was measured.
``compress``: compression end to end with quick's dataset and recipe: yolov8s-fasternet trained, pruned and
fine-tuned; yolov8n-fasternet trained alone and with the trained yolov8s-fasternet of the same seed as its teacher.
Every value is an ordinary command-line argument: any argument given explicitly wins over the preset's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Preset:
    """What a preset fixes: the synthetic dataset's parameters and the ablation's arguments."""

    summary: str
    dataset: dict  # make_synthetic_dataset() keyword arguments
    models: tuple[str, ...]  # the baseline first
    seeds: tuple[int, ...]
    epochs: int
    imgsz: int
    batch: int
    jobs: int  # local runs at a time
    train: dict = field(default_factory=dict)  # further YOLO.train() arguments (explicit key=value ones win)
    prune: tuple[tuple[str, str], ...] = ()  # --prune SOURCE TARGET pairs (ablation/variants.py)
    distill: tuple[tuple[str, str], ...] = ()  # --distill STUDENT TEACHER pairs
    fine_tune_epochs: int | None = None  # a pruned variant's fine-tune (None: --epochs)

    def data_yaml(self) -> Path:
        """Generate the preset's dataset (or reuse the cached one) and return its YAML path."""
        from ..synthetic_data import make_synthetic_dataset

        return make_synthetic_dataset(**self.dataset)


PRESETS = {
    "quick": Preset(
        summary="yolov8n, -fasternet, -c2f-faster x 2 seeds on hard synthetic shapes, ~22 min on a 2-core CPU",
        dataset={"mode": "hard", "n_train": 512, "n_val": 128, "imgsz": 128, "seed": 0},
        # One family against its own baseline, so every paired difference answers "what does this FasterNet part do
        # to yolov8n": the backbone (fasternet) and the neck blocks (c2f-faster). Three models, not the seven of
        # DEFAULT_MODELS: the baseline needs ~45-50 epochs to pass mAP50-95 0.30 (45 epochs gave 0.293 and 0.317 for
        # seeds 0 and 1; 50 give 0.333 and 0.360), and 3 models x 2 seeds x 50 epochs is what fits in 30 minutes on
        # two cores (the committed run, docs/ablation/: 22 min 20 s); other models go by --models (docs/ablations.md).
        models=("yolov8n.yaml", "yolov8n-fasternet.yaml", "yolov8n-c2f-faster.yaml"),
        seeds=(0, 1),
        epochs=50,
        imgsz=128,
        batch=16,
        jobs=2,
        train={
            "optimizer": "AdamW",  # as the demo's synthetic recipe (apps/train.py): 'auto' ignores lr0
            "lr0": 0.004,
            "nbs": 16,  # = batch: one optimizer step per batch, not one per 64 images (few steps in a short run)
            "mosaic": 0.0,  # mosaic shrinks the objects and slows a short run down
            "scale": 0.25,  # Ultralytics' 0.5 shrinks small objects further; 40 epochs, seed 1: 0.209 -> 0.284
            "warmup_epochs": 1,
            "val": False,  # validate once, after the last epoch (Ultralytics always does): saves ~10% of the time
        },
    ),
}

# The partial-convolution family against the baseline, with quick's dataset and recipe (4 models x 2 seeds x 50 epochs).
# Not run yet: no timing and no committed result.
PRESETS["partial"] = replace(
    PRESETS["quick"],
    summary="yolov8n, -fasternet, -partialnet, -spconv x 2 seeds on hard synthetic shapes (quick's recipe)",
    models=("yolov8n.yaml", "yolov8n-fasternet.yaml", "yolov8n-partialnet.yaml", "yolov8n-spconv.yaml"),
)

# Compression end to end, with quick's dataset and recipe: train yolov8s-fasternet, prune each seed's run (ratio 0.6)
# and fine-tune it; train yolov8n-fasternet alone and with that yolov8s-fasternet run as its teacher. 2 seeds x
# (2 models x 50 epochs + a 20-epoch fine-tune + a 50-epoch distillation). Ratio 0.6: `yolo-fasternet prune` of an
# untrained yolov8s-fasternet (6 classes) at 128 px measured 0.67x the CPU latency (0.47x GFLOPs, 0.50x params; one
# run on a loaded 2-core machine), near a 0.6x latency target. Run 2026-12-08: 53 min on a quiet 2-core CPU
# (docs/ablation-compress/).
PRESETS["compress"] = replace(
    PRESETS["quick"],
    summary="yolov8s-fasternet pruned (ratio 0.6) and fine-tuned 20 epochs; yolov8n-fasternet with and without a "
    "yolov8s-fasternet teacher; 2 seeds, quick's data and recipe",
    models=("yolov8s-fasternet.yaml", "yolov8n-fasternet.yaml"),
    prune=(("yolov8s-fasternet.yaml", "0.6"),),
    distill=(("yolov8n-fasternet.yaml", "yolov8s-fasternet.yaml"),),
    fine_tune_epochs=20,
)
