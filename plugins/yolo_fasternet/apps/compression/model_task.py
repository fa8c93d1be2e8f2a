"""The task of a loaded Ultralytics model, read from its class."""

from __future__ import annotations


def model_task(model) -> str:
    """``detect``, ``segment``, ``pose``, ``obb`` or ``classify`` from the model's class (else the class name).

    A checkpoint's recorded task can be missing or Ultralytics' default (``detect``), so the class decides.
    """
    from ultralytics.nn import tasks

    for name, task in (("SegmentationModel", "segment"), ("PoseModel", "pose"), ("OBBModel", "obb")):
        if isinstance(model, getattr(tasks, name)):
            return task
    if isinstance(model, tasks.DetectionModel):
        return "detect"
    return "classify" if isinstance(model, tasks.ClassificationModel) else type(model).__name__
