"""The edge export matrix: every bundled family and the example catalogue, exported by the stock exporter to NCNN, MNN,
LiteRT and CoreML, loaded in its runtime, and compared with the fused PyTorch model.

Each model is built at scale ``n`` with randomized BatchNorm statistics (as in ``test_export.py``, which covers
TorchScript, ONNX and OpenVINO) and exported with ``YOLO.export(format=..., imgsz=64)``. NCNN, MNN and LiteRT models run
through Ultralytics' ``AutoBackend`` (what ``yolo predict`` and ``detect`` use) on this machine's CPU; CoreML has no
runtime on Linux, so its model converts and its spec loads. The raw outputs (boxes in pixels, class scores 0..1) are
compared part by part (``conftest.assert_outputs_close``: boxes and class scores, each against its own magnitude, with
mid-range scores from ``nontrivial_outputs``) within 1e-4 + 1e-5 x magnitude, the bound of ``test_export.py``: all
three runtimes compute in float32 on x86; on ARM, NCNN and MNN default to fp16 storage, which this bound does not
cover.

Cost (2-core VM shared with other runs, 2026-12-07): an NCNN or MNN test of an ``n`` model at 64 px takes 3-25 s,
LiteRT 40-250 s, CoreML 15-75 s, the catalogue 80-200 s a format. So NCNN and MNN run for every family, LiteRT and
CoreML for the two families whose blocks have export forms (FasterNet's PConv, PartialNet's SRM), the catalogue in
NCNN, MNN and LiteRT, a registered block in NCNN and MNN; ``benchmarks/deploy.py --matrix`` covers every family in
every format (docs/deploying.md). The whole file took 6.6 min (397 s, 34 tests) on that VM at a load average ~10.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from test_export import _build, _reference
from torch import nn

from yolo_fasternet import is_exporting, register_module

from conftest import REPO, assert_close_to_magnitude, assert_outputs_close, run_python

IMGSZ = 64  # P5 map of 2x2: still 4 pixels for PartialNet's style std and its attention
EDGE_FORMATS = ("ncnn", "mnn", "litert", "coreml")
FORMAT_MODULES = {"ncnn": ("ncnn", "pnnx"), "mnn": ("MNN",), "litert": ("litert_torch", "ai_edge_litert")}
FORMAT_MODULES["coreml"] = ("coremltools",)
FAMILIES = [
    "yolov8-fasternet.yaml",
    "yolo11-fasternet.yaml",
    "yolo26-fasternet.yaml",
    "yolo26-c3k2-faster.yaml",
    "yolo26-spconv.yaml",
    "yolo26-partialnet.yaml",
    "yolov8-c2f-faster.yaml",
    "yolo11-c3k2-faster.yaml",
    "yolov8-saconv.yaml",
    "yolov8-spconv.yaml",
    "yolo11-spconv.yaml",
    "yolov8-partialnet.yaml",
    "yolo11-partialnet.yaml",
    "yolov8-timm-mobilenetv3_small_100.yaml",
]
# LiteRT (40-250 s an export here) and CoreML (15-75 s) run on the two families whose blocks need export forms
# (PConv, SRM); NCNN and MNN on every family. benchmarks/deploy.py --matrix runs every family in every format.
SLOW_FORMAT_FAMILIES = ["yolov8-fasternet.yaml", "yolo11-partialnet.yaml"]
MATRIX = [(f, fmt) for fmt in ("ncnn", "mnn") for f in FAMILIES]
MATRIX += [(f, fmt) for fmt in ("litert", "coreml") for f in SLOW_FORMAT_FAMILIES]
CATALOGUE = REPO / "examples" / "yolo-block-catalogue"


def require(fmt: str) -> None:
    """Skip where the format's packages (the ``[ncnn]``, ``[mnn]``, ``[litert]``, ``[coreml]`` extras) are missing."""
    missing = [m for m in FORMAT_MODULES[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{fmt}: {', '.join(missing)} not installed (pip install 'yolo-fasternet[{fmt}]')")


def run_exported(path: Path, x: torch.Tensor) -> torch.Tensor:
    """The first output of an exported model run by Ultralytics' AutoBackend on the CPU."""
    from ultralytics.nn.autobackend import AutoBackend

    backend = AutoBackend(str(path), device=torch.device("cpu"))
    out = backend(x)
    return torch.as_tensor(out[0] if isinstance(out, (list, tuple)) else out)


def check(model_name: str, fmt: str, directory: Path) -> dict:
    # model_name: a bundled YAML without its scale (built at n), or a path to a scaled YAML
    """Export ``model_name`` to ``fmt`` in ``directory``, load and run it, compare; return what was measured."""
    import os

    os.chdir(directory)
    yolo = _build(model_name)
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    expected = _reference(yolo, x)
    exported = (directory / yolo.export(format=fmt, imgsz=IMGSZ, batch=1, device="cpu")).resolve()
    assert exported.exists(), f"{model_name}: the {fmt} export reported {exported}, which does not exist"
    if fmt == "coreml":  # no CoreML runtime on Linux: the package converts and its spec loads
        import coremltools

        spec = coremltools.models.MLModel(str(exported), skip_model_load=True).get_spec()
        assert spec.description.output, f"{model_name}: the CoreML spec has no outputs"
        return {"outputs": len(spec.description.output)}
    actual = run_exported(exported, x)
    assert actual.shape == expected.shape, (model_name, fmt, actual.shape, expected.shape)
    differences = assert_outputs_close(actual, expected, yolo.model, what=f"{model_name} as {fmt}")
    return {d.name: d.diff for d in differences}


@pytest.mark.slow
@pytest.mark.parametrize(("model_name", "fmt"), MATRIX)
def test_edge_export_runs_as_pytorch_does(model_name, fmt, tmp_path, monkeypatch):
    """Stock export exits cleanly, the file loads in its runtime, and its outputs equal the fused PyTorch model's."""
    require(fmt)
    monkeypatch.chdir(tmp_path)
    check(model_name, fmt, tmp_path)


@pytest.fixture(scope="module")
def catalogue_site(tmp_path_factory) -> Path:
    """The example catalogue installed the way a user installs a plugin (``pip install --target``)."""
    from test_plugin_api import pip_install

    root = tmp_path_factory.mktemp("catalogue")
    import shutil

    shutil.copytree(CATALOGUE, root / "source")
    return pip_install(root / "source", root / "site")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["ncnn", "mnn", "litert"])
def test_catalogue_kinds_export_to_edge_formats(fmt, catalogue_site, tmp_path):
    """The catalogue's attention, parameter-free, fusion, upsampler and custom-head rows, through each edge format."""
    require(fmt)
    from test_plugin_api import with_sites

    code = (
        f"import json, sys; sys.path.insert(0, {str(REPO / 'tests')!r}); from pathlib import Path; "
        "from test_edge_export import check; "
        f"print('RESULT', json.dumps(check({str(CATALOGUE / 'yolov8n-catalogue.yaml')!r}, {fmt!r}, "
        f"Path({str(tmp_path)!r}))))"
    )
    proc = run_python(code, cwd=tmp_path, env=with_sites(catalogue_site), timeout=900)
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert json.loads(line[len("RESULT ") :])


def test_catalogue_simam_export_form_equals_its_eager_form(monkeypatch):
    """SimAM's export form (means by adaptive_avg_pool2d: pnnx's NCNN reductions over (2, 3) broadcast wrongly)."""
    monkeypatch.syspath_prepend(str(CATALOGUE))
    from yolo_block_catalogue.simam import SimAM

    for shape in ((1, 8, 5, 7), (2, 4, 1, 1)):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 3
        with torch.no_grad():
            eager = SimAM().eval()(x)
            traced = torch.jit.trace(SimAM().eval(), x)
        reductions = [n.kind() for n in traced.graph.nodes() if n.kind() in ("aten::mean", "aten::sum")]
        assert not reductions, reductions
        assert_close_to_magnitude(traced(x), eager, atol=1e-6, rel=1e-6, what=f"SimAM export form {shape}")


def test_catalogue_spdconv_export_form_equals_its_strided_slices(monkeypatch):
    """SPDConv's export form (one stride-2 one-hot conv: pnnx's NCNN conversion drops slice steps) is exact."""
    monkeypatch.syspath_prepend(str(CATALOGUE))
    from yolo_block_catalogue.spdconv import SPDConv

    block = SPDConv(8, 16).eval()
    x = torch.randn(2, 8, 6, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        eager = block(x)
        traced = torch.jit.trace(block, x)
    assert not [n.kind() for n in traced.graph.nodes() if n.kind() == "aten::slice"]
    assert torch.equal(traced(x), eager)


def test_matrix_names_every_bundled_detection_family():
    """No bundled detection YAML is left out of the matrix (a new family must be added to FAMILIES)."""
    from test_export import DETECTION_YAMLS

    assert set(DETECTION_YAMLS) <= set(FAMILIES)


class HalfGate(nn.Module):
    """A user's block with an in-place eager form and an export form: the first half of the channels gated by itself.

    Eager inference writes the gated half into a copy in place (fast, and what CoreML and TensorRT refuse); while
    exporting (``is_exporting()``), training or recording gradients it splits and concatenates.
    """

    def __init__(self, c1: int):
        super().__init__()
        self.half = c1 // 2
        self.conv = nn.Conv2d(self.half, self.half, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_exporting() or self.training or torch.is_grad_enabled():
            a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
            return torch.cat((a * torch.sigmoid(self.conv(a)), b), 1)
        out = x.clone()
        out[:, : self.half] = x[:, : self.half] * torch.sigmoid(self.conv(x[:, : self.half]))
        return out


def _half_gate_yaml(folder: Path) -> Path:
    """Stock yolov8.yaml with its SPPF row replaced by HalfGate (an attention kind: same width, same indices)."""
    import ultralytics

    stock = (Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml").read_text()
    row = "[-1, 1, SPPF, [1024, 5]]"
    assert row in stock
    path = folder / "yolov8n-halfgate.yaml"
    path.write_text(stock.replace(row, "[-1, 1, HalfGate, []]"))
    return path


def test_a_registered_blocks_export_form_equals_its_eager_form_without_in_place_writes():
    """The public hook: the traced graph (what every converter sees) has no in-place write and equals eager."""
    block = HalfGate(16).eval()
    x = torch.randn(1, 16, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        eager = block(x)
        traced = torch.jit.trace(block, x)
    in_place = [n.kind() for n in traced.graph.nodes() if n.kind() in ("aten::copy_", "aten::index_put_")]
    assert not in_place, in_place
    assert_close_to_magnitude(traced(x), eager, atol=1e-6, rel=1e-6, what="HalfGate export form")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["ncnn", "mnn"])
def test_a_registered_block_exports_through_its_export_form(fmt, tmp_path, monkeypatch):
    """A block registered through the public API exports to the edge formats and runs as in PyTorch."""
    require(fmt)
    register_module(HalfGate, like="attention")
    monkeypatch.chdir(tmp_path)
    check(str(_half_gate_yaml(tmp_path)), fmt, tmp_path)
