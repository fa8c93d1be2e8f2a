"""The ablation's report: verdicts first, then the per-model summary, the comparison CSV and the Pareto plot.

Rows are dicts with ``model``, ``seed`` and the summary columns (one per run, as ``results.csv``); the baseline is the
first model unless ``Verdicts`` names another. Verdicts come from ``verdicts`` (the paired bootstrap over seeds and
validation images where the runs kept per-image records, else the seed-level t-interval). Accuracy differences are
in percentage points with their sign; cost differences are relative differences of the means. A model that is not
separable from the baseline is marked so in the tables and drawn hollow in the plot.
"""

from __future__ import annotations

import csv
import io
import statistics
import textwrap

from .stats import mean_std
from .verdicts import Verdict, Verdicts, verdicts

ACCURACY = ("precision", "recall", "mAP50", "mAP50-95")  # higher is better; differences in percentage points
RANKED_BY = "mAP50-95"  # the accuracy the verdict column and the plot use
JUDGED = ("mAP50-95", "mAP50")  # the metrics with a verdict (the bootstrap recomputes these two)
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
COMPARISON_COLUMNS = (
    "model",
    "baseline",
    "metric",
    "delta_pt",
    "low_pt",
    "high_pt",
    "p_better",
    "verdict",
    "seeds",
    "method",
    "resamples",
    "bootstrap_seed",
    "t_low_pt",
    "t_high_pt",
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
    return {m: {col: [r.get(col) for r in rows if r["model"] == m] for col, *_ in SUMMARY} for m in models}


def fmt_difference(d: Verdict | None) -> str:
    """'+1.23 pt [-0.50, +2.96]' in percentage points; a single seed without records has no interval."""
    if d is None:
        return "-"
    if d.low is None:
        return f"{d.delta * 100:+.2f} pt (1 seed)"
    return f"{d.delta * 100:+.2f} pt [{d.low * 100:+.2f}, {d.high * 100:+.2f}]"


def method_text(d: Verdict) -> str:
    """How the interval was made, in words."""
    if d.method == "bootstrap":
        return "seeds and images" if d.seeds > 1 else "1 seed: images only"
    return f"{d.seeds} seeds, t-interval" if d.low is not None else "1 seed, no interval"


def _cost_cells(summary: dict, model: str, base: str, cost: list[str]) -> list[str]:
    cells = []
    for c in cost:
        a = [v for v in summary[model][c] if v is not None]
        b = [v for v in summary[base][c] if v is not None]
        cells.append(f"{(statistics.mean(a) / statistics.mean(b) - 1) * 100:+.1f}%" if a and b else "-")
    return cells


def markdown(rows: list[dict], models: list[str], header: str, v: Verdicts | None = None) -> str:
    """The verdict table (against the baseline), the notes, then mean ± std per model with its bootstrap interval."""
    v = v or verdicts(rows, models, {})
    base = v.baseline
    summary = summarize(rows, models)
    cols = [c for c, *_ in SUMMARY if any(x is not None for m in models for x in summary[m][c])]
    spec = {c: (title, scale, pat) for c, title, scale, pat in SUMMARY}
    cost = [c for c in cols if c not in ACCURACY]
    with_t = any(d.t_interval for m in v.against.values() for d in m.values())
    boot = any(d.method == "bootstrap" for m in v.against.values() for d in m.values())
    lines = [header, ""]
    if boot:
        lines.append(
            f"Against the baseline, **{base}**: Δ on the full validation set (mean over common seeds) in percentage "
            f"points, with the 95% interval of a two-level paired bootstrap ({v.resamples} resamples of the seeds, "
            f"then of the validation images, the same images for both models; --bootstrap-seed {v.bootstrap_seed}) "
            "and P(Δ > 0), the share of resamples in which the model is ahead. *better* / *worse* where the "
            "interval excludes 0, else *not separable*. With one seed the interval covers image sampling only."
        )
    else:
        lines.append(
            f"Against the baseline, **{base}**: Δ as the paired difference over common seeds, in percentage points, "
            "with its 95% t-interval; *not separable* where that interval contains 0 (or there is one seed)."
        )
    lines += ["Cost as the relative difference of the means.", ""]
    head = ["model", f"{RANKED_BY} vs baseline", *(f"Δ {m}" for m in JUDGED), "P(Δ mAP50-95 > 0)", "interval from"]
    if with_t:
        head.append("Δ mAP50-95, seeds' t-interval")
    head += [f"Δ {spec[c][0].split(' (')[0]}" for c in cost]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for m in models:
        if m == base or m not in v.against:
            continue
        d = v.against[m]
        ranked = d[RANKED_BY]
        cells = [f"**{ranked.verdict}**", *(fmt_difference(d[k]) for k in JUDGED)]
        cells.append(f"{ranked.p_better:.3f}" if ranked.p_better is not None else "-")
        cells.append(method_text(ranked))
        if with_t:
            t = ranked.t_interval
            cells.append(f"[{t.low * 100:+.2f}, {t.high * 100:+.2f}]" if t and t.low is not None else "-")
        lines.append(f"| {m} | " + " | ".join(cells + _cost_cells(summary, m, base, cost)) + " |")
    if v.notes:
        lines += [""] + [f"Note: {n}." for n in v.notes]
    if v.sources:
        lines += ["", *source_table(v, summary, cost, spec)]

    lines += ["", "Per model, mean ± std over seeds" + ("; mAP with its 95% bootstrap interval" if v.own else "") + ":"]
    lines += ["", "| model | seeds | " + " | ".join(spec[c][0] for c in cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for m in models:
        cells = []
        for c in cols:
            cell = fmt(summary[m][c], *spec[c][1:])
            own = v.own.get(m, {}).get(c)
            if own is not None:
                cell += f" [{own.low:.3f}, {own.high:.3f}]"
            cells.append(cell)
        name = f"{m} (baseline)" if m == base else m
        lines.append(f"| {name} | {len(summary[m][RANKED_BY])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def source_table(v: Verdicts, summary: dict, cost: list[str], spec: dict) -> list[str]:
    """Each compression variant against the model it was made from: the same verdict, the source as baseline."""
    lines = [
        "Compression variants against their source (the model each was pruned from, or the student trained without "
        "a teacher): the same paired verdict, on the seeds both have, with the source as the baseline.",
        "",
    ]
    head = ["variant", "how", "source", f"{RANKED_BY} vs source", *(f"Δ {m}" for m in JUDGED), "P(Δ mAP50-95 > 0)"]
    head += ["interval from", *(f"Δ {spec[c][0].split(' (')[0]}" for c in cost)]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for variant, (source, how, d) in v.sources.items():
        ranked = d[RANKED_BY]
        cells = [how, source, f"**{ranked.verdict}**", *(fmt_difference(d[k]) for k in JUDGED)]
        cells += [f"{ranked.p_better:.3f}" if ranked.p_better is not None else "-", method_text(ranked)]
        lines.append(f"| {variant} | " + " | ".join(cells + _cost_cells(summary, variant, source, cost)) + " |")
    return lines


def comparison_csv(v: Verdicts) -> str:
    """One row per (model, metric) against the baseline, then per (compression variant, metric) against its source
    (its ``baseline`` column names the source): Δ, interval and P(Δ > 0) in percentage points."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COMPARISON_COLUMNS, lineterminator="\n")
    writer.writeheader()

    def pt(x):
        return "" if x is None else f"{x * 100:.4f}"

    pairs = [(model, v.baseline, by_metric) for model, by_metric in v.against.items()]
    pairs += [(variant, source, by_metric) for variant, (source, _, by_metric) in v.sources.items()]
    for model, baseline, by_metric in pairs:
        for metric in JUDGED:
            d = by_metric[metric]
            t = d.t_interval
            writer.writerow(
                {
                    "model": model,
                    "baseline": baseline,
                    "metric": metric,
                    "delta_pt": pt(d.delta),
                    "low_pt": pt(d.low),
                    "high_pt": pt(d.high),
                    "p_better": "" if d.p_better is None else f"{d.p_better:.4f}",
                    "verdict": d.verdict,
                    "seeds": d.seeds,
                    "method": d.method,
                    "resamples": v.resamples if d.method == "bootstrap" else "",
                    "bootstrap_seed": v.bootstrap_seed if d.method == "bootstrap" else "",
                    "t_low_pt": pt(t.low) if t else "",
                    "t_high_pt": pt(t.high) if t else "",
                }
            )
    return buf.getvalue()


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


def point_styles(rows: list[dict], models: list[str], v: Verdicts | None = None) -> dict[str, dict]:
    """Per model: its plotted point (latency, mAP50-95), error bar (bootstrap interval where there is one, else ±
    std over seeds) and style: baseline diamond, on the Pareto front red, hollow where not separable."""
    v = v or verdicts(rows, models, {})
    summary = summarize(rows, models)
    latency = {m: [x for x in summary[m]["cpu_latency_ms"] if x is not None] for m in models}
    points = {
        m: (statistics.mean(latency[m]) if latency[m] else 0.0, statistics.mean(summary[m][RANKED_BY])) for m in models
    }
    front = pareto_front(points)
    styles = {}
    for m in models:
        own = v.own.get(m, {}).get(RANKED_BY)
        y = points[m][1]
        err = (y - own.low, own.high - y) if own else ((mean_std(summary[m][RANKED_BY])[1] or 0.0),) * 2
        verdict = v.against.get(m, {}).get(RANKED_BY)
        styles[m] = {
            "xy": points[m],
            "yerr": (max(err[0], 0.0), max(err[1], 0.0)),
            "interval": (own.low, own.high) if own else None,
            "baseline": m == v.baseline,
            "on_front": m in front,
            "hollow": m != v.baseline and not (verdict and verdict.verdict != "not separable"),
        }
    return styles


def plot_png(rows: list[dict], models: list[str], title: str, v: Verdicts | None = None) -> bytes:
    """mAP50-95 with its interval against fused CPU latency as PNG bytes, styled by ``point_styles``; the baseline's
    own interval is drawn as a band across the plot."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    styles = point_styles(rows, models, v)
    booted = any(st["interval"] for st in styles.values())
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for st in styles.values():
        if st["baseline"] and st["interval"]:
            ax.axhspan(*st["interval"], color="tab:blue", alpha=0.12, label="baseline's 95% interval")
    for rank, (name, st) in enumerate(sorted(styles.items(), key=lambda p: p[1]["xy"][0])):
        color = "tab:red" if st["on_front"] else "tab:gray"
        (lat, acc) = st["xy"]
        ax.errorbar(
            lat,
            acc,
            yerr=[[st["yerr"][0]], [st["yerr"][1]]],
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
    bar = "95% bootstrap interval, seeds and images" if booted else "mean ± std over seeds"
    ax.set_ylabel(f"{RANKED_BY} ({bar})", fontsize=8)
    ax.set_title(textwrap.fill(title, 90), fontsize=9)  # long titles wrap instead of running off the figure
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.12)  # room for the labels
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
