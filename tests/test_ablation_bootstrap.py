"""The paired bootstrap on hand-made per-image records: Ultralytics' AP reproduced, and verdicts that behave.

Tolerances: ``WeightedAP`` sums the same per-segment terms as ``np.interp`` + ``trapezoid`` in another order, so
it agrees with ``ap_per_class`` to a few ulp of values <= 1 (1e-12 leaves three orders of magnitude of room and is
still far below any difference a report prints, 0.01 pt = 1e-4).
"""

from __future__ import annotations

import numpy as np
import pytest
from ablation_fakes import IOUV, make_records
from ultralytics.utils.metrics import ap_per_class

from yolo_fasternet.apps.ablation.bootstrap import Bootstrap, WeightedAP
from yolo_fasternet.apps.ablation.records import Records


def ultralytics_map(r: Records, images: np.ndarray | None = None) -> tuple[float, float]:
    """(mAP50, mAP50-95) by Ultralytics' ap_per_class over the given images (default all), in record order."""
    keep = np.ones(r.n_images, bool) if images is None else np.isin(np.arange(r.n_images), images)
    p, t = keep[r.pred_image], keep[r.target_image]
    ap = ap_per_class(r.tp[p], r.conf[p], r.pred_cls[p], r.target_cls[t])[5]
    return float(ap[:, 0].mean()), float(ap.mean())


def perfect(r: Records) -> Records:
    """A detector that finds every target of ``r`` at every IoU threshold, sure of itself, and nothing else."""
    n = len(r.target_cls)
    return Records(r.images, r.target_image, np.ones((n, len(IOUV)), bool), np.full(n, 0.9), r.target_cls,
                   r.target_image, r.target_cls, IOUV)  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_ap_with_every_image_once_is_ultralytics_ap(seed):
    r = make_records(seed, n_images=48, n_classes=5)
    assert WeightedAP(r)() == pytest.approx(ultralytics_map(r), abs=1e-12)


def test_weighted_ap_on_a_subset_of_images_is_ultralytics_ap_on_that_subset():
    r = make_records(3, n_images=40)
    rng = np.random.default_rng(0)
    for _ in range(5):
        chosen = rng.choice(r.n_images, 25, replace=False)
        weights = np.isin(np.arange(r.n_images), chosen).astype(float)
        assert WeightedAP(r)(weights) == pytest.approx(ultralytics_map(r, chosen), abs=1e-12)


def test_both_forms_of_ultralytics_curve_end_are_reproduced():
    """8.3 ends each curve with a line to (recall 1, precision 0), 8.4 with a drop to 0 at the last recall."""
    r = make_records(4, n_images=30)
    a, b = WeightedAP(r, drop_to_zero=True)(), WeightedAP(r, drop_to_zero=False)()
    assert a[1] < b[1]  # the straight line to recall 1 adds area
    assert WeightedAP(r)() == pytest.approx(ultralytics_map(r), abs=1e-12)  # the installed version's form


def test_a_model_better_on_every_image_is_better_with_certainty():
    base = {s: make_records(10 + s, n_images=40) for s in (0, 1)}
    runs = {"base": base, "best": {s: perfect(r) for s, r in base.items()}}
    c = Bootstrap(runs, resamples=300).compare("best", "base")
    for metric in ("mAP50", "mAP50-95"):
        assert c[metric].verdict == "better" and c[metric].p_better == 1.0 and c[metric].delta.low > 0
    assert c["mAP50-95"].seeds == 2


def test_identical_models_differ_by_nothing_and_are_not_separable():
    runs = {name: {s: make_records(20 + s, n_images=40) for s in (0, 1)} for name in ("a", "b")}
    c = Bootstrap(runs, resamples=300).compare("b", "a")["mAP50-95"]
    assert (c.delta.value, c.delta.low, c.delta.high) == (0.0, 0.0, 0.0)
    assert c.verdict == "not separable" and c.p_better == 0.0


def test_swapping_model_and_baseline_mirrors_the_interval():
    runs = {
        "a": {s: make_records(30 + s, n_images=40, skill=0.55) for s in (0, 1, 2)},
        "b": {s: make_records(40 + s, n_images=40, skill=0.6) for s in (0, 1, 2)},
    }
    boot = Bootstrap(runs, resamples=400)
    ab, ba = boot.compare("a", "b")["mAP50-95"], boot.compare("b", "a")["mAP50-95"]
    assert ab.delta.value == pytest.approx(-ba.delta.value, abs=1e-12)
    assert (ab.delta.low, ab.delta.high) == pytest.approx((-ba.delta.high, -ba.delta.low), abs=1e-12)


def test_the_bootstrap_is_reproducible_for_a_seed_and_moves_with_another():
    runs = {m: {s: make_records(50 + 10 * i + s, n_images=30, skill=0.5 + 0.05 * i) for s in (0, 1)}
            for i, m in enumerate(("a", "b"))}  # fmt: skip
    first = Bootstrap(runs, resamples=300, bootstrap_seed=7).compare("b", "a")["mAP50-95"]
    again = Bootstrap(runs, resamples=300, bootstrap_seed=7).compare("b", "a")["mAP50-95"]
    other = Bootstrap(runs, resamples=300, bootstrap_seed=8).compare("b", "a")["mAP50-95"]
    assert first == again
    assert (other.delta.low, other.delta.high) != (first.delta.low, first.delta.high)
    assert other.delta.value == first.delta.value  # the full-data difference does not depend on the draws


def test_the_interval_narrows_as_images_are_added():
    def width(n_images):
        runs = {m: {s: make_records(70 + 10 * i + s, n_images=n_images, skill=0.5 + 0.05 * i) for s in (0, 1)}
                for i, m in enumerate(("a", "b"))}  # fmt: skip
        d = Bootstrap(runs, resamples=300).compare("b", "a")["mAP50-95"].delta
        return d.high - d.low

    assert width(160) < 0.75 * width(20)  # ~1/sqrt(8) of the image part; the seed part does not shrink


def test_one_seed_gives_an_interval_over_images_only():
    runs = {"a": {0: make_records(90, n_images=40, skill=0.4)}, "b": {0: make_records(91, n_images=40, skill=0.8)}}
    c = Bootstrap(runs, resamples=300).compare("b", "a")["mAP50-95"]
    assert c.seeds == 1 and c.delta.low < c.delta.value < c.delta.high
    assert c.verdict == "better"


def test_runs_on_different_images_cannot_be_paired():
    runs = {"a": {0: make_records(1, n_images=10)}, "b": {0: make_records(1, n_images=11)}}
    with pytest.raises(ValueError, match="validated on different images"):
        Bootstrap(runs, resamples=300)
