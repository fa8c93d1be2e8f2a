"""The ablation's report: the Markdown table (mean ± std over seeds, paired differences against the baseline with
95% intervals) and the Pareto plot (mAP50-95 against CPU latency), from the rows of ``results.csv``.

Rows are dicts with ``model``, ``seed`` and the summary columns; the first model is the baseline. A model whose
paired mAP50-95 difference the seeds cannot separate from the baseline (95% interval containing 0, or one seed) is
marked "not separable" in the table and drawn hollow in the plot.
"""

from __future__ import annotations

import io
import statistics
import textwrap

from .stats import PairedDifference, mean_std, paired_difference

ACCURACY = ("precision", "recall", "mAP50", "mAP50-95")  # higher is better; differences in percentage points
RANKED_BY = "mAP50-95"  # the accuracy the verdict column and the plot use
# Columns averaged over seeds: column, title, scale, number format
SUMMARY = (
    ("params", "params (M)", 1e-6, "{:.2f}"),
    ("gflops", "GFLOPs", 1, "{:.2f}"),
    ("cpu_latency_ms", "CPU ms", 1, "{:.1f}"),
    ("gpu_latency_ms", "GPU ms", 1, "{:.2f}"),
    ("epoch_time_s", "s/epoch", 1, "{:.1f}"),
    ("peak_mem_mb", "peak RSS MB", 1, "{:.0f}"),
    ("peak_gpu_mem_mb", "peak GPU MB", 1, "{:.0f}"),
    ("precision", "P", 1, "{:.3f}"),
    ("recall", "R", 1, "{:.3f}"),
    ("mAP50", "mAP50", 1, "{:.3f}"),
    ("mAP50-95", "mAP50-95", 1, "{:.3f}"),
)


def fmt(values: list, scale: float, pattern: str) -> str:
    """Mean, and ± sample standard deviation where there are several values; '-' without values."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean, std = mean_std(values)
    if std is None:
        return pattern.format(mean * scale)
    return f"{pattern.format(mean * scale)} ± {pattern.format(std * scale)}"


def summarize(rows: list[dict], models: list[str]) -> dict[str, dict[str, list]]:
    """Per model, each summary column's values over seeds."""
    return {m: {col: [r[col] for r in rows if r["model"] == m] for col, *_ in SUMMARY} for m in models}


def by_seed(rows: list[dict], model: str, column: str) -> dict[int, float]:
    """seed -> value of ``column`` for one model (runs without a value left out)."""
    return {int(r["seed"]): float(r[column]) for r in rows if r["model"] == model and r[column] is not None}


def against_baseline(rows: list[dict], models: list[str], column: str = RANKED_BY) -> dict[str, PairedDifference]:
    """Each non-baseline model's paired difference in ``column`` against the first model."""
    base = by_seed(rows, models[0], column)
    diffs = {m: paired_difference(by_seed(rows, m, column), base) for m in models[1:]}
    return {m: d for m, d in diffs.items() if d is not None}


def verdict(d: PairedDifference) -> str:
    """'better', 'worse' or 'not separable' (the 95% interval contains 0, or there is a single seed)."""
    if not d.separable:
        return "not separable"
    return "better" if d.mean > 0 else "worse"


def fmt_difference(d: PairedDifference | None) -> str:
    """'+1.23 pt [-0.50, +2.96]' in percentage points; a single seed has no interval."""
    if d is None:
        return "-"
    if d.low is None:
        return f"{d.mean * 100:+.2f} pt (1 seed)"
    return f"{d.mean * 100:+.2f} pt [{d.low * 100:+.2f}, {d.high * 100:+.2f}]"


def markdown(rows: list[dict], models: list[str], header: str) -> str:
    """Mean ± std per model, then per model against the baseline: paired accuracy differences with 95% intervals
    (percentage points), the verdict on mAP50-95, and relative cost differences."""
    summary = summarize(rows, models)
    base = models[0]
    cols = [c for c, *_ in SUMMARY if any(v is not None for m in models for v in summary[m][c])]
    spec = {c: (title, scale, pat) for c, title, scale, pat in SUMMARY}
    lines = [header, "", "| model | seeds | " + " | ".join(spec[c][0] for c in cols) + " |"]
    lines.append("|---" * (len(cols) + 2) + "|")
    for m in models:
        n = len(summary[m][RANKED_BY])
        lines.append(f"| {m} | {n} | " + " | ".join(fmt(summary[m][c], *spec[c][1:]) for c in cols) + " |")

    accuracy = [c for c in cols if c in ACCURACY]
    cost = [c for c in cols if c not in ACCURACY]
    diffs = {c: against_baseline(rows, models, c) for c in accuracy}
    lines += [
        "",
        f"Against the baseline, {base}: accuracy as the paired difference over common seeds, in percentage points,",
        "with its 95% t-interval; *not separable* where that interval for mAP50-95 contains 0 (or there is one seed).",
        "Cost as the relative difference of the means.",
        "",
        "| model | "
        + " | ".join(f"Δ {spec[c][0]}" for c in accuracy)
        + f" | {RANKED_BY} vs baseline | "
        + " | ".join(f"Δ {spec[c][0].split(' (')[0]}" for c in cost)
        + " |",
    ]
    lines.append("|---" * (len(accuracy) + len(cost) + 2) + "|")
    for m in models[1:]:
        cells = [fmt_difference(diffs[c].get(m)) for c in accuracy]
        ranked = diffs.get(RANKED_BY, {}).get(m)
        cells.append(f"**{verdict(ranked)}**" if ranked else "-")
        for c in cost:
            a = [v for v in summary[m][c] if v is not None]
            b = [v for v in summary[base][c] if v is not None]
            cells.append(f"{(statistics.mean(a) / statistics.mean(b) - 1) * 100:+.1f}%" if a and b else "-")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names not dominated in (lower latency, higher mAP): no other point is at least as good in both, better in one."""
    front = []
    for n, (lat, acc) in points.items():
        dominated = any(
            (lat2 <= lat and acc2 >= acc) and (lat2 < lat or acc2 > acc)
            for n2, (lat2, acc2) in points.items()
            if n2 != n
        )
        if not dominated:
            front.append(n)
    return sorted(front, key=lambda n: points[n][0])


def point_styles(rows: list[dict], models: list[str]) -> dict[str, dict]:
    """Per model: its plotted point (latency, mAP50-95, std) and style: baseline diamond, on the Pareto front red,
    hollow where the seeds cannot separate it from the baseline."""
    summary = summarize(rows, models)
    points = {
        m: (statistics.mean(summary[m]["cpu_latency_ms"]), statistics.mean(summary[m][RANKED_BY])) for m in models
    }
    diffs = against_baseline(rows, models)
    front = pareto_front(points)
    return {
        m: {
            "xy": points[m],
            "std": mean_std(summary[m][RANKED_BY])[1] or 0.0,
            "baseline": m == models[0],
            "on_front": m in front,
            "hollow": m != models[0] and not (m in diffs and diffs[m].separable),
        }
        for m in models
    }


def plot_png(rows: list[dict], models: list[str], title: str) -> bytes:
    """mAP50-95 (mean, std as error bar) against fused CPU latency as PNG bytes, styled by ``point_styles``."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    styles = point_styles(rows, models)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for rank, (name, st) in enumerate(sorted(styles.items(), key=lambda p: p[1]["xy"][0])):
        color = "tab:red" if st["on_front"] else "tab:gray"
        (lat, acc) = st["xy"]
        ax.errorbar(
            lat,
            acc,
            yerr=st["std"],
            fmt="D" if st["baseline"] else "o",
            ms=7,
            color=color,
            mfc="white" if st["hollow"] else color,
            capsize=3,
        )
        label = f"{name} (baseline)" if st["baseline"] else name
        ax.annotate(label, (lat, acc), textcoords="offset points", xytext=(5, 4 if rank % 2 else -11), fontsize=8)
    front = sorted((st["xy"] for st in styles.values() if st["on_front"]), key=lambda xy: xy[0])
    ax.plot([x for x, _ in front], [y for _, y in front], "--", color="tab:red", label="Pareto front")
    ax.plot([], [], "o", color="tab:gray", label="separable from the baseline (95%)")
    ax.plot([], [], "o", color="tab:gray", mfc="white", label="not separable from the baseline")
    ax.set_xlabel("fused CPU latency, batch 1 (ms)")
    ax.set_ylabel(f"{RANKED_BY} (mean ± std over seeds)")
    ax.set_title(textwrap.fill(title, 90), fontsize=9)  # long titles wrap instead of running off the figure
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.12)  # room for the labels
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
