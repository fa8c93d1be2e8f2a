"""benchmarks/profile_runtimes.py runs end to end on small inputs: exports, checks, attributes and compares.

Timings are printed, never asserted; what is asserted is that the exported models agree with PyTorch, that the
profile attributes the runtime's nodes to Ultralytics layers, and that a forced PConv export form reaches the graph
the stock exporter writes.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "profile_runtimes.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("profile_runtimes", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _differences(out: str) -> list[float]:
    return [float(v) for v in re.findall(r"\| (\d\.\d+e[-+]\d+) \|", out)]


@pytest.mark.slow
def test_onnx_profile_attributes_nodes_to_layers(capsys, tmp_path, monkeypatch):
    """Both models export, agree with PyTorch, and FasterNet's stem and first block get their own rows."""
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    _benchmark().main(["--imgsz", "64", "--runs", "2", "--runtimes", "onnx"])
    out = capsys.readouterr().out
    assert "| 0 | PatchEmbed | " in out and "| 1 | FasterNetBlock | " in out, out
    assert re.search(r"\| Conv \| \d+\.\d+ \| \d+\.\d+ \|", out), out
    assert "(unattributed)" not in out  # every node of ORT's optimized graph traced back to a layer
    diffs = _differences(out)
    assert len(diffs) == 2 and max(diffs) < 1e-5, out


@pytest.mark.slow
def test_compare_exports_a_forced_pconv_form_through_the_stock_exporter(capsys, tmp_path, monkeypatch):
    """``MODEL:full`` reaches the exported graph (its ONNX file has no Split) and still equals PyTorch."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    benchmark = _benchmark()
    full = benchmark.Exported("yolov8n-fasternet.yaml", ["onnx"], 64, tmp_path / "full", "full")
    plain = benchmark.Exported("yolov8n-fasternet.yaml", ["onnx"], 64, tmp_path / "plain", None)
    splits = {
        name: sum(
            n.op_type == "Split" and "spatial_mixing" in n.name for n in onnx.load(str(m.files["onnx"])).graph.node
        )
        for name, m in (("full", full), ("plain", plain))
    }
    assert splits["plain"] == 13 and splits["full"] == 0, splits  # 1 + 2 + 8 + 2 FasterNet blocks
    benchmark.main(["--compare", "yolov8n-fasternet.yaml:full", "yolov8n.yaml", "--imgsz", "64", "--runtimes", "onnx"])
    out = capsys.readouterr().out
    assert "| onnx | yolov8n-fasternet.yaml [full] | " in out, out
    assert max(float(v) for v in re.findall(r"\| (\d+e[-+]\d+) \|", out)) < 1e-5, out
