"""The open plugin API: register_module, entry-point plugins in every process, failure isolation, the listing.

The plugin under test is examples/yolo-example-block (C2fECA, like C2f), copied to a temp dir and pip-installed into
a target dir that goes on PYTHONPATH with its dist-info, as a user's `pip install` would put it on sys.path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from torch import nn
from ultralytics.nn import tasks
from ultralytics.nn.modules import C2f

import yolo_fasternet
from yolo_fasternet import RegistrationError, register_module
from yolo_fasternet.integration.missing_plugin import recorded_distributions
from yolo_fasternet.integration.registration import original_parse_model, register_modules, supported_likes
from yolo_fasternet.integration.registry import PluginModule

from conftest import REPO, SHARED_DATASETS, run_checked, run_python

EXAMPLE = REPO / "examples" / "yolo-example-block"
YOLO_CLI = Path(sys.executable).with_name("yolo")
# Prints, for each layer of a model, its type and (for C2f and C2fECA's inner C2f) repeats and conv shapes.
DESCRIBE = """
import json
from torch import nn
def describe(model):
    rows = []
    for layer in model.model:
        c2f = getattr(layer, "c2f", layer)
        if isinstance(getattr(c2f, "m", None), nn.ModuleList):
            shape = [len(c2f.m), list(c2f.cv1.conv.weight.shape), list(c2f.cv2.conv.weight.shape)]
        else:
            shape = None
        rows.append([type(layer).__module__ + "." + type(layer).__name__, shape])
    return rows
"""
CLASHING_PACKAGE = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling>=1.21"]
        build-backend = "hatchling.build"
        [project]
        name = "zz-clashing-blocks"
        version = "0.1.0"
        [project.entry-points."yolo_fasternet.modules"]
        C2fECA = "zz_clashing_blocks:C2fECA"
        OddBlock = "zz_clashing_blocks:OddBlock"
        Missing = "zz_clashing_blocks.missing:Missing"
        [tool.hatch.build.targets.wheel]
        packages = ["zz_clashing_blocks"]
        """,
    "zz_clashing_blocks/__init__.py": """
        from torch import nn
        class C2fECA(nn.Module):  # the YAML name yolo-example-block already has
            yolo_like = "C2f"
        class OddBlock(nn.Module):
            yolo_like = "NoSuchBuiltin"
        """,
}


def pip_install(source: Path, target: Path) -> Path:
    """``pip install --target`` (no network: no deps, the build backend from this venv)."""
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", "--target", str(target)]
    run_checked([*argv, str(source)])
    return target


def with_sites(*sites: Path) -> dict:
    """Environment for a fresh process that sees the given install dirs (and this checkout's PYTHONPATH)."""
    return {"PYTHONPATH": os.pathsep.join([*map(str, sites), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> dict:
    """examples/yolo-example-block copied to a temp dir and installed there: {"yamls": dir, "site": install dir}."""
    root = tmp_path_factory.mktemp("example")
    source = root / "source"
    shutil.copytree(EXAMPLE, source)  # build outside the checkout
    return {"yamls": source, "site": pip_install(source, root / "site")}


@pytest.fixture(scope="module")
def clashing_site(tmp_path_factory) -> Path:
    """A second plugin distribution: one name clash, one unknown like, one module that does not import."""
    root = tmp_path_factory.mktemp("clashing")
    for name, text in CLASHING_PACKAGE.items():
        (root / "source" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "source" / name).write_text(textwrap.dedent(text))
    return pip_install(root / "source", root / "site")


@pytest.fixture(scope="module")
def built(example, tmp_path_factory) -> dict:
    """Layer descriptions of yolov8{n,s}-eca.yaml and stock yolov8{n,s}.yaml, built in a fresh process elsewhere."""
    code = DESCRIBE + textwrap.dedent(f"""
        from ultralytics import YOLO
        out = {{}}
        for scale in "ns":
            out[scale] = describe(YOLO({str(example["yamls"])!r} + f"/yolov8{{scale}}-eca.yaml").model)
            out["stock-" + scale] = describe(YOLO(f"yolov8{{scale}}.yaml").model)
        print(json.dumps(out))
        """)
    cwd = tmp_path_factory.mktemp("foreign")
    return json.loads(run_python(code, cwd=cwd, env=with_sites(example["site"])).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(example, coco8_yaml_module, tmp_path_factory) -> Path:
    """best.pt of a one-epoch stock `yolo train` of yolov8n-eca.yaml, run from an unrelated directory."""
    cwd = tmp_path_factory.mktemp("cli")
    argv = [str(YOLO_CLI), "train", f"model={example['yamls'] / 'yolov8n-eca.yaml'}", f"data={coco8_yaml_module}"]
    argv += ["epochs=1", "imgsz=64", "batch=4", "workers=0", "device=cpu", f"project={cwd / 'runs'}", "name=train"]
    proc = run_checked([*argv, "plots=False"], cwd=cwd, env=with_sites(example["site"]), timeout=900)
    assert "yolo_example_block.blocks.C2fECA" in proc.stdout + proc.stderr  # the model table names the plugin
    best = cwd / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file()
    return best


@pytest.fixture(scope="module")
def coco8_yaml_module() -> Path:
    path = SHARED_DATASETS / "coco8" / "coco8.yaml"
    if not path.is_file():
        pytest.skip(f"shared dataset not found: {path}")
    return path


# --- register_module in this process ----------------------------------------------------------------------------


def _c2f_like(name: str, module: str = __name__) -> type:
    """A fresh C2f-like class called ``name`` (C2f's constructor, C2f inside)."""

    def __init__(self, c1, c2, n=1, shortcut=False, g=1, e=0.5):  # noqa: N807
        nn.Module.__init__(self)
        self.c2f = C2f(c1, c2, n, shortcut, g, e)

    return type(
        name, (nn.Module,), {"__init__": __init__, "forward": lambda self, x: self.c2f(x), "__module__": module}
    )


def _build_row(module: str, scale: str) -> nn.Module:
    """Layer 1 of a two-row model at ``scale`` (yolov8's scales), the row ``[-1, 3, module, [256, True]]``."""
    scales = {"n": [0.33, 0.25, 1024], "s": [0.33, 0.5, 1024], "m": [0.67, 0.75, 768], "l": [1.0, 1.0, 512]}
    backbone = [[-1, 1, "Conv", [128, 3, 2]], [-1, 3, module, [256, True]]]
    d = {"nc": 2, "scales": scales, "scale": scale, "backbone": backbone, "head": [[-1, 1, "nn.Identity", []]]}
    return tasks.parse_model(d, ch=3, verbose=False)[0][1]


@pytest.mark.registration
@pytest.mark.parametrize("scale", "nsml")
def test_register_module_as_a_call_scales_like_the_builtin(scale):
    cls = register_module(_c2f_like("ApiCallBlock"), like="C2f")
    ours, stock = _build_row("ApiCallBlock", scale), _build_row("C2f", scale)
    assert isinstance(ours, cls) and tasks.ApiCallBlock is cls
    assert len(ours.c2f.m) == len(stock.m)
    assert ours.c2f.cv1.conv.weight.shape == stock.cv1.conv.weight.shape
    assert ours.c2f.cv2.conv.weight.shape == stock.cv2.conv.weight.shape


@pytest.mark.registration
def test_register_module_as_a_decorator_returns_the_class():
    @register_module(like="C2f")
    class ApiDecoratedBlock(_c2f_like("Base")):
        pass

    assert tasks.ApiDecoratedBlock is ApiDecoratedBlock
    assert any(e.cls is ApiDecoratedBlock and e.like == "C2f" for e in yolo_fasternet.registered_modules())


@pytest.mark.registration
def test_like_can_come_from_the_class_attribute():
    cls = _c2f_like("ApiAttributeBlock")
    cls.yolo_like = "C2f"
    register_module(cls)
    assert len(_build_row("ApiAttributeBlock", "n").c2f.m) == len(_build_row("C2f", "n").m)


@pytest.mark.registration
def test_register_module_twice_changes_nothing():
    cls = register_module(_c2f_like("ApiTwiceBlock"), like="C2f")
    parse_model = tasks.parse_model
    assert register_module(cls, like="C2f") is cls
    assert tasks.parse_model is parse_model  # not recompiled, not wrapped again


@pytest.mark.registration
def test_late_registration_recompiles_from_ultralytics_original():
    original = original_parse_model(tasks)
    before = tasks.parse_model
    register_module(_c2f_like("ApiLateBlock"), like="C2f")
    assert tasks.parse_model is not before and original_parse_model(tasks) is original
    assert not hasattr(tasks.parse_model.__wrapped__, "__wrapped__")  # one rewrite of the original, not stacked
    assert type(_build_row("C2f_Faster", "n")).__name__ == "C2f_Faster"  # earlier registrations still resolve


@pytest.mark.registration
def test_unknown_like_is_one_line_naming_the_class_the_like_and_the_supported_ones():
    with pytest.raises(RegistrationError) as e:
        register_module(_c2f_like("ApiBadLikeBlock"), like="C2F")
    message = str(e.value)
    assert "\n" not in message and "ApiBadLikeBlock" in message and "'C2F'" in message
    assert "C2f, " in message and "Conv, " in message  # the supported likes
    assert "ApiBadLikeBlock" not in vars(tasks)


@pytest.mark.registration
def test_likes_are_the_classes_parse_model_treats_specially():
    likes = supported_likes()
    assert {"Conv", "C2f", "C3", "C3k2", "SPPF", "Bottleneck", "Detect", "Concat"} <= likes
    assert "Proto" not in likes  # a module parse_model gives its arguments verbatim


@pytest.mark.registration
def test_a_name_clash_with_a_builtin_is_refused():
    with pytest.raises(RegistrationError, match="name clash with Ultralytics' own 'C2f'"):
        register_module(_c2f_like("C2f"), like="C2f")
    assert tasks.C2f is C2f


@pytest.mark.registration
def test_a_name_clash_between_plugins_is_refused_not_shadowed():
    first = register_module(_c2f_like("ApiSharedName", module="first_pkg.blocks"), like="C2f", origin="first-pkg")
    with pytest.raises(
        RegistrationError, match="name clash with first_pkg.blocks.ApiSharedName, registered by first-pkg"
    ):
        register_module(_c2f_like("ApiSharedName", module="second_pkg.blocks"), like="C2f")
    assert tasks.ApiSharedName is first


@pytest.mark.registration
def test_a_refused_batch_registers_nothing():
    good, bad = _c2f_like("ApiBatchGood"), _c2f_like("ApiBatchBad")
    with pytest.raises(RegistrationError, match="ApiBatchBad"):
        register_modules([PluginModule(good, like="C2f"), PluginModule(bad, like="NoSuchBuiltin")])
    assert "ApiBatchGood" not in vars(tasks)
    assert all(e.cls is not good for e in yolo_fasternet.registered_modules())


# --- an installed plugin distribution in every process --------------------------------------------------------


@pytest.mark.registration
@pytest.mark.parametrize("scale", "ns")
def test_entry_point_plugin_builds_with_c2f_widths_and_depths(built, scale):
    ours, stock = built[scale], built[f"stock-{scale}"]
    assert len(ours) == len(stock)
    plugin_rows = [i for i, (kind, _) in enumerate(ours) if kind == "yolo_example_block.blocks.C2fECA"]
    assert plugin_rows == [i for i, (kind, _) in enumerate(stock) if kind.endswith(".C2f")] and len(plugin_rows) == 8
    assert [shape for _, shape in ours] == [shape for _, shape in stock]  # repeats and conv shapes, row by row


@pytest.mark.slow
def test_stock_yolo_train_trains_the_plugin_model_with_c2f_widths_and_depths(trained, built, example):
    load = f"torch.load({str(trained)!r}, weights_only=False)['model']"
    code = DESCRIBE + f"import torch; print(json.dumps(describe({load})))"
    out = run_python(code, env=with_sites(example["site"])).stdout
    assert json.loads(out.strip().splitlines()[-1]) == built["n"]


@pytest.mark.slow
def test_checkpoint_records_the_plugin_distribution(trained):
    assert recorded_distributions(trained) == {"yolo_example_block": "yolo-example-block"}


@pytest.mark.slow
@pytest.mark.parametrize("safe_load", ["0", "1"])
def test_best_pt_reloads_in_a_fresh_process(trained, example, safe_load):
    code = f"""
from ultralytics import YOLO
import torch
model = YOLO({str(trained)!r})
result = model.predict(torch.rand(1, 3, 64, 64), verbose=False)[0]
print("loaded", type(model.model.model[2]).__module__)
"""
    out = run_python(code, env={**with_sites(example["site"]), "ULTRALYTICS_SAFE_LOAD": safe_load}).stdout
    assert "loaded yolo_example_block.blocks" in out


def ddp_worker_model(model_yaml: Path, data: Path, site: Path, describe: str, tmp_path: Path, monkeypatch):
    """Run the model-building part of the script Ultralytics writes for DDP workers in a fresh process.

    ``describe`` defines ``describe(model)`` (JSON-able); returns what it gave for the model the worker built. Up to
    8.4.135 the worker rebuilds the model from the YAML; later ones unpickle the trainer: both need the plugin there.
    """
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.dist import generate_ddp_file

    monkeypatch.syspath_prepend(str(site))  # installed: on the sys.path the script passes on (8.4.140+)
    overrides = dict(model=str(model_yaml), data=str(data), epochs=1, imgsz=64, device="cpu", workers=0)
    trainer = DetectionTrainer(overrides={**overrides, "project": str(tmp_path), "name": "ddp"})
    script_file = Path(generate_ddp_file(trainer))
    try:
        # In place of `trainer.train()` (8.3.x writes `results = trainer.train()`): build the model, describe it.
        probe = "None" + describe + "trainer.setup_model(); print(json.dumps(describe(trainer.model)))"
        worker = tmp_path / "ddp_worker.py"
        worker.write_text(script_file.read_text().replace("trainer.train()", probe.replace("\n", "\n    ")))
        proc = run_checked([sys.executable, str(worker)], env=with_sites(site))
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        script_file.unlink(missing_ok=True)
        script_file.with_suffix(".pt").unlink(missing_ok=True)


@pytest.mark.slow
def test_ddp_worker_script_rebuilds_the_plugin_model(example, built, coco8_yaml_module, tmp_path, monkeypatch):
    model = example["yamls"] / "yolov8n-eca.yaml"
    worker = ddp_worker_model(model, coco8_yaml_module, example["site"], DESCRIBE, tmp_path, monkeypatch)
    assert worker == built["n"]


@pytest.mark.registration
def test_a_clashing_or_broken_plugin_warns_and_the_first_keeps_working(example, clashing_site, tmp_path):
    code = DESCRIBE + textwrap.dedent(f"""
        from ultralytics import YOLO
        print(json.dumps([describe(YOLO({str(example["yamls"] / "yolov8n-eca.yaml")!r}).model),
                          describe(YOLO("yolov8n.yaml").model)]))
        """)
    proc = run_python(code, cwd=tmp_path, env=with_sites(example["site"], clashing_site))
    ours, stock = json.loads(proc.stdout.strip().splitlines()[-1])
    assert ours[2][0] == "yolo_example_block.blocks.C2fECA" and stock[2][0].endswith(".C2f")
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING yolo-fasternet:")]
    assert len(warnings) == 3 and all("'zz-clashing-blocks'" in line for line in warnings), proc.stderr
    reasons = " | ".join(warnings)
    assert "C2fECA = zz_clashing_blocks:C2fECA" in reasons
    assert "name clash with yolo_example_block.blocks.C2fECA, registered by yolo-example-block" in reasons
    assert "unknown like" in reasons and "import failed: ModuleNotFoundError" in reasons


@pytest.mark.registration
def test_modules_command_lists_the_plugin_with_its_yaml_arguments(example):
    argv = [sys.executable, "-m", "yolo_fasternet", "modules"]
    out = run_checked(argv, env=with_sites(example["site"])).stdout
    row = next(line for line in out.splitlines() if line.startswith("C2fECA "))
    assert row.split()[1:5] == ["like", "C2f", "yolo-example-block", "[c2,"]
    assert "[c2, shortcut=False, g=1, e=0.5, k=3]" in row
    assert "C2f_Faster" in out and "Ultralytics " in out.splitlines()[0]


@pytest.mark.slow
def test_loading_without_the_plugin_names_the_distribution_to_install(trained, tmp_path):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    detect = subprocess.run(  # the plugin's install dir is not on the path here
        [sys.executable, "-m", "yolo_fasternet", "detect", "--weights", str(trained), "--source", str(image)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    (error,) = detect.stderr.strip().splitlines()  # before Ultralytics warns and tries to pip-install the import name
    assert detect.returncode == 1, detect.stderr[-3000:]
    assert error.startswith("yolo-fasternet detect: error:") and "pip install yolo-example-block" in error
    assert "yolo_example_block" in error
    listing = subprocess.run(
        [sys.executable, "-m", "yolo_fasternet", "modules", "--checkpoint", str(trained)],
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 1 and "yolo-example-block  NO" in listing.stdout
