"""Compare two runs of one model part by part: boxes, class scores, masks, keypoints and angles each on its own scale.

A detector's raw output mixes values of very different sizes in one tensor: box coordinates in pixels (hundreds),
class scores in 0..1 (often ~1e-4 before training), mask coefficients, keypoints in pixels with visibilities in 0..1,
angles in radians. One bound taken from the whole tensor's largest value is set by the boxes, and it cannot see the
scores: an export whose class rows were all zero would pass it. So the output is cut into its parts, as the model's
head lays them out, and each part is judged against its own magnitude::

    max|actual_part - expected_part| <= atol + rel * max|expected_part|

The layout comes from the head (``layout_of``): Ultralytics' ``Detect`` family (boxes, then ``nc`` class scores, then
the task's rows: ``Segment``'s mask coefficients and its second output, the mask prototypes; ``Pose``'s keypoint
coordinates and visibilities; ``OBB``'s angles), in both the anchor layout ``(batch, 4 + nc + extra, anchors)`` and
the end-to-end layout ``(batch, max_det, 6 + extra)`` (boxes, score, class index, extra) of YOLO26-style exports;
``Classify``'s probabilities; and, for any other head (a depth map, a semantic head, a user's own), each output tensor
as one part. A head that subclasses one of these (a user's ``Detect`` subclass) gets its parent's layout.

Used by ``detect --runtime auto`` to verify each export it makes (``apps.detection.runtime_choice``), and by the test
suite for every comparison of whole-model outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX_ROWS = 4  # x, y, w, h (or x1, y1, x2, y2) in the anchor layout, before the class scores
END_TO_END_ROWS = 6  # x1, y1, x2, y2, score, class index in the end-to-end layout, before the task's columns


@dataclass(frozen=True)
class OutputLayout:
    """Where each part sits in a head's outputs.

    ``kind`` is ``detect`` (the Detect family), ``classify`` or ``whole`` (each output tensor is one part). For
    ``detect``: ``nc`` class scores follow the box rows, then ``extras``: named groups of row offsets counted from the
    end of the class scores; ``prototypes`` says the second output holds mask prototypes.
    """

    kind: str
    nc: int = 0
    extras: tuple[tuple[str, tuple[int, ...]], ...] = ()
    prototypes: bool = False

    @property
    def extra_rows(self) -> int:
        return sum(len(rows) for _, rows in self.extras)


@dataclass(frozen=True)
class PartDifference:
    """How far one part of two outputs is apart, against the bound its own magnitude gives."""

    name: str
    diff: float
    magnitude: float
    bound: float
    problem: str = ""  # a shape or output-count mismatch: no numbers to compare

    @property
    def ok(self) -> bool:
        return not self.problem and self.diff <= self.bound

    def __str__(self) -> str:
        if self.problem:
            return f"{self.name}: {self.problem}"
        bound = f"bound {self.bound:.3g} at magnitude {self.magnitude:.3g}"
        return f"{self.name}: max abs difference {self.diff:.3g} ({bound})"


def head_of(model):
    """The last module of an Ultralytics model (its head), through a ``YOLO`` wrapper or an ``AutoBackend``."""
    from torch import nn

    seen = 0
    while not isinstance(getattr(model, "model", None), nn.Sequential) and hasattr(model, "model") and seen < 4:
        model, seen = model.model, seen + 1
    layers = getattr(model, "model", None)
    if isinstance(layers, nn.Sequential) and len(layers):
        return layers[-1]
    return model


def layout_of(model) -> OutputLayout:
    """The output layout of ``model``'s head (a ``YOLO``, a ``DetectionModel`` and the like, or the head itself)."""
    from ultralytics.nn.modules import OBB, Classify, Detect, Pose, Segment

    if isinstance(model, OutputLayout):
        return model
    head = head_of(model)
    if isinstance(head, Classify):
        return OutputLayout("classify")
    if not isinstance(head, Detect):
        return OutputLayout("whole")
    extras: tuple[tuple[str, tuple[int, ...]], ...] = ()
    if isinstance(head, Segment):
        extras = (("mask coefficients", tuple(range(head.nm))),)
    elif isinstance(head, Pose):
        count, dims = head.kpt_shape
        rows = range(count * dims)
        extras = (("keypoints", tuple(r for r in rows if r % dims < 2)),)
        if dims == 3:
            extras += (("keypoint visibilities", tuple(r for r in rows if r % dims == 2)),)
    elif isinstance(head, OBB):
        extras = (("angles", tuple(range(head.ne))),)
    return OutputLayout("detect", nc=int(head.nc), extras=extras, prototypes=isinstance(head, Segment))


def prediction_arrays(outputs) -> list[np.ndarray]:
    """The prediction tensors of a model or runtime output, flattened, as float64 arrays.

    Nested tuples and lists are flattened in order; dictionaries (the raw training-form predictions an eager
    Ultralytics model returns beside its decoded ones) are left out.
    """
    if isinstance(outputs, dict):
        return []
    if isinstance(outputs, (list, tuple)):
        return [array for item in outputs for array in prediction_arrays(item)]
    if hasattr(outputs, "detach"):
        outputs = outputs.detach().float().cpu().numpy()
    return [np.asarray(outputs, dtype=np.float64)]


def output_parts(layout: OutputLayout, outputs) -> dict[str, np.ndarray]:
    """Cut ``outputs`` (a model's or runtime's raw output) into the named parts of ``layout``.

    Raises ``ValueError`` where the outputs do not have the layout's shape (naming the shape).
    """
    arrays = prediction_arrays(outputs)
    if not arrays:
        raise ValueError("no prediction tensor in the outputs")
    if layout.kind == "whole":
        return {f"output {i}" if len(arrays) > 1 else "output": a for i, a in enumerate(arrays)}
    if layout.kind == "classify":
        return {"class probabilities": arrays[0]}
    predictions = arrays[0]
    groups = [("boxes", tuple(range(BOX_ROWS))), ("class scores", tuple(range(BOX_ROWS, BOX_ROWS + layout.nc)))]
    anchor_rows = BOX_ROWS + layout.nc + layout.extra_rows
    if predictions.ndim == 3 and predictions.shape[1] == anchor_rows:
        axis, first_extra = 1, BOX_ROWS + layout.nc
    elif predictions.ndim == 3 and predictions.shape[2] == END_TO_END_ROWS + layout.extra_rows:
        axis, first_extra = 2, END_TO_END_ROWS
        groups = [("boxes", tuple(range(4))), ("scores", (4,)), ("class indices", (5,))]
    else:
        raise ValueError(
            f"predictions of shape {tuple(predictions.shape)} fit neither (batch, {anchor_rows}, anchors) nor "
            f"(batch, detections, {END_TO_END_ROWS + layout.extra_rows})"
        )
    groups += [(name, tuple(first_extra + r for r in rows)) for name, rows in layout.extras]
    parts = {name: np.take(predictions, rows, axis=axis) for name, rows in groups}
    if layout.prototypes:
        if len(arrays) < 2:
            raise ValueError("no mask prototypes: the head's second output is missing")
        parts["mask prototypes"] = arrays[1]
    return parts


def compare_outputs(actual, expected, layout: OutputLayout, rel: float = 1e-4, atol: float = 1e-6):
    """Each part of ``actual`` against the same part of ``expected``; a list of ``PartDifference``, one per part.

    ``rel`` scales with each part's own largest magnitude; ``atol`` is the floor for parts that are (nearly) zero.
    A part whose shapes differ, or outputs that do not have the layout, give a difference that is not ``ok``.
    """
    try:
        wanted = output_parts(layout, expected)
    except ValueError as e:
        raise ValueError(f"the reference outputs: {e}") from e
    try:
        got = output_parts(layout, actual)
    except ValueError as e:
        return [PartDifference("outputs", float("inf"), 0.0, 0.0, problem=str(e))]
    differences = []
    for name, e in wanted.items():
        a = got.get(name)
        if a is None:
            differences.append(PartDifference(name, float("inf"), 0.0, 0.0, problem="missing"))
        elif a.shape != e.shape:
            differences.append(PartDifference(name, float("inf"), 0.0, 0.0, problem=f"shape {a.shape} != {e.shape}"))
        else:
            magnitude = float(np.abs(e).max()) if e.size else 0.0
            diff = float(np.abs(a - e).max()) if e.size else 0.0
            differences.append(PartDifference(name, diff, magnitude, atol + rel * magnitude))
    return differences


def worst_ratio(differences) -> float:
    """The largest difference over its bound among ``differences`` (inf for a mismatch)."""

    def ratio(d: PartDifference) -> float:
        if d.problem:
            return float("inf")
        return d.diff / d.bound if d.bound else (0.0 if d.diff == 0 else float("inf"))

    return max(map(ratio, differences), default=0.0)
