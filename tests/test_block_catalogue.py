"""The worked catalogue (examples/yolo-block-catalogue): one block of each kind in one stock-YOLOv8-style YAML.

Installed the way a user installs a plugin (``pip install --target``, then on PYTHONPATH), it is built at every scale
in a fresh process, listed with its kinds, grafted into stock yolov8.yaml, trained one epoch with the stock ``yolo``
command from another directory, reloaded under ``ULTRALYTICS_SAFE_LOAD=1``, exported to ONNX and compared, and
rebuilt by the script Ultralytics writes for DDP workers.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from test_plugin_api import ddp_worker_model, pip_install, with_sites

from conftest import REPO, SHARED_DATASETS, run_checked, run_python

CATALOGUE = REPO / "examples" / "yolo-block-catalogue"
YOLO_CLI = Path(sys.executable).with_name("yolo")
KINDS = {  # what `yolo-fasternet modules` must show for each catalogue module
    "SE": "attention",
    "CBAM": "attention",
    "LearnedUpsample": "attention",
    "SimAM": "parameter_free",
    "BiFPNConcat": "concat",
    "BiFPNAdd": "fuse",
    "GSConv": "like Conv",
    "SPDConv": "like Conv",
    "VoVGSCSP": "like C3",
    "LiteDetect": "like Detect",
}
# Per layer of the catalogue model: its class path and parameter count (what a rebuilt or reloaded model must match).
DESCRIBE = """
import json
def describe(model):
    return [[type(m).__module__ + "." + type(m).__name__, sum(p.numel() for p in m.parameters())] for m in model.model]
"""
# Widths the catalogue's kinds must have received, per scale, next to what the layers they read produce.
WIDTHS = """
import json, torch
from ultralytics.nn import tasks
def build(name, scale):  # on the meta device: shapes without memory or initialisation (x has 69M parameters)
    with torch.device("meta"):
        d = tasks.yaml_model_load(name.replace("yolov8", f"yolov8{scale}"))
        return tasks.parse_model(d, ch=3, verbose=False)[0]
@torch.no_grad()
def widths(layers):  # output channels of every layer but the head, from one forward pass routed by each 'from'
    y, x = [], torch.zeros(1, 3, 64, 64, device="meta")
    for m in list(layers.eval())[:-1]:
        if m.f != -1:
            x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
        x = m(x)
        y.append(x)
    return [t.shape[1] if torch.is_tensor(t) else None for t in y]
rows = {}
for scale in "nsmlx":
    m, stock = build(YAML, scale), widths(build("yolov8.yaml", scale))
    w = widths(m)
    rows[scale] = {
        "head_inputs": [[branch[0].conv.in_channels for branch in m[26].cv2], [w[19], w[21], w[25]]],
        "se_skip": [m[12].excite[0].in_channels, w[6]],
        "cbam_from_minus_2": [m[19].mlp[0].in_channels, w[17]],
        "se_multi_input": [m[23].excite[0].in_channels, m[23].excite[2].out_channels, w[22], w[10], w[23]],
        "upsample": [m[11].project.in_channels, w[10]],
        "concat_into": [m[14].cv1.conv.in_channels, w[11] + w[12]],
        "fuse_inputs": [w[18], w[14], w[20], len(m[20].weights.w)],
        "like_conv": [w[1], stock[1], w[3], stock[3], w[5], stock[5]],
        "vovgscsp_repeats_like_c3": [len(m[14].m), max(round(3 * {"n": .33, "s": .33, "m": .67}.get(scale, 1)), 1)],
    }
print(json.dumps(rows))
"""


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> dict:
    """The catalogue copied to a temp dir and installed there: {"yaml": its model YAML, "site": install dir}."""
    root = tmp_path_factory.mktemp("catalogue")
    shutil.copytree(CATALOGUE, root / "source")
    return {"yaml": root / "source" / "yolov8-catalogue.yaml", "site": pip_install(root / "source", root / "site")}


@pytest.fixture(scope="module")
def coco8() -> Path:
    path = SHARED_DATASETS / "coco8" / "coco8.yaml"
    if not path.is_file():
        pytest.skip(f"shared dataset not found: {path}")
    return path


@pytest.mark.registration
def test_each_kind_gets_the_widths_of_the_rows_it_reads_at_every_scale(catalogue, tmp_path):
    code = f"YAML = {str(catalogue['yaml'])!r}" + WIDTHS
    rows = json.loads(run_python(code, cwd=tmp_path, env=with_sites(catalogue["site"])).stdout.strip().splitlines()[-1])
    for scale, row in rows.items():
        for name in ("head_inputs", "se_skip", "cbam_from_minus_2", "upsample", "concat_into"):
            assert row[name][0] == row[name][1], (scale, name, row[name])
        se_in, se_out, gated, guide, se_width = row["se_multi_input"]
        assert (se_in, se_out, se_width) == (gated + guide, gated, gated), scale
        assert row["fuse_inputs"] == [row["fuse_inputs"][0]] * 3 + [2], scale
        ours, stock = row["like_conv"][::2], row["like_conv"][1::2]
        assert ours == stock, scale  # SPDConv and GSConv rows are as wide as the stock Conv rows they replace
        assert row["vovgscsp_repeats_like_c3"][0] == row["vovgscsp_repeats_like_c3"][1], scale


@pytest.mark.registration
def test_modules_lists_each_kind_and_graft_puts_a_kind_into_a_stock_yaml(catalogue, tmp_path):
    code = textwrap.dedent(f"""
        from yolo_fasternet.cli import main
        assert main(["graft", "yolov8.yaml", "Concat=BiFPNConcat", "-o", {str(tmp_path / "grafted.yaml")!r}]) == 0
        assert main(["modules"]) == 0
        """)
    out = run_python(code, cwd=tmp_path, env=with_sites(catalogue["site"])).stdout
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
    for name, kind in KINDS.items():
        assert f" {kind} " in rows[name] and "yolo-block-catalogue" in rows[name], rows.get(name)
    assert "[reduction=16]" in rows["SE"] and "[e_lambda=0.0001]" in rows["SimAM"]
    assert (tmp_path / "grafted.yaml").read_text().count(", BiFPNConcat, [1]]") == 4  # every stock Concat row


@pytest.mark.registration
def test_importing_the_plugin_package_before_ultralytics_registers_all_its_modules(catalogue, tmp_path):
    """The package's own `import ultralytics` loads yolo-fasternet while the package is half imported."""
    code = textwrap.dedent(f"""
        import yolo_block_catalogue
        from ultralytics import YOLO
        print(type(YOLO({str(catalogue["yaml"].with_name("yolov8n-catalogue.yaml"))!r}).model.model[20]).__name__)
        """)
    proc = run_python(code, cwd=tmp_path, env=with_sites(catalogue["site"]))
    assert proc.stdout.strip().splitlines()[-1] == "BiFPNAdd" and "WARNING yolo-fasternet" not in proc.stderr


@pytest.fixture(scope="module")
def trained(catalogue, coco8, tmp_path_factory) -> Path:
    """best.pt of a one-epoch stock `yolo train` of yolov8n-catalogue.yaml, run from an unrelated directory."""
    cwd = tmp_path_factory.mktemp("cli")
    model = catalogue["yaml"].with_name("yolov8n-catalogue.yaml")
    argv = [str(YOLO_CLI), "train", f"model={model}", f"data={coco8}", "epochs=1", "imgsz=64", "batch=4"]
    argv += ["workers=0", "device=cpu", f"project={cwd / 'runs'}", "name=train", "plots=False", "val=True"]
    proc = run_checked(argv, cwd=cwd, env=with_sites(catalogue["site"]), timeout=900)
    assert "yolo_block_catalogue.bifpn.BiFPNAdd" in proc.stdout + proc.stderr  # the model table names the plugins
    best = cwd / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file()
    return best


# Reload under safe loading, predict, export to ONNX and run both. Boxes (pixels) and class scores (probabilities) are
# each compared against their own magnitude (``output_parts``) with the bounds ``detect`` checks its exports with:
# 1e-4 of it is far above float32 kernel differences between PyTorch and ONNX Runtime (measured 1.3e-7 relative for
# boxes) and far below what a wrongly exported layer gives. The 1e-6 floor covers ONNX Runtime's Sigmoid, an
# approximation with ~1.1e-7 absolute error (measured against float64 on this machine), which after one epoch
# (scores ~1e-4) is ~1e-3 of the scores themselves.
RELOAD_EXPORT = """
import json, numpy as np, onnxruntime, torch
from ultralytics import YOLO
from yolo_fasternet.apps.detection.runtime_choice import OUTPUT_ATOL, OUTPUT_RTOL
from yolo_fasternet.integration.output_parts import compare_outputs, layout_of
model = YOLO(BEST)
kinds = [type(m).__module__ for m in model.model.model]
model.predict(torch.rand(1, 3, 64, 64), verbose=False)
onnx_file = model.export(format="onnx", imgsz=64, device="cpu")
reference = YOLO(BEST).model.float().fuse().eval()
x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    expected = reference(x)
session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
parts = compare_outputs(got, expected, layout_of(reference), rel=OUTPUT_RTOL, atol=OUTPUT_ATOL)
errors = {d.name: [d.diff, d.magnitude, d.ok, str(d)] for d in parts}
print(json.dumps({"kinds": kinds, "shapes": [list(got[0].shape), list(expected[0].shape)], "errors": errors}))
"""


@pytest.mark.slow
def test_trained_catalogue_reloads_safely_and_exports_to_onnx_with_equal_outputs(trained, catalogue, tmp_path):
    env = {**with_sites(catalogue["site"]), "ULTRALYTICS_SAFE_LOAD": "1"}
    proc = run_python(f"BEST = {str(trained)!r}" + RELOAD_EXPORT, cwd=tmp_path, env=env)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(kind.startswith("yolo_block_catalogue.") for kind in result["kinds"]) == 14
    assert result["shapes"][0] == result["shapes"][1]
    assert list(result["errors"]) == ["boxes", "class scores"]
    for _, magnitude, ok, text in result["errors"].values():
        assert magnitude > 0 and ok, text


@pytest.mark.slow
def test_ddp_worker_script_rebuilds_the_catalogue_model(catalogue, coco8, tmp_path, monkeypatch):
    model = catalogue["yaml"].with_name("yolov8n-catalogue.yaml")
    worker = ddp_worker_model(model, coco8, catalogue["site"], DESCRIBE, tmp_path, monkeypatch)
    code = DESCRIBE + f"from ultralytics import YOLO; print(json.dumps(describe(YOLO({str(model)!r}).model)))"
    proc = run_python(code, cwd=tmp_path, env=with_sites(catalogue["site"]))
    built = json.loads(proc.stdout.strip().splitlines()[-1])
    assert worker == built and len(worker) == 27
    assert sum(path.startswith("yolo_block_catalogue.") for path, _ in worker) == 14
