"""A module that a converter refuses: the export fails with one line naming the format, the layer and the module.

``integration.export_failures``: when ``Model.export`` fails, each registered layer is converted alone by the same
converter, and the first that fails alone is named. A user's block registered through the public API, with an op the
format lacks, is the case users hit (a converter traceback that names an op deep in a graph, no layer, no module).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from yolo_fasternet import register_module
from yolo_fasternet.integration.export_failures import ExportFormError, failing_layer

STOCK_ROW = "[-1, 1, SPPF, [1024, 5]]"


class RankGate(nn.Module):
    """A user's attention block whose gate uses ``torch.histc``, which the TorchScript-based ONNX exporter lacks."""

    def __init__(self, c1: int):
        super().__init__()
        self.conv = nn.Conv2d(c1, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        counts = torch.histc(x, bins=4, min=-1.0, max=1.0)
        return self.conv(x) * (counts.sum() / x.numel())


class InPlaceGate(nn.Module):
    """A user's block that writes its first half in place even while exporting (CoreML's refusal, coremltools#1522)."""

    def __init__(self, c1: int):
        super().__init__()
        self.half = c1 // 2
        self.conv = nn.Conv2d(self.half, self.half, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        out[:, : self.half] = self.conv(x[:, : self.half])
        return out


class StdGate(nn.Module):
    """A user's block scaled by its per-channel ``torch.std``: pnnx converts it, ncnn has no layer for it."""

    def __init__(self, c1: int):
        super().__init__()
        self.conv = nn.Conv2d(c1, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.std(x.flatten(2), dim=2, keepdim=True).unsqueeze(-1)


def _yaml_with(block: str, folder: Path) -> Path:
    """Stock yolov8.yaml with its SPPF row (layer 9) replaced by ``block`` (an attention kind: same width)."""
    import ultralytics

    stock = (Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml").read_text()
    assert STOCK_ROW in stock
    path = folder / f"yolov8n-{block.lower()}.yaml"
    path.write_text(stock.replace(STOCK_ROW, f"[-1, 1, {block}, []]"))
    return path


def _export_error(block: type, fmt: str, folder: Path) -> ExportFormError:
    """Register ``block``, build yolov8n with it as layer 9 (YAML in ``folder``), export to ``fmt``: the error."""
    from ultralytics import YOLO

    register_module(block, like="attention")
    with pytest.raises(ExportFormError) as caught:
        YOLO(str(_yaml_with(block.__name__, folder))).export(format=fmt, imgsz=64)
    return caught.value


def test_an_onnx_export_that_fails_on_a_registered_block_names_layer_module_and_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    caught = _export_error(RankGate, "onnx", tmp_path)
    line = str(caught)
    assert line.startswith("onnx export: model layer 9 (RankGate) does not convert: "), line
    assert "histc" in line, line
    assert "\n" not in line
    assert caught.__cause__ is None and caught.__suppress_context__  # no converter traceback chained
    assert caught.converter_error is not None


def test_an_export_that_works_is_untouched_and_a_failure_elsewhere_keeps_its_own_error(tmp_path, monkeypatch):
    """No layer to blame (a stock model, an unknown format): Ultralytics' own exception, unchanged."""
    from ultralytics import YOLO

    monkeypatch.chdir(tmp_path)
    model = YOLO("yolov8n-fasternet.yaml")
    assert Path(model.export(format="torchscript", imgsz=64)).is_file()
    with pytest.raises(ValueError, match="Invalid export format='nope'"):
        model.export(format="nope", imgsz=64)


def test_failing_layer_passes_every_bundled_plugin_layer_and_names_only_the_bad_one(tmp_path):
    """The diagnosis itself: FasterNet's layers convert alone (ONNX); the block that does not is the one named."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_fasternet.integration.registration import registered_classes

    register_module(RankGate, like="attention")
    classes = registered_classes()
    good = DetectionModel("yolov8n-fasternet.yaml", verbose=False)
    assert failing_layer(good, "onnx", 64, classes) is None
    bad = DetectionModel(str(_yaml_with("RankGate", tmp_path)), verbose=False)
    line = failing_layer(bad, "onnx", [64, 96], classes)
    assert line is not None and line.startswith("onnx export: model layer 9 (RankGate)"), line
    assert failing_layer(bad, "torchscript", 64, classes) is None  # histc traces fine: TorchScript takes it
    assert failing_layer(bad, "paddle", 64, classes) is None  # no trial for that format: nothing claimed


def test_a_missing_converter_is_not_blamed_on_a_layer(tmp_path, monkeypatch):
    """Without the converter's package the export fails on the import: the layers are not blamed for it."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_fasternet.integration import export_failures
    from yolo_fasternet.integration.registration import registered_classes

    def not_installed(*args):
        raise ModuleNotFoundError("No module named 'litert_torch'")

    monkeypatch.setitem(export_failures.TRIALS, "litert", not_installed)
    model = DetectionModel("yolov8n-fasternet.yaml", verbose=False)
    assert failing_layer(model, "litert", 64, registered_classes()) is None


# format -> the modules its converter needs (each refuses histc, and says so)
CONVERTERS = {
    "openvino": ("openvino",),
    "mnn": ("MNN",),
    "ncnn": ("ncnn", "pnnx"),
    "coreml": ("coremltools",),
    "litert": ("litert_torch",),
}


@pytest.mark.parametrize("fmt", sorted(CONVERTERS))
def test_every_converter_is_tried_on_the_layer_alone(fmt, tmp_path):
    """Each format's trial converts a good plugin layer (FasterNet's) and refuses the bad one, naming it."""
    missing = [m for m in CONVERTERS[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{fmt} converter not installed ({', '.join(missing)})")
    from ultralytics.nn.tasks import DetectionModel

    from yolo_fasternet.integration.registration import registered_classes

    register_module(RankGate, like="attention")
    classes = registered_classes()
    bad = DetectionModel(str(_yaml_with("RankGate", tmp_path)), verbose=False)
    line = failing_layer(bad, fmt, 64, classes)
    assert line is not None and line.startswith(f"{fmt} export: model layer 9 (RankGate) does not convert: "), line
    assert "histc" in line, line
    good = DetectionModel("yolov8n-fasternet.yaml", verbose=False)  # its embedding, stages and mergings
    assert failing_layer(good, fmt, 64, classes) is None


@pytest.mark.skipif(importlib.util.find_spec("pnnx") is None, reason="NCNN converter not installed ([ncnn])")
def test_an_ncnn_export_that_converts_and_would_load_nothing_fails_naming_the_layer(tmp_path, monkeypatch):
    """pnnx keeps ``torch.std`` as an op ncnn lacks, the export "succeeds", and ncnn loads nothing (ultralytics#15687):
    the export now fails there, naming the layer, instead of the runtime failing later with an IndexError."""
    monkeypatch.chdir(tmp_path)
    line = str(_export_error(StdGate, "ncnn", tmp_path))
    assert line.startswith("ncnn export: model layer 9 (StdGate) does not convert: op "), line
    assert "std" in line and "cannot run" in line, line


def test_the_stock_yolo_cli_ends_with_the_one_line_and_no_converter_traceback(tmp_path):
    """``yolo export`` in a fresh process (the start-up hook registers the user's block from its module)."""
    (tmp_path / "rank_gate.py").write_text(
        "import torch\nfrom torch import nn\nfrom yolo_fasternet import register_module\n\n"
        "@register_module(like='attention')\nclass RankGate(nn.Module):\n"
        "    def __init__(self, c1):\n        super().__init__()\n        self.conv = nn.Conv2d(c1, c1, 1)\n\n"
        "    def forward(self, x):\n"
        "        return self.conv(x) * (torch.histc(x, bins=4, min=-1.0, max=1.0).sum() / x.numel())\n"
    )
    yaml = _yaml_with("RankGate", tmp_path)
    code = (
        "from ultralytics.cfg import entrypoint\nimport rank_gate\n"  # registered while Ultralytics imports, as `yolo`
        f"entrypoint('yolo export model={yaml} format=onnx imgsz=64')\n"  # the `yolo` command's own function
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ExportFormError: onnx export: model layer 9 (RankGate) does not convert: " in last, result.stderr[-2000:]
    assert "torch/onnx" not in result.stderr, result.stderr[-3000:]  # the converter's frames are not printed
    assert "not registered" not in result.stderr, result.stderr[:2000]


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("coremltools", "pnnx", "ncnn")), reason="[coreml], [ncnn] needed"
)
def test_the_lines_on_the_deploying_page_are_what_the_exports_print(tmp_path, monkeypatch):
    """docs/deploying.md's example block, produced here: ONNX and NCNN by ``YOLO.export``, CoreML by the same trial."""
    from ultralytics.nn.tasks import DetectionModel

    from yolo_fasternet.integration.registration import registered_classes

    monkeypatch.chdir(tmp_path)
    lines = [str(_export_error(RankGate, "onnx", tmp_path)), str(_export_error(StdGate, "ncnn", tmp_path))]
    classes = registered_classes()
    lines.insert(1, failing_layer(DetectionModel(str(_yaml_with("RankGate", tmp_path))), "coreml", 64, classes))
    page = (Path(__file__).parents[1] / "docs" / "deploying.md").read_text()
    block = page.split("### A module a converter refuses", 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    assert block.splitlines() == lines
