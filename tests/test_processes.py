"""Every process Ultralytics starts: the stock `yolo` CLI, fresh checkpoint loads (also safe-load), DDP workers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import SHARED_DATASETS, run_python

YOLO_CLI = Path(sys.executable).with_name("yolo")
OUR_CLASS_PATHS = {
    "yolo_fasternet.nn.fasternet_block.FasterNetBlock",
    "yolo_fasternet.nn.patch_layers.PatchEmbed",
    "yolo_fasternet.nn.patch_layers.PatchMerging",
    "yolo_fasternet.nn.pconv.PConv",
    "yolo_fasternet.nn.fasternet_block.DropPath",
}


def yolo(*args: str, cwd: Path) -> str:
    """Run the stock `yolo` console script in a fresh process; return its combined output."""
    proc = subprocess.run([str(YOLO_CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """best.pt of a one-epoch `yolo train` of yolov8n-fasternet.yaml, run from an unrelated working directory."""
    data = SHARED_DATASETS / "coco8" / "coco8.yaml"
    if not data.is_file():
        pytest.skip(f"shared dataset not found: {data}")
    cwd = tmp_path_factory.mktemp("cli")
    out = yolo(
        "train", "model=yolov8n-fasternet.yaml", f"data={data}", "epochs=1", "imgsz=64", "batch=4", "workers=0",
        "device=cpu", f"project={cwd / 'runs'}", "name=train", "plots=False", cwd=cwd,
    )  # fmt: skip
    assert "yolo_fasternet.nn.patch_layers.PatchEmbed" in out  # the model table names the plugin modules
    best = cwd / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file(), out[-3000:]
    return best


@pytest.mark.range
@pytest.mark.slow
def test_cli_train_builds_the_bundled_yaml_at_the_named_scale(trained):
    ckpt = torch.load(trained, map_location="cpu", weights_only=False)
    model = ckpt["ema"] or ckpt["model"]
    assert model.yaml["scale"] == "n" and model.yaml["yaml_file"] == "yolov8n-fasternet.yaml"
    assert model.model[0].conv.out_channels == 40  # FasterNet-T0 stem width


@pytest.mark.slow
def test_checkpoint_pickles_the_pinned_class_paths(trained):
    # In a process where the plugin never registered its safe globals, all of its classes count as "unsafe".
    code = (
        f"import json, torch; print(json.dumps(torch.serialization.get_unsafe_globals_in_checkpoint({str(trained)!r})))"
    )
    out = run_python(code, env={"YOLO_FASTERNET_AUTOLOAD": "0"}).stdout
    stored = {g for g in json.loads(out.strip().splitlines()[-1]) if "fasternet" in g}
    assert stored and stored <= OUR_CLASS_PATHS, stored


@pytest.mark.slow
def test_cli_val_predict_export_work_on_best_pt(trained, coco8_yaml):
    cwd = trained.parents[3]
    image = next((coco8_yaml.parent / "images" / "val").iterdir())
    val = yolo(
        "val", f"model={trained}", f"data={coco8_yaml}", "imgsz=64", "batch=4", "workers=0", "plots=False", cwd=cwd
    )
    assert re.search(r"all\s+4\s+\d+", val), val[-2000:]
    pred = yolo("predict", f"model={trained}", f"source={image}", "imgsz=64", "save=False", cwd=cwd)
    assert "Speed:" in pred
    yolo("export", f"model={trained}", "format=onnx", "imgsz=64", cwd=cwd)
    onnx_file = trained.with_suffix(".onnx")
    assert onnx_file.is_file()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: torch.rand(1, 3, 64, 64).numpy()})
    assert out.shape == (1, 84, 84)


@pytest.mark.range
@pytest.mark.slow
@pytest.mark.parametrize("autoload", ["1", "0"])
def test_best_pt_loads_in_a_fresh_process_without_an_import(trained, autoload):
    code = f"""
from ultralytics import YOLO
import torch
model = YOLO({str(trained)!r})
result = model.predict(torch.rand(1, 3, 64, 64), verbose=False)[0]
print(type(model.model.model[1]).__module__, tuple(result.boxes.shape))
"""
    out = run_python(code, env={"YOLO_FASTERNET_AUTOLOAD": autoload}).stdout
    assert "yolo_fasternet.nn.fasternet_block" in out


@pytest.mark.slow  # not in the range legs: ULTRALYTICS_SAFE_LOAD is newer than Ultralytics 8.3.0
def test_best_pt_loads_under_ultralytics_safe_load(trained):
    code = f"""
from ultralytics import YOLO
from ultralytics.nn.tasks import torch_safe_load
ckpt, _ = torch_safe_load({str(trained)!r}, safe_only=True)
model = YOLO({str(trained)!r})
print("loaded", type(ckpt["model"].model[0]).__name__)
"""
    out = run_python(code, env={"ULTRALYTICS_SAFE_LOAD": "1"}).stdout
    assert "loaded PatchEmbed" in out
    # Control: without the plugin registered (autoload off, nothing imported) restricted loading refuses the file.
    with pytest.raises(AssertionError, match="outside the supported"):
        run_python(code, env={"ULTRALYTICS_SAFE_LOAD": "1", "YOLO_FASTERNET_AUTOLOAD": "0"})


@pytest.fixture(scope="module")
def legacy_checkpoint(trained, tmp_path_factory) -> Path:
    """``trained`` re-saved with the class paths of the flat 0.1.0 layout (``yolo_fasternet.pconv.PConv``, ...)."""
    from yolo_fasternet.integration.legacy_paths import LEGACY_MODULES
    from yolo_fasternet.integration.registry import CHECKPOINT_CLASSES

    current_to_legacy = {new: old for old, new in LEGACY_MODULES.items()}
    ckpt = torch.load(trained, map_location="cpu", weights_only=False)
    path = tmp_path_factory.mktemp("legacy") / "legacy.pt"
    moved = [cls for cls in CHECKPOINT_CLASSES if cls.__module__ in current_to_legacy]
    try:  # pickle stores cls.__module__; the old module names resolve to the same classes through the aliases
        for cls in moved:
            cls.__module__ = current_to_legacy[cls.__module__]
        torch.save(ckpt, path)
    finally:
        for cls in moved:
            cls.__module__ = LEGACY_MODULES[cls.__module__]
    return path


@pytest.mark.slow
def test_checkpoints_of_the_flat_layout_still_load(legacy_checkpoint):
    listed = (
        "import json, torch; "
        f"print(json.dumps(torch.serialization.get_unsafe_globals_in_checkpoint({str(legacy_checkpoint)!r})))"
    )
    out = run_python(listed, env={"YOLO_FASTERNET_AUTOLOAD": "0"}).stdout
    stored = {g for g in json.loads(out.strip().splitlines()[-1]) if "fasternet" in g}
    assert stored == {path.replace(".nn.", ".") for path in OUR_CLASS_PATHS}  # really the old paths
    code = f"""
from ultralytics import YOLO
import torch
model = YOLO({str(legacy_checkpoint)!r})
result = model.predict(torch.rand(1, 3, 64, 64), verbose=False)[0]
print("loaded", type(model.model.model[1]).__module__, tuple(result.boxes.shape))
"""
    for env in ({}, {"ULTRALYTICS_SAFE_LOAD": "1"}):
        assert "loaded yolo_fasternet.nn.fasternet_block" in run_python(code, env=env).stdout, env


@pytest.mark.slow
@pytest.mark.parametrize("model_kind", ["yaml", "module"])
def test_ddp_worker_script_rebuilds_a_plugin_model(tmp_path, coco8_yaml, model_kind):
    """Run the model-building part of the script Ultralytics generates for DDP workers, in a fresh process."""
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.dist import generate_ddp_file

    overrides = dict(model="yolov8n-fasternet.yaml", data=str(coco8_yaml), epochs=1, imgsz=64, device="cpu")
    trainer = DetectionTrainer(overrides={**overrides, "workers": 0, "project": str(tmp_path), "name": "ddp"})
    if model_kind == "module":  # what YOLO(...).train() hands over: the built model, pickled by class reference
        trainer.model = trainer.get_model(cfg="yolov8n-fasternet.yaml", verbose=False)
    script_file = Path(generate_ddp_file(trainer))
    try:
        script = script_file.read_text()
        assert "yolo_fasternet" not in script and "trainer.train()" in script
        probe = "trainer.setup_model(); import json; m = trainer.model; print(json.dumps([type(m.model[0]).__module__, sum(p.numel() for p in m.parameters())]))"  # noqa: E501
        worker = tmp_path / "ddp_worker.py"
        worker.write_text(script.replace("trainer.train()", probe))
        results = {}
        for autoload in ("1", "0"):
            env = {**os.environ, "YOLO_FASTERNET_AUTOLOAD": autoload}
            proc = subprocess.run([sys.executable, str(worker)], capture_output=True, text=True, env=env, timeout=600)
            results[autoload] = proc
        assert results["1"].returncode == 0, results["1"].stderr[-3000:]
        module, params = json.loads(results["1"].stdout.strip().splitlines()[-1])
        assert module == "yolo_fasternet.nn.patch_layers"
        assert params == sum(
            p.numel() for p in trainer.get_model(cfg="yolov8n-fasternet.yaml", verbose=False).parameters()
        )
        if model_kind == "yaml":  # control: the worker only rebuilds from the YAML because the autoloader registered
            assert results["0"].returncode != 0 and "yolov8-fasternet.yaml" in results["0"].stderr
    finally:
        script_file.unlink(missing_ok=True)
        script_file.with_suffix(".pt").unlink(missing_ok=True)


@pytest.mark.range
def test_autoload_imports_nothing_heavy_at_startup():
    code = "import sys; print(json.dumps([m in sys.modules for m in ('torch', 'ultralytics', 'yolo_fasternet', 'yolo_fasternet_autoload')]))"  # noqa: E501
    out = run_python("import json; " + code).stdout
    assert json.loads(out) == [False, False, False, True]


def test_autoload_registers_when_ultralytics_is_imported():
    out = run_python("from ultralytics import YOLO; import sys; print('yolo_fasternet' in sys.modules)").stdout
    assert out.strip() == "True"
    out = run_python(
        "import ultralytics, sys; print('yolo_fasternet' in sys.modules)", env={"YOLO_FASTERNET_AUTOLOAD": "0"}
    )
    assert out.stdout.strip() == "False"
