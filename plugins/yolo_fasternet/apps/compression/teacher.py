"""Checks of a distillation teacher (``distill_model=``, native in Ultralytics 8.4.190) before any training work.

Ultralytics itself only finds a missing teacher, or one of another task or class count, once the dataset is cached
and the student built (a traceback from ``DistillationModel``, or a silently mismatched head); these checks refuse
them in one line first. The native loss is the only one: a score-weighted L2 between projected student features and
the teacher's at the layers feeding the Detect-family head (``ultralytics/nn/distill_model.py``).
"""

from __future__ import annotations

from pathlib import Path

from ..command_errors import CommandError, UsageError

# The first Ultralytics release this project tested with distill_model= (8.3.0 has no such argument).
DISTILLATION_ULTRALYTICS = "8.4.190"
DISTILLATION_KEYS = ("distill_model", "dis")


def missing_distillation(key: str) -> str:
    """The one-line reason ``key`` is refused on an Ultralytics without knowledge distillation."""
    from ultralytics import __version__

    return (
        f"argument '{key}' (knowledge distillation) needs Ultralytics {DISTILLATION_ULTRALYTICS} or newer; "
        f"this is {__version__}"
    )


def check_teacher(teacher, student_task: str):
    """Refuse a teacher that is missing, not a checkpoint, or of another task than the student; return its model."""
    from ..preflight import load_model
    from .model_task import model_task

    name = str(teacher)
    if Path(name).suffix != ".pt":
        raise UsageError(f"distill_model={name}: give a trained .pt checkpoint as the teacher")
    if not Path(name).is_file():
        raise CommandError(f"distill_model={name}: no such file")
    model = load_model(name).model
    task = model_task(model)
    if task != student_task:
        raise CommandError(f"distill_model={name}: a {task} model; the student is a {student_task} model")
    return model


def check_teacher_classes(model, name: str, data: str) -> None:
    """Refuse a detection teacher whose class count differs from the dataset's (the student's, once trained)."""
    from ultralytics.data.utils import check_det_dataset

    classes = int(check_det_dataset(data, autodownload=False)["nc"])
    teacher_classes = int(getattr(model.model[-1], "nc", classes))  # the head's class count
    if teacher_classes != classes:
        raise CommandError(
            f"distill_model={name}: the teacher has {teacher_classes} classes, dataset {data} has {classes}; "
            "distillation needs a teacher trained on the same classes"
        )
