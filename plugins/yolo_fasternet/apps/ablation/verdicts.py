"""Each model against the baseline: the paired bootstrap where the runs kept per-image records, else the seeds alone.

``verdicts()`` takes the report rows (one per run, ``model``/``seed``/metrics) and the records of the runs that have
them, and returns per model its own mAP intervals and its comparison with the baseline on mAP50-95 and mAP50:

- both models have records for their common seeds: the two-level paired bootstrap (``bootstrap``), method
  ``bootstrap`` (``bootstrap, 1 seed`` with one seed: then the interval covers image sampling only);
- otherwise (runs finished before records were kept): the seed-level paired t-interval (``stats``), method
  ``seeds``, with one note saying which runs lack records; with a single seed there is no interval at all.

The seed-level t-interval is also given next to the bootstrap where there are 3+ common seeds (``t_interval``):
with two seeds it has one degree of freedom (t = 12.71) and says nothing a reader can use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .bootstrap import METRICS, Bootstrap, Interval
from .records import Records
from .stats import PairedDifference, paired_difference

T_INTERVAL_MIN_SEEDS = 3  # below this the t-interval is left out (1 degree of freedom: t = 12.71)
RECORD_TOLERANCE = 1e-9  # recomputed vs the validator's mAP: the same ap_per_class on the same arrays


@dataclass(frozen=True)
class Verdict:
    """model - baseline on one metric (mAP50 or mAP50-95), in fractions (the report prints percentage points)."""

    delta: float
    low: float | None
    high: float | None
    p_better: float | None  # P(Δ > 0) over bootstrap resamples; None for the seed-level method
    seeds: int
    method: str  # "bootstrap", "seeds"
    t_interval: PairedDifference | None = None  # seed-level, where there are >= 3 common seeds

    @property
    def verdict(self) -> str:
        if self.low is not None and self.low > 0:
            return "better"
        if self.high is not None and self.high < 0:
            return "worse"
        return "not separable"


@dataclass
class Verdicts:
    """Per model: its own bootstrap intervals (where it has records) and its verdicts against the baseline."""

    baseline: str
    own: dict[str, dict[str, Interval]] = field(default_factory=dict)
    against: dict[str, dict[str, Verdict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    resamples: int = 0
    bootstrap_seed: int = 0
    # compression variants: variant -> (its source, how it was made, its verdicts against that source)
    sources: dict[str, tuple[str, str, dict[str, Verdict]]] = field(default_factory=dict)


def _by_seed(rows: list[dict], model: str, column: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[column]) for r in rows if r["model"] == model and r.get(column) is not None}


def verdicts(
    rows: list[dict],
    models: list[str],
    records: dict[tuple[str, int], Records],
    baseline: str | None = None,
    resamples: int = 2000,
    bootstrap_seed: int = 0,
) -> Verdicts:
    """Compare every model with ``baseline`` (default: the first model); ``records[(model, seed)]`` where kept."""
    baseline = baseline or models[0]
    out = Verdicts(baseline, resamples=resamples, bootstrap_seed=bootstrap_seed)
    runs = {(r["model"], int(r["seed"])) for r in rows}
    usable = {key: rec for key, rec in records.items() if key in runs}
    if len({tuple(rec.images) for rec in usable.values()}) > 1:
        out.notes.append("the runs were validated on different images; verdicts use the seed-level statistics")
        usable = {}
    grouped: dict[str, dict[int, Records]] = {}
    for (model, seed), rec in usable.items():
        grouped.setdefault(model, {})[seed] = rec
    boot = Bootstrap(grouped, resamples, bootstrap_seed)
    for model, seed in sorted(usable):  # each record must reproduce what its run reported
        row = next(r for r in rows if r["model"] == model and int(r["seed"]) == seed)
        off = max(abs(v - float(row[m])) for m, v in zip(METRICS, boot.full(model, seed)))
        if off > RECORD_TOLERANCE:
            out.notes.append(f"{model} seed {seed}: its records give an mAP {off:.2g} away from metrics.json; unused")
            del usable[(model, seed)], boot.ap[model][seed]
    missing = sorted(runs - set(usable))
    if missing:
        names = ", ".join(f"{m} seed {s}" for m, s in missing)
        out.notes.append(f"no per-image records for {names} (finished before they were kept): seed-level statistics")
    for model in models:
        if boot.ap.get(model):
            out.own[model] = boot.own(model)
    for model in models:
        if model == baseline:
            continue
        common = sorted(set(_by_seed(rows, model, "mAP50-95")) & set(_by_seed(rows, baseline, "mAP50-95")))
        if not common:
            continue
        result = {}
        if all((model, s) in usable and (baseline, s) in usable for s in common):
            for metric, c in boot.compare(model, baseline).items():
                t = None
                if len(common) >= T_INTERVAL_MIN_SEEDS:
                    t = paired_difference(_by_seed(rows, model, metric), _by_seed(rows, baseline, metric))
                result[metric] = Verdict(c.delta.value, c.delta.low, c.delta.high, c.p_better, c.seeds, "bootstrap", t)
        else:
            for metric in METRICS:
                d = paired_difference(_by_seed(rows, model, metric), _by_seed(rows, baseline, metric))
                result[metric] = Verdict(d.mean, d.low, d.high, None, d.pairs, "seeds")
        out.against[model] = result
    return out


def against_sources(
    rows: list[dict],
    sources: dict[str, tuple[str, str]],
    records: dict[tuple[str, int], Records],
    resamples: int = 2000,
    bootstrap_seed: int = 0,
) -> dict[str, tuple[str, str, dict[str, Verdict]]]:
    """Each compression variant against its own source (``sources[variant] = (source, how)``), by the same verdict
    as every model against the baseline: the two models' rows and records alone, the source as the baseline."""
    out = {}
    for variant, (source, how) in sources.items():
        pair = [r for r in rows if r["model"] in (source, variant)]
        kept = {k: rec for k, rec in records.items() if k[0] in (source, variant)}
        judged = verdicts(pair, [source, variant], kept, source, resamples, bootstrap_seed).against.get(variant)
        if judged:
            out[variant] = (source, how, judged)
    return out
