"""The performance benchmark runs end to end on its cheap sections (it checks its own forms' equality as it goes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "performance.py"


def test_operator_and_block_sections_print_every_row(capsys):
    """One run of each measurement: every operator form at every shape and layout, every block in three forms."""
    spec = importlib.util.spec_from_file_location("performance_benchmark", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.main(["--sections", "machine,operator,block", "--runs", "1", "--warmup", "0"])
    out = capsys.readouterr().out
    operator_rows = [line for line in out.splitlines() if line.startswith("| 40x160x160 | ")]
    assert len(operator_rows) == 2 * 8  # 8 operators, NCHW and channels-last
    assert out.count("| FasterNetBlock ") == len(benchmark.T0_STAGES)
    assert out.count("| C2f_Faster ") == len(benchmark.C2F_FASTER_LAYERS)
    assert "measured GEMM GFLOP/s" in out


def test_scales_and_onnx_pconv_sections_print_their_rows(capsys):
    """The per-scale table (n only, PyTorch) and every candidate PConv export form, checked against PyTorch first."""
    spec = importlib.util.spec_from_file_location("performance_benchmark", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.main(["--sections", "scales,onnx_pconv", "--scales", "n", "--runs", "1", "--warmup", "0", "--no-onnx"])
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("| n | 8.")]) == 1, out
    for form in benchmark.ONNX_PCONV_FORMS:
        assert f"| yolov8n-fasternet | {form} | " in out, out
