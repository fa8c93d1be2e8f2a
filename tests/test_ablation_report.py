"""The ablation report: mean ± std per model, paired differences with intervals, "not separable", Pareto front."""

from __future__ import annotations

import io

from yolo_fasternet.apps.ablation.report import markdown, pareto_front, plot_png, point_styles

METRICS = ("precision", "recall", "mAP50", "mAP50-95")
COST = ("params", "gflops", "epoch_time_s", "peak_mem_mb")


def _row(model, seed, cpu, m):
    return {
        **dict.fromkeys(COST, 1.0),
        "model": model,
        "seed": seed,
        "cpu_latency_ms": cpu,
        "gpu_latency_ms": None,
        "peak_gpu_mem_mb": None,
        **dict.fromkeys(METRICS, m),
    }


ROWS = [  # better: +10 pt on both seeds (separable); noisy: +10 and -5 pt (not separable)
    _row("base", 0, 10.0, 0.20),
    _row("base", 1, 10.0, 0.30),
    _row("better", 0, 12.0, 0.30),
    _row("better", 1, 12.0, 0.40),
    _row("noisy", 0, 8.0, 0.30),
    _row("noisy", 1, 8.0, 0.25),
]


def test_pareto_front_keeps_only_non_dominated_models():
    points = {"a": (10.0, 0.30), "b": (20.0, 0.40), "c": (25.0, 0.35), "d": (5.0, 0.10), "e": (10.0, 0.25)}
    assert pareto_front(points) == ["d", "a", "b"]  # c: slower and worse than b; e: ties a, worse mAP


def test_markdown_reports_mean_and_sample_std_per_model():
    md = markdown(ROWS, ["base", "better", "noisy"], "# title")
    assert "| base (baseline) | 2 |" in md and "| 0.250 ± 0.071 |" in md  # mean 0.25, sd 0.0707
    assert "GPU ms" not in md  # a column without any value is left out


def test_markdown_gives_the_paired_interval_and_the_verdict():
    md = markdown(ROWS, ["base", "better", "noisy"], "# title")
    better = next(line for line in md.splitlines() if line.startswith("| better |") and "pt" in line)
    noisy = next(line for line in md.splitlines() if line.startswith("| noisy |") and "pt" in line)
    assert "+10.00 pt [+10.00, +10.00]" in better and "**better**" in better and "+20.0%" in better
    # differences +10 and -5: mean +2.5, sd 10.61, half width 12.706 * 10.61 / sqrt(2) = 95.3 pt
    assert "+2.50 pt [-92.80, +97.80]" in noisy and "**not separable**" in noisy and "-20.0%" in noisy


def test_a_single_seed_is_never_called_separable():
    md = markdown([_row("base", 0, 1.0, 0.2), _row("other", 0, 1.0, 0.5)], ["base", "other"], "# t")
    line = next(line for line in md.splitlines() if line.startswith("| other |") and "pt" in line)
    assert "+30.00 pt (1 seed)" in line and "**not separable**" in line


def test_plot_draws_models_the_seeds_cannot_separate_hollow():
    styles = point_styles(ROWS, ["base", "better", "noisy"])
    assert {m: st["hollow"] for m, st in styles.items()} == {"base": False, "better": False, "noisy": True}
    assert styles["better"]["xy"] == (12.0, 0.35) and styles["base"]["baseline"]


def test_plot_is_a_png():
    from PIL import Image

    png = plot_png(ROWS, ["base", "better", "noisy"], "title")
    with Image.open(io.BytesIO(png)) as im:
        im.verify()
        assert im.size[0] > 100
