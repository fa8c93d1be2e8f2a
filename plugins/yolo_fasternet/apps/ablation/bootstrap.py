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
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed trapz


def _sentinels_drop_to_zero() -> bool:
    """Whether the installed Ultralytics' ``compute_ap`` ends each curve with a drop to precision 0 at the last
    recall (newer 8.4) rather than a straight line to (recall 1, precision 0) (8.3). Probed on one point."""
    from ultralytics.utils.metrics import compute_ap

    return float(compute_ap(np.array([0.5]), np.array([1.0]))[0]) < 0.6  # 0.5 with the drop, 0.75 without


class WeightedAP:
    """mAP50 and mAP50-95 of one run's records for any image weights (the counts of a bootstrap resample)."""

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
        self.pred_point, self.pred_image = point, image
        self.n_points = int(last.sum())
        self.point_tp = tp[last].astype(np.float64)
        point_cls = cls[last]
        self.classes = np.unique(records.target_cls)
        self.segments = {c: np.flatnonzero(point_cls == c) for c in self.classes}
        self.target_cls, self.target_image = records.target_cls, records.target_image

    def __call__(self, weights: np.ndarray | None = None) -> tuple[float, float]:
        """(mAP50, mAP50-95) with ``weights[i]`` copies of image ``i`` (None: every image once)."""
        if weights is None:
            weights = np.ones(self.n_images)
        point_w = np.bincount(self.pred_point, weights=weights[self.pred_image], minlength=self.n_points)
        n_targets = np.bincount(np.searchsorted(self.classes, self.target_cls), weights=weights[self.target_image])
        present = n_targets > 0
        ap = np.zeros((len(self.classes), self.point_tp.shape[1]))
        for ci, c in enumerate(self.classes):
            seg = self.segments[c]
            w = point_w[seg]
            if not present[ci] or w.sum() == 0:
                continue
            tpc = np.cumsum(self.point_tp[seg] * w[:, None], 0)
            fpc = np.cumsum((1 - self.point_tp[seg]) * w[:, None], 0)
            recall = tpc / (n_targets[ci] + 1e-16)
            with np.errstate(invalid="ignore", divide="ignore"):
                precision = tpc / (tpc + fpc)
            precision[tpc + fpc == 0] = 1.0  # leading points of weight 0 (images not drawn): like the sentinel
            ap[ci] = self._ap(recall, precision)
        ap = ap[present]
        if not len(ap):
            return 0.0, 0.0
        return float(ap[:, 0].mean()), float(ap.mean())

    def _ap(self, recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
        """AP at every IoU threshold (one column each) as Ultralytics' ``compute_ap``, vectorised over columns."""
        n = recall.shape[1]
        if self.drop_to_zero:
            mrec = np.vstack((np.zeros(n), recall, recall[-1], np.ones(n)))
            mpre = np.vstack((np.ones(n), precision, np.zeros(n), np.zeros(n)))
        else:
            mrec = np.vstack((np.zeros(n), recall, np.ones(n)))
            mpre = np.vstack((np.ones(n), precision, np.zeros(n)))
        mpre = np.flip(np.maximum.accumulate(np.flip(mpre, 0), 0), 0)
        curves = np.stack([np.interp(AP_X, mrec[:, j], mpre[:, j]) for j in range(n)])  # (n, 101), rows contiguous
        return _trapezoid(curves, AP_X, axis=1)


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
        probe = _sentinels_drop_to_zero()
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
            for b in range(self.resamples):
                for k in range(len(seeds)):
                    seed = seeds[draws.seed_index[b, k]]
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
