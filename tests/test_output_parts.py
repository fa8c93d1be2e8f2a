"""The part-by-part output comparison sees every part: a zeroed score row, a shifted box, a wrong mask each fail it.

The outputs are real ones (small models of each task, made non-trivial with ``nontrivial_outputs``), and each planted
fault is one a broken export or fold would make. The old whole-tensor bound is shown blind to the zeroed scores, so
these tests pin why the comparison is cut into parts.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ultralytics import YOLO

from yolo_fasternet.integration.output_parts import (
    OutputLayout,
    compare_outputs,
    layout_of,
    output_parts,
    prediction_arrays,
    worst_ratio,
)

from conftest import assert_close_to_magnitude, assert_outputs_close, nontrivial_outputs

IMGSZ = 64


def _outputs(yaml_name: str):
    torch.manual_seed(0)
    yolo = YOLO(yaml_name, verbose=False)
    model = nontrivial_outputs(yolo.model).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0)))
    return model, [a.copy() for a in prediction_arrays(out)]


@pytest.fixture(scope="module")
def detect():
    return _outputs("yolov8n-fasternet.yaml")


def _failed(model, actual, expected) -> list[str]:
    return [d.name for d in compare_outputs(actual, expected, layout_of(model), rel=1e-5, atol=1e-4) if not d.ok]


def test_identical_outputs_pass_every_part(detect):
    model, expected = detect
    assert_outputs_close([a.copy() for a in expected], expected, model, what="same")


def test_zeroed_class_scores_fail(detect):
    model, expected = detect
    actual = [a.copy() for a in expected]
    actual[0][:, 4:] = 0.0
    assert _failed(model, actual, expected) == ["class scores"]


def test_one_zeroed_class_row_fails(detect):
    model, expected = detect
    actual = [a.copy() for a in expected]
    actual[0][:, 4 + 7] = 0.0
    assert _failed(model, actual, expected) == ["class scores"]


def test_scores_are_mid_range_after_nontrivial_outputs(detect):
    _, expected = detect
    scores = expected[0][:, 4:]
    assert 0.2 < scores.max() < 1.0 and scores.min() < 0.5, (scores.min(), scores.max())


def test_a_box_shifted_by_one_pixel_fails(detect):
    model, expected = detect
    actual = [a.copy() for a in expected]
    actual[0][0, 0, 5] += 1.0
    assert _failed(model, actual, expected) == ["boxes"]


def test_a_wrong_mask_prototype_or_coefficient_fails():
    model, expected = _outputs("yolov8n-fasternet-seg.yaml")
    layout = layout_of(model)
    assert list(output_parts(layout, expected)) == [
        "boxes",
        "class scores",
        "mask coefficients",
        "mask prototypes",
    ]
    prototypes = [a.copy() for a in expected]
    prototypes[1][0, 3] *= 0.9
    assert _failed(model, prototypes, expected) == ["mask prototypes"]
    coefficients = [a.copy() for a in expected]
    coefficients[0][0, 4 + layout.nc + 2] += 0.05 * np.abs(expected[0][0, 4 + layout.nc :]).max()
    assert _failed(model, coefficients, expected) == ["mask coefficients"]
    assert _failed(model, expected[:1], expected) == ["outputs"]  # the prototypes output is missing


def test_keypoints_and_visibilities_are_judged_apart():
    model, expected = _outputs("yolov8n-fasternet-pose.yaml")
    parts = output_parts(layout_of(model), expected)
    assert parts["keypoints"].shape[1] == 34 and parts["keypoint visibilities"].shape[1] == 17
    assert parts["keypoints"].max() > 10 * parts["keypoint visibilities"].max()  # pixels against 0..1
    actual = [a.copy() for a in expected]
    actual[0][0, 5 + 2] = 0.0  # the first keypoint's visibility (nc = 1)
    assert _failed(model, actual, expected) == ["keypoint visibilities"]


def test_a_wrong_angle_fails():
    model, expected = _outputs("yolov8n-fasternet-obb.yaml")
    actual = [a.copy() for a in expected]
    actual[0][0, -1, :3] += 0.01
    assert _failed(model, actual, expected) == ["angles"]


def test_classification_probabilities_are_one_part():
    model, expected = _outputs("yolov8n-fasternet-cls.yaml")
    actual = [a.copy() for a in expected]
    actual[0][0, np.argmax(actual[0][0])] *= 0.99
    assert _failed(model, actual, expected) == ["class probabilities"]


def test_end_to_end_layout_is_cut_into_box_score_and_class_columns():
    layout = OutputLayout("detect", nc=80, extras=(("angles", (0,)),))
    detections = np.random.default_rng(0).random((1, 300, 7))
    parts = output_parts(layout, detections)
    assert {k: v.shape for k, v in parts.items()} == {
        "boxes": (1, 300, 4),
        "scores": (1, 300, 1),
        "class indices": (1, 300, 1),
        "angles": (1, 300, 1),
    }
    with pytest.raises(ValueError, match=r"shape \(1, 300, 9\)"):
        output_parts(layout, np.zeros((1, 300, 9)))


def test_untrained_scores_zeroed_pass_the_whole_tensor_bound_and_fail_per_part():
    """Untrained scores are ~1e-4: one bound from the whole tensor (set by pixel boxes) cannot see them zeroed; the
    per-part bound that ``detect`` uses for exports can, and the test helper refuses to call such parts compared."""
    torch.manual_seed(0)
    model = YOLO("yolov8n-fasternet.yaml", verbose=False).model.eval()
    with torch.no_grad():
        (expected,) = prediction_arrays(model(torch.rand(1, 3, IMGSZ, IMGSZ)))
    zeroed = expected.copy()
    zeroed[:, 4:] = 0.0
    assert expected[:, 4:].max() < 1e-3
    assert_close_to_magnitude(zeroed, expected)  # the former comparison: blind
    assert [d.name for d in compare_outputs(zeroed, expected, layout_of(model)) if not d.ok] == ["class scores"]
    with pytest.raises(AssertionError, match="too small"):
        assert_outputs_close(expected, expected, model)


def test_mismatched_shapes_and_worst_ratio(detect):
    model, expected = detect
    differences = compare_outputs([expected[0][:, :, :-1]], expected, layout_of(model))
    assert not any(d.ok for d in differences) and worst_ratio(differences) == float("inf")
    same = compare_outputs(expected, expected, layout_of(model))
    assert worst_ratio(same) == 0.0


def test_outputs_of_an_unknown_head_are_compared_whole():
    layout = layout_of(torch.nn.Conv2d(3, 4, 1))
    assert layout.kind == "whole"
    a = np.ones((1, 4, 2, 2))
    assert [d.name for d in compare_outputs([a, a], [a, a], layout)] == ["output 0", "output 1"]
    assert not compare_outputs(a * 1.01, a, layout)[0].ok


def test_eager_outputs_of_a_copy_agree_with_the_model(detect):
    """The comparison reads eager Ultralytics outputs as they are (decoded predictions plus a dict it leaves out)."""
    model, expected = detect
    with torch.no_grad():
        again = copy.deepcopy(model)(torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0)))
    assert isinstance(again, tuple) and isinstance(again[1], dict)
    assert_outputs_close(again, expected, model, what="copy")
