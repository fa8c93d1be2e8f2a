"""A two-level paired bootstrap of mAP differences over seeds and validation images, from per-image records.

Two sources of uncertainty separate a model from the baseline: the training seed, and which images the validation
set happens to contain. One resample draws both, hierarchically (as rliable and Bouthillier et al. 2021 recommend):

1. draw ``n`` seeds with replacement from the ``n`` seeds both models ran (a drawn seed brings both models' runs of
   that seed: the pairs stay pairs);
2. for each drawn seed, draw the validation images with replacement (``N`` of ``N``); the same image indices serve
   both models, since they were validated on the same images;
3. recompute mAP50 and mAP50-95 of both models on each drawn (seed, images), average over the drawn seeds, and take
   the difference model - baseline.

From ``resamples`` such differences: the 95% percentile interval, P(Δ > 0) (the share of resamples where the model
is ahead) and the verdict: *better* where the interval lies above 0, *worse* below, else *not separable*. With one
seed, step 1 is void: the interval covers image sampling only. The point estimate Δ is the difference on the full
validation set, averaged over the common seeds (the numbers the validator reported).

An image drawn k times counts k times: as weights on Ultralytics' per-class precision/recall curves. ``WeightedAP``
reproduces ``ap_per_class`` (same sort order, same precision envelope, same 101-point interpolation, same sentinel
points, probed from the installed Ultralytics) with image weights, and with all weights 1 gives exactly its
numbers. It is fast because the curves are sorted once per run and runs of consecutive predictions that hit at no
IoU threshold are merged into their last one (which leaves every AP unchanged: inside such a run recall stays put
and precision falls, so only its last point can be read by the interpolation). Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .records import Records

AP_X = np.linspace(0, 1, 101)  # COCO's 101 recall points, as Ultralytics interpolates


def _sentinels_drop_to_zero() -> bool:
    """Whether the installed Ultralytics' ``compute_ap`` ends each curve with a drop to precision 0 at the last
    recall (newer 8.4) rather than a straight line to (recall 1, precision 0) (8.3). Probed on one point."""
    from ultralytics.utils.metrics import compute_ap

    return float(compute_ap(np.array([0.5]), np.array([1.0]))[0]) < 0.6  # 0.5 with the drop, 0.75 without


class WeightedAP:
    """mAP50 and mAP50-95 of one run's records for many image weightings at once (the counts of resamples)."""

    def __init__(self, records: Records, drop_to_zero: bool | None = None):
        self.drop_to_zero = _sentinels_drop_to_zero() if drop_to_zero is None else drop_to_zero
        self.n_images = records.n_images
        order = np.argsort(-records.conf)  # ap_per_class's order (same sort, same ties), then grouped by class
        order = order[np.argsort(records.pred_cls[order], kind="stable")]
        tp, cls, image = records.tp[order], records.pred_cls[order], records.pred_image[order]
        hit = tp.any(1)
        # a miss followed by another miss of its class merges into it; every other prediction is a point of its own
        last = np.ones(len(order), bool)
        last[:-1] = ~(~hit[:-1] & ~hit[1:] & (cls[:-1] == cls[1:]))
        point = np.cumsum(np.r_[0, last[:-1]])[: len(order)]  # the merged point each prediction counts in
        n_points = int(last.sum())
        # (points, images): how many predictions of each image a point stands for; weights -> point weights by matmul
        self.members = np.zeros((n_points, self.n_images))
        np.add.at(self.members, (point, image), 1.0)
        self.point_tp = tp[last].T.astype(np.float64)  # (thresholds, points)
        point_cls = cls[last]
        self.classes = np.unique(records.target_cls)
        self.segments = [np.flatnonzero(point_cls == c) for c in self.classes]
        self.targets = np.zeros((len(self.classes), self.n_images))  # (classes, images): target counts
        np.add.at(self.targets, (np.searchsorted(self.classes, records.target_cls), records.target_image), 1.0)

    def __call__(self, weights: np.ndarray | None = None) -> np.ndarray:
        """(mAP50, mAP50-95) for each row of ``weights`` ((R, images): copies of each image; None: each once).

        Returns (R, 2), or (2,) for a single 1-D weighting.
        """
        single = weights is None or np.ndim(weights) == 1
        weights = np.ones((1, self.n_images)) if weights is None else np.atleast_2d(weights).astype(np.float64)
        point_w = weights @ self.members.T  # (R, points)
        n_targets = weights @ self.targets.T  # (R, classes)
        n_iou = self.point_tp.shape[0]
        ap = np.zeros((len(weights), len(self.classes), n_iou))
        for ci, seg in enumerate(self.segments):
            if len(seg):
                ap[:, ci] = self._class_ap(point_w[:, seg], self.point_tp[:, seg], n_targets[:, ci])
        present = n_targets > 0
        ap[~present] = 0.0
        n_present = present.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.stack([ap[:, :, 0].sum(1) / n_present, ap.sum((1, 2)) / (n_present * n_iou)], 1)
        out[n_present == 0] = 0.0
        return out[0] if single else out

    def _class_ap(self, w: np.ndarray, tp: np.ndarray, n_targets: np.ndarray) -> np.ndarray:
        """(R, thresholds) AP of one class: ``w`` (R, points) point weights, ``tp`` (thresholds, points) hits."""
        r, (n, length) = len(w), tp.shape
        tail = 2 if self.drop_to_zero else 1  # sentinel points after the curve
        mrec = np.empty((r, n, length + 1 + tail))
        mpre = np.empty_like(mrec)
        seen = np.cumsum(w, 1)[:, None, :]  # predictions so far (tp + fp)
        unseen = seen == 0  # leading points of weight 0 (images not drawn): precision 1, like the sentinel
        tpc = np.multiply(w[:, None, :], tp[None])
        np.cumsum(tpc, 2, out=tpc)
        mrec[:, :, 0], mpre[:, :, 0] = 0.0, 1.0
        np.divide(tpc, n_targets[:, None, None] + 1e-16, out=mrec[:, :, 1 : length + 1])
        np.divide(tpc + unseen, seen + unseen, out=mpre[:, :, 1 : length + 1])  # exact: adds 0 where seen > 0
        if self.drop_to_zero:  # (last recall, 0), then (1, 0)
            mrec[:, :, -2], mpre[:, :, -2] = mrec[:, :, length], 0.0
        mrec[:, :, -1], mpre[:, :, -1] = 1.0, 0.0
        mpre = np.flip(np.maximum.accumulate(np.flip(mpre, 2), 2), 2)  # the precision envelope
        ap = _area_under_columns(mrec.reshape(r * n, -1), mpre.reshape(r * n, -1)).reshape(r, n)
        ap[w.sum(1) == 0] = 0.0  # no prediction of this class drawn: ap_per_class skips the class (AP 0)
        return ap


def _trapezoid_weights() -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums of the trapezoid rule's weights over AP_X, and of weight * x (leading 0: sums over q < i)."""
    c = np.zeros(len(AP_X))
    c[1:] += np.diff(AP_X) / 2
    c[:-1] += np.diff(AP_X) / 2
    return np.r_[0.0, np.cumsum(c)], np.r_[0.0, np.cumsum(c * AP_X)]


_PREFIX_C, _PREFIX_CX = _trapezoid_weights()


def _area_under_columns(xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``trapezoid(np.interp(AP_X, xp[i], fp[i]), AP_X)`` for every row ``i`` at once (rows: xp non-decreasing from
    0 to 1), summed segment by segment instead of point by point: equal up to floating-point summation order.

    np.interp gives each x the line from the last point j with xp[j] <= x towards point j + 1 (exactly fp[j] at
    x == xp[j], fp[-1] at x == 1). So segment k carries the x in [xp[k], xp[k + 1]), and its share of the trapezoid
    sum is fp[k] * C + slope * (CX - xp[k] * C), with C and CX the sums of the trapezoid weights (and weight * x) of
    those x, read from prefix sums.
    """
    first = np.searchsorted(AP_X, xp, side="left")  # (rows, L): index of the first x at or above each point
    prefix_c, prefix_cx = _PREFIX_C[first], _PREFIX_CX[first]
    c = prefix_c[:, 1:] - prefix_c[:, :-1]
    cx = prefix_cx[:, 1:] - prefix_cx[:, :-1]
    x0, x1, f0, f1 = xp[:, :-1], xp[:, 1:], fp[:, :-1], fp[:, 1:]
    # a segment without x adds nothing (c = cx = 0); a vertical one never holds an x, its slope is left at 0
    slope = np.divide(f1 - f0, x1 - x0, out=np.zeros_like(c), where=x1 > x0)
    area = (f0 * c + slope * (cx - x0 * c)).sum(1)
    return area + fp[:, -1] * (_PREFIX_C[-1] - _PREFIX_C[first[:, -1]])  # the x at the last point (x == 1)


@dataclass(frozen=True)
class Interval:
    """A bootstrap estimate: the full-data value, the 95% percentile interval of the resampled values."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """model - baseline on one metric: Δ on the full data, its 95% interval, P(Δ > 0), and how many seeds."""

    delta: Interval
    p_better: float
    seeds: int
    resamples: int

    @property
    def verdict(self) -> str:
        if self.delta.low > 0:
            return "better"
        if self.delta.high < 0:
            return "worse"
        return "not separable"


METRICS = ("mAP50", "mAP50-95")
CHUNK = 200  # resamples evaluated together (their arrays: CHUNK x points of a class x 10 thresholds)


@dataclass
class Draws:
    """The random part of every resample, for ``n_seeds`` seeds and ``n_images`` images: seed slots and counts."""

    seed_index: np.ndarray  # (resamples, n_seeds) which of the seeds each slot draws
    image_counts: np.ndarray  # (resamples, n_seeds, n_images) how often each image is drawn in that slot

    @classmethod
    def make(cls, n_seeds: int, n_images: int, resamples: int, bootstrap_seed: int) -> Draws:
        """Deterministic for (``bootstrap_seed``, sizes): every comparison of the same shape sees the same draws."""
        rng = np.random.default_rng([bootstrap_seed, n_seeds, n_images])
        if n_seeds > 1:
            seed_index = rng.integers(0, n_seeds, size=(resamples, n_seeds))
        else:
            seed_index = np.zeros((resamples, 1), int)
        counts = rng.multinomial(n_images, np.full(n_images, 1 / n_images), size=(resamples, n_seeds))
        return cls(seed_index, counts.astype(np.float64))


class Bootstrap:
    """Paired two-level bootstrap of models against a baseline, over their per-image records.

    ``runs[model][seed]`` is that run's ``Records``; every run must have been validated on the same images.
    """

    def __init__(self, runs: dict[str, dict[int, Records]], resamples: int = 2000, bootstrap_seed: int = 0):
        if resamples < 100:
            raise ValueError(f"resamples must be >= 100, got {resamples}")
        self.resamples, self.bootstrap_seed = resamples, bootstrap_seed
        images = {tuple(r.images) for seeds in runs.values() for r in seeds.values()}
        if len(images) > 1:
            raise ValueError("the runs were validated on different images; no paired comparison is possible")
        self.n_images = len(next(iter(images))) if images else 0
        probe = _sentinels_drop_to_zero() if images else False
        self.ap = {m: {s: WeightedAP(r, probe) for s, r in seeds.items()} for m, seeds in runs.items()}
        self._values: dict[tuple, np.ndarray] = {}

    def full(self, model: str, seed: int) -> tuple[float, float]:
        """(mAP50, mAP50-95) of one run on every validation image once."""
        return self.ap[model][seed]()

    def values(self, model: str, seeds: tuple[int, ...]) -> np.ndarray:
        """(resamples, 2): the model's resampled (mAP50, mAP50-95), averaged over the drawn seeds."""
        key = (model, seeds)
        if key not in self._values:
            draws = Draws.make(len(seeds), self.n_images, self.resamples, self.bootstrap_seed)
            out = np.zeros((self.resamples, len(seeds), 2))
            for i, seed in enumerate(seeds):  # every slot that drew this seed, in chunks (memory: chunk x points x 10)
                slots = np.argwhere(draws.seed_index == i)
                for start in range(0, len(slots), CHUNK):
                    b, k = slots[start : start + CHUNK].T
                    out[b, k] = self.ap[model][seed](draws.image_counts[b, k])
            self._values[key] = out.mean(1)
        return self._values[key]

    def own(self, model: str) -> dict[str, Interval]:
        """Each metric of one model on its own seeds: full-data mean over seeds, and its 95% bootstrap interval."""
        seeds = tuple(sorted(self.ap[model]))
        resampled = self.values(model, seeds)
        point = np.mean([self.full(model, s) for s in seeds], 0)
        return {m: Interval(float(point[i]), *_percentiles(resampled[:, i])) for i, m in enumerate(METRICS)}

    def compare(self, model: str, baseline: str) -> dict[str, Comparison] | None:
        """model - baseline on each metric over their common seeds; None without a common seed."""
        seeds = tuple(sorted(set(self.ap[model]) & set(self.ap[baseline])))
        if not seeds:
            return None
        diff = self.values(model, seeds) - self.values(baseline, seeds)
        point = np.mean([np.subtract(self.full(model, s), self.full(baseline, s)) for s in seeds], 0)
        return {
            m: Comparison(
                Interval(float(point[i]), *_percentiles(diff[:, i])),
                float(np.mean(diff[:, i] > 0)),
                len(seeds),
                self.resamples,
            )
            for i, m in enumerate(METRICS)
        }


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
