"""Registration into stock Ultralytics: YAML names, scaling identical to the built-ins, stock models untouched."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import ultralytics
import yaml
from torch import nn
from ultralytics.nn import tasks
from ultralytics.nn.tasks import DetectionModel

import yolo_fasternet
from yolo_fasternet import C2f_Faster, FasterNetBlock, ModelYamlError, PatchEmbed, RegistrationError
from yolo_fasternet.integration.parse_model_patch import patched_parse_model

from conftest import REPO, run_python

pytestmark = pytest.mark.registration
SCALES = "nsmlx"


def _build(name_or_dict, scale: str | None = None) -> DetectionModel:
    if scale is not None:
        d = copy.deepcopy(name_or_dict) if isinstance(name_or_dict, dict) else tasks.yaml_model_load(name_or_dict)
        d["scale"] = scale
        name_or_dict = d
    return DetectionModel(name_or_dict, verbose=False)


def _stages(model: DetectionModel) -> list[int]:
    """Number of FasterNet blocks in each backbone stage row."""
    return [len(m) if isinstance(m, nn.Sequential) else 1 for m in model.model if "FasterNetBlock" in m.type]


def test_plugin_names_resolve_in_ultralytics():
    for name in ("PConv", "FasterNetBlock", "PatchEmbed", "PatchMerging", "C2f_Faster"):
        assert getattr(tasks, name) is getattr(yolo_fasternet, name)
    assert yolo_fasternet.is_registered()


def test_register_is_idempotent():
    parse_model, yaml_model_load = tasks.parse_model, tasks.yaml_model_load
    yolo_fasternet.register()
    yolo_fasternet.register()
    assert tasks.parse_model is parse_model and tasks.yaml_model_load is yaml_model_load
    assert not hasattr(tasks.parse_model.__wrapped__, "__wrapped__")  # wrapped once, not twice


@pytest.mark.parametrize("scale", SCALES)
def test_bundled_yaml_resolves_by_bare_name_with_its_scale(scale):
    d = tasks.yaml_model_load(f"yolov8{scale}-fasternet.yaml")
    assert d["scale"] == scale and d["yaml_file"] == f"yolov8{scale}-fasternet.yaml"
    assert "PatchEmbed" in json.dumps(d["backbone"])


@pytest.mark.parametrize(
    "scale, width, depths, act",
    [
        ("n", 40, [1, 2, 8, 2], nn.GELU),  # FasterNet-T0
        ("s", 64, [1, 2, 8, 2], nn.GELU),  # FasterNet-T1
        ("m", 96, [1, 2, 8, 2], nn.ReLU),  # FasterNet-T2
        ("l", 128, [1, 3, 13, 3], nn.ReLU),  # FasterNet-S width; depths as close as depth_multiple allows
        ("x", 144, [1, 4, 18, 4], nn.ReLU),  # FasterNet-M width; likewise
    ],
)
def test_fasternet_scales_reproduce_the_paper_variants(scale, width, depths, act):
    model = _build(f"yolov8{scale}-fasternet.yaml")
    assert isinstance(model.model[0], PatchEmbed) and model.model[0].conv.out_channels == width
    assert model.model[0].conv.kernel_size == (4, 4)
    assert _stages(model) == depths
    widths = [m.conv.out_channels for m in model.model if m.type.endswith(("PatchEmbed", "PatchMerging"))]
    assert widths == [width, 2 * width, 4 * width, 8 * width]
    blocks = [b for b in model.modules() if isinstance(b, FasterNetBlock)]
    assert blocks and all(isinstance(b.expand.act, act) for b in blocks)
    assert all(b.expand.conv.out_channels == 2 * b.expand.conv.in_channels for b in blocks)  # mlp_ratio 2


@pytest.mark.parametrize("scale", SCALES)
def test_c2f_faster_scales_like_c2f(scale):
    ours, stock = _build("yolov8-c2f-faster.yaml", scale), _build("yolov8.yaml", scale)
    assert len(ours.model) == len(stock.model)
    for a, b in zip(ours.model, stock.model):
        if isinstance(a, C2f_Faster):
            assert b.type.endswith(".C2f") and len(a.m) == len(b.m), (a.i, scale)
            assert a.cv1.conv.weight.shape == b.cv1.conv.weight.shape
            assert a.cv2.conv.weight.shape == b.cv2.conv.weight.shape
        else:
            assert a.type == b.type and a.np == b.np, (a.i, a.type, scale)
    assert ours.stride.tolist() == stock.stride.tolist() == [8.0, 16.0, 32.0]


@pytest.mark.parametrize("module", ["PConv", "FasterNetBlock", "PatchEmbed", "PatchMerging"])
@pytest.mark.parametrize("scale", SCALES)
def test_conv_like_modules_scale_width_like_conv(module, scale):
    """Each Conv-like plugin row gets exactly the output width a Conv row with the same c2 gets (max_channels too)."""
    scales = {"n": [0.33, 0.25, 1024], "s": [0.33, 0.5, 1024], "m": [0.67, 0.75, 768], "l": [1.0, 1.0, 96]}
    scales["x"] = [1.0, 1.25, 64]

    def model(row):
        head = [[-1, 1, "Conv", [256, 1, 1]], [-1, 1, "nn.AdaptiveAvgPool2d", [1]]]
        d = {"nc": 2, "scales": scales, "scale": scale, "backbone": [[-1, 1, "Conv", [128, 3, 2]], row], "head": head}
        return tasks.parse_model(copy.deepcopy(d), ch=3, verbose=False)[0]

    same_width = module in ("PConv", "FasterNetBlock")
    ours = model([-1, 1, module, [128 if same_width else 192]])
    ref = model([-1, 1, "Conv", [128 if same_width else 192, 1, 1]])
    out = [m.conv.out_channels if hasattr(m, "conv") else None for m in (ours[1], ref[1])]
    if module == "PConv":
        out[0] = ours[1].conv.out_channels + ours[1].dim_untouched
    elif module == "FasterNetBlock":
        out[0] = ours[1].project.out_channels
    assert out[0] == out[1]


def test_fasternet_rows_repeat_and_depth_scale_like_conv_rows():
    d = tasks.yaml_model_load("yolov8l-fasternet.yaml")  # depth 1.625: 2 -> 3, 8 -> 13, 1 stays 1
    model = DetectionModel(d, verbose=False)
    assert _stages(model) == [1, 3, 13, 3]
    assert all(isinstance(b, FasterNetBlock) for b in model.model[5])


def test_model_table_shows_plugin_names():
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger = logging.getLogger("ultralytics")
    logger.addHandler(handler)
    try:
        DetectionModel("yolov8n-fasternet.yaml", verbose=True)
    finally:
        logger.removeHandler(handler)
    table = "\n".join(records)
    for path in ("patch_layers.PatchEmbed", "fasternet_block.FasterNetBlock", "patch_layers.PatchMerging"):
        assert f"yolo_fasternet.nn.{path}" in table


def test_stock_models_build_identically_with_and_without_the_plugin(tmp_path):
    """Every model YAML shipped with Ultralytics: same parameter count (or same failure) with the plugin active."""
    script = """
import json, sys, warnings
from pathlib import Path
import ultralytics
from ultralytics.nn.tasks import yaml_model_load, guess_model_task
from ultralytics.nn import tasks
warnings.filterwarnings("ignore")
if sys.argv[1] == "plugin":
    import yolo_fasternet
assert ("yolo_fasternet" in sys.modules) == (sys.argv[1] == "plugin")
from ultralytics import YOLO
out = {}
for f in sorted((Path(ultralytics.__file__).parent / "cfg" / "models").rglob("*.yaml")):
    try:
        m = YOLO(f, task=guess_model_task(yaml_model_load(f))).model
        out[str(f.relative_to(f.parents[2]))] = sum(p.numel() for p in m.parameters())
    except Exception as e:
        out[str(f.relative_to(f.parents[2]))] = type(e).__name__
print(json.dumps(out))
"""
    (tmp_path / "build_all.py").write_text(script)
    results = {}
    for mode in ("stock", "plugin"):
        code = (
            f"import sys, runpy; sys.argv = ['build_all', '{mode}']; runpy.run_path({str(tmp_path / 'build_all.py')!r})"
        )
        proc = run_python(code, cwd=tmp_path, env={"YOLO_FASTERNET_AUTOLOAD": "0"})
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results["stock"]) >= 40  # 45 in 8.3.0, 80+ in 8.4.x
    assert sum(isinstance(v, int) for v in results["stock"].values()) >= 40
    assert results["plugin"] == results["stock"]


def test_registration_fails_loudly_when_parse_model_changes_shape():
    def parse_model(d, ch, verbose=True):  # no scaling sets at all
        return d

    with pytest.raises(RegistrationError, match=ultralytics.__version__.replace(".", r"\.")) as e:
        patched_parse_model(parse_model, tasks, {"C2f": ["C2f_Faster"]}, ultralytics.__version__)
    assert "C2f" in str(e.value)


def test_registration_fails_loudly_without_source():
    fn = eval("lambda d, ch, verbose=True: d")  # noqa: S307 - a function whose source cannot be read
    with pytest.raises(RegistrationError, match="source"):
        patched_parse_model(fn, tasks, {"Conv": ["PConv"]}, "9.9.9")


def _yaml_with_row(row, index=2) -> dict:
    d = yaml.safe_load((REPO / "cfg" / "yolov8-fasternet.yaml").read_text())
    d["backbone"][index] = row
    d["scale"] = "n"
    return d


def test_unknown_module_names_the_layer_and_close_matches():
    d = yaml.safe_load((REPO / "cfg" / "yolov8-c2f-faster.yaml").read_text())
    d["backbone"][4][2] = "C2f_Fastr"
    with pytest.raises(ModelYamlError) as e:
        DetectionModel(d, verbose=False)
    msg = str(e.value)
    assert "layer 4" in msg and "'C2f_Fastr'" in msg and "C2f_Faster" in msg


def test_impossible_arguments_name_the_layer_and_values():
    d = _yaml_with_row([-1, 1, "FasterNetBlock", [64, 100]], index=1)  # n_div=100 > 40 channels
    with pytest.raises(ValueError) as e:
        DetectionModel(d, verbose=False)
    msg = str(e.value)
    assert "layer 1" in msg and "FasterNetBlock" in msg and "n_div=100" in msg and "c1=40" in msg


def test_residual_with_different_channels_names_the_layer():
    d = _yaml_with_row([-1, 1, "FasterNetBlock", [96]], index=1)  # 40 in, 64 out at scale n
    with pytest.raises(ValueError, match=r"layer 1 \(FasterNetBlock\).*c1=40, c2=64"):
        DetectionModel(d, verbose=False)


def test_missing_yaml_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        tasks.yaml_model_load("yolov8n-fasternt.yaml")
    msg = str(e.value)
    assert "yolov8n-fasternt.yaml" in msg and str(tmp_path) in msg and str(yolo_fasternet.cfg_dir()) in msg


def test_local_file_wins_over_bundled_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = yaml.safe_load((REPO / "cfg" / "yolov8-fasternet.yaml").read_text())
    d["nc"] = 3
    Path("yolov8-fasternet.yaml").write_text(yaml.safe_dump(d))
    assert tasks.yaml_model_load("yolov8-fasternet.yaml")["nc"] == 3


def test_checkpoint_class_paths_are_pinned():
    """Checkpoints pickle these paths: renaming or moving a class orphans every saved model."""
    from yolo_fasternet.integration.registry import CHECKPOINT_CLASSES

    assert sorted(f"{c.__module__}.{c.__qualname__}" for c in CHECKPOINT_CLASSES) == [
        "yolo_fasternet.nn.c2f_faster.C2f_Faster",
        "yolo_fasternet.nn.c2f_spconv.C2f_SPConv",
        "yolo_fasternet.nn.c3k2_faster.C3k2_Faster",
        "yolo_fasternet.nn.c3k2_faster.C3k_Faster",
        "yolo_fasternet.nn.c3k2_spconv.C3k2_SPConv",
        "yolo_fasternet.nn.c3k2_spconv.C3k_SPConv",
        "yolo_fasternet.nn.fasternet_block.DropPath",
        "yolo_fasternet.nn.fasternet_block.FasterNetBlock",
        "yolo_fasternet.nn.partialnet_block.PartialNetBlock",
        "yolo_fasternet.nn.patch_layers.PatchEmbed",
        "yolo_fasternet.nn.patch_layers.PatchMerging",
        "yolo_fasternet.nn.patconv.PATConv",
        "yolo_fasternet.nn.pconv.PConv",
        "yolo_fasternet.nn.rpe_attention.LayerNorm2d",
        "yolo_fasternet.nn.rpe_attention.RPEAttention",
        "yolo_fasternet.nn.saconv.SAConv",
        "yolo_fasternet.nn.spconv.SPConv",
        "yolo_fasternet.nn.timm_backbone.FeatureIndex",
        "yolo_fasternet.nn.timm_backbone.TimmBackbone",
    ]


def test_importing_the_package_in_a_fresh_process_registers():
    code = "import yolo_fasternet; from ultralytics.nn import tasks; print(tasks.C2f_Faster.__module__)"
    out = run_python(code, env={"YOLO_FASTERNET_AUTOLOAD": "0"}).stdout
    assert "yolo_fasternet.nn.c2f_faster" in out
