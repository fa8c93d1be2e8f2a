"""``backbone_weights:`` in a model YAML: ImageNet weights whenever it is built (stock CLI, DDP), never on reload."""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import ClassificationModel, DetectionModel
from ultralytics.utils import LOGGER

from yolo_fasternet.cli import main as cli_main
from yolo_fasternet.pretrained import BackboneWeightsNotFoundError, find_backbone, load_backbone_weights, manifest

from conftest import REPO, assert_close_to_magnitude, randomize_batchnorm, run_checked

timm = pytest.importorskip("timm")

BACKBONE = tuple(f"model.{i}." for i in range(8))  # yolov8-fasternet: layers 0-7
YOLO_CLI = Path(sys.executable).with_name("yolo")


@pytest.fixture(scope="module")
def t0_file(tmp_path_factory) -> Path:
    """A FasterNet-T0 checkpoint (timm layout) with random weights and BatchNorm statistics."""
    torch.manual_seed(11)
    path = tmp_path_factory.mktemp("imagenet") / "fasternet_t0-random.pth"
    torch.save(randomize_batchnorm(timm.create_model("fasternet_t0", pretrained=False)).state_dict(), path)
    return path


def write_yaml(path: Path, weights_line: str) -> Path:
    """yolov8-fasternet.yaml plus one ``backbone_weights:`` line."""
    path.write_text((REPO / "cfg" / "yolov8-fasternet.yaml").read_text() + f"\nbackbone_weights: {weights_line}\n")
    return path


@functools.cache
def expected_backbone(weights: Path) -> nn.Module:
    """yolov8n-fasternet built without the key, then loaded the documented way: what the key must reproduce."""
    model = DetectionModel("yolov8n-fasternet.yaml", verbose=False)
    load_backbone_weights(model, weights)
    return model.eval()


def backbone_diff(state: dict, expected: nn.Module) -> float:
    reference = {k: v for k, v in expected.state_dict().items() if k.startswith(BACKBONE)}
    return max((state[k].float() - v.float()).abs().max().item() for k, v in reference.items())


def backbone_eps(model: nn.Module) -> set[float]:
    return {bn.eps for bn in find_backbone(model).batchnorms()}


@pytest.mark.registration
def test_building_the_yaml_loads_the_weights_after_ultralytics_initialization(t0_file, tmp_path):
    model = DetectionModel(write_yaml(tmp_path / "yolov8n-fn-t0.yaml", str(t0_file)), verbose=False)
    assert backbone_diff(model.state_dict(), expected_backbone(t0_file)) == 0
    assert backbone_eps(model) == {1e-5}  # set after initialize_weights (which sets 1e-3), as FasterNet needs
    assert {m.eps for m in model.model[8:].modules() if isinstance(m, nn.BatchNorm2d)} == {1e-3}  # the neck: stock


@pytest.mark.registration
def test_classification_yamls_load_the_weights_too(t0_file, tmp_path):
    """Ultralytics' ClassificationModel never calls initialize_weights: the key must still load."""
    yaml_file = tmp_path / "yolov8n-fn-cls.yaml"
    yaml_file.write_text((REPO / "cfg" / "yolov8-fasternet-cls.yaml").read_text() + f"\nbackbone_weights: {t0_file}\n")
    model = ClassificationModel(str(yaml_file), verbose=False)
    expected = ClassificationModel("yolov8n-fasternet-cls.yaml", verbose=False)
    load_backbone_weights(expected, t0_file)
    assert backbone_diff(model.state_dict(), expected) == 0


# one YAML per model class Ultralytics builds (segment, classify, semantic, depth), and a YOLOv8 neck under a dense head
TASK_YAMLS = ["yolo26-fasternet-seg.yaml", "yolo26-fasternet-cls.yaml", "yolo26-fasternet-sem.yaml"]
TASK_YAMLS += ["yolo26-fasternet-depth.yaml", "yolov8-fasternet-sem.yaml"]
MODEL_CLASSES = {
    "segment": "SegmentationModel",
    "classify": "ClassificationModel",
    "semantic": "SemanticSegmentationModel",
    "depth": "DepthModel",
}


@pytest.mark.registration
@pytest.mark.parametrize("yaml_name", TASK_YAMLS)
def test_every_task_yaml_loads_the_weights(yaml_name, t0_file, tmp_path):
    """Each task's model class (SemanticSegmentationModel, DepthModel, ...) gets the weights, after its own init."""
    from ultralytics.nn import tasks

    scaled = re.sub(r"^(yolo(?:v)?\d+)-", r"\g<1>n-", yaml_name)
    try:
        task = tasks.guess_model_task(tasks.yaml_model_load(scaled))
    except RuntimeError as e:  # a head this Ultralytics does not have yet
        pytest.skip(str(e).split(";")[0])
    model_class = getattr(tasks, MODEL_CLASSES[task])
    yaml_file = tmp_path / scaled.replace("-fasternet", "-fn-t0")
    yaml_file.write_text((REPO / "cfg" / yaml_name).read_text() + f"\nbackbone_weights: {t0_file}\n")
    model = model_class(str(yaml_file), verbose=False)
    expected = model_class(scaled, verbose=False)
    load_backbone_weights(expected, t0_file)
    assert backbone_diff(model.state_dict(), expected) == 0
    assert backbone_eps(model) == {1e-5}


@pytest.mark.registration
def test_a_relative_path_is_read_next_to_the_yaml(t0_file, tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "t0.pth").write_bytes(t0_file.read_bytes())
    yaml_file = write_yaml(folder / "yolov8n-fn-t0.yaml", "t0.pth")
    monkeypatch.chdir(tmp_path)  # not the YAML's folder
    model = DetectionModel(str(yaml_file.relative_to(tmp_path)), verbose=False)
    assert backbone_diff(model.state_dict(), expected_backbone(t0_file)) == 0


@pytest.mark.registration
def test_a_per_scale_mapping_loads_the_built_scale_and_warns_for_the_others(t0_file, tmp_path, monkeypatch):
    write_yaml(tmp_path / "yolov8-fn-map.yaml", f"{{n: {t0_file}}}")
    monkeypatch.chdir(tmp_path)
    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    LOGGER.addHandler(handler)
    try:
        n = DetectionModel("yolov8n-fn-map.yaml", verbose=False)  # the scale comes from the name, as in Ultralytics
        s = DetectionModel("yolov8s-fn-map.yaml", verbose=False)
    finally:
        LOGGER.removeHandler(handler)
    assert backbone_eps(n) == {1e-5} and backbone_eps(s) == {1e-3}
    assert any("names no weights for scale 's'" in w for w in warnings), warnings


@pytest.mark.registration
@pytest.mark.parametrize("value", ["fasternet_t0", "absent-t0.pth"])
def test_an_absent_file_is_one_line_naming_it_and_where_to_place_it(value, tmp_path, monkeypatch):
    empty = tmp_path / "weights"
    empty.mkdir()
    monkeypatch.setenv("YOLO_FASTERNET_WEIGHTS", str(empty))
    yaml_file = write_yaml(tmp_path / "yolov8n-fn-absent.yaml", value)
    with pytest.raises(BackboneWeightsNotFoundError) as e:
        DetectionModel(str(yaml_file), verbose=False)
    message = str(e.value)
    file = manifest()["fasternet_t0"].file if value == "fasternet_t0" else value
    assert message.startswith(f"{yaml_file}: backbone_weights: ") and "\n" not in message
    assert file in message and str(empty) in message, message


@pytest.mark.registration
def test_train_command_reports_an_absent_file_in_one_line(tmp_path, monkeypatch, capsys, coco8_yaml):
    monkeypatch.setenv("YOLO_FASTERNET_WEIGHTS", str(tmp_path))
    yaml_file = write_yaml(tmp_path / "yolov8n-fn-absent.yaml", "absent-t0.pth")
    code = cli_main(["train", "--model", str(yaml_file), "--data", str(coco8_yaml), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "absent-t0.pth: no such file" in err, err  # failed work


@pytest.mark.registration
def test_reloading_a_checkpoint_does_not_reload_imagenet_weights(t0_file, tmp_path):
    weights = tmp_path / "t0.pth"
    weights.write_bytes(t0_file.read_bytes())
    model = DetectionModel(write_yaml(tmp_path / "yolov8n-fn-t0.yaml", str(weights)), verbose=False)
    with torch.no_grad():
        for p in find_backbone(model).parameters():
            p.add_(1.0)  # "trained": no longer the ImageNet weights
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"model": model}, tmp_path / "best.pt")
    weights.unlink()  # a reload that built the YAML would now fail
    reloaded = YOLO(tmp_path / "best.pt").model
    assert reloaded.yaml["backbone_weights"] == str(weights)
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in trained.items())


RECORDER = '''
"""Test-only start-up hook: the stock CLI's trainer records its model at on_train_start into $RECORD_TO."""
import os

import torch
from torch import nn
from ultralytics.utils.callbacks import base


def _snapshot(model):
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {"state": state, "eps": [m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)]}


def _record(trainer):
    torch.save({"model": _snapshot(trainer.model), "ema": _snapshot(trainer.ema.ema)}, os.environ["RECORD_TO"])


base.default_callbacks["on_train_start"].append(_record)
'''


def _features(state: dict, eps: list[float]) -> torch.Tensor:
    """P5 features of yolov8n-fasternet's backbone (layers 0-7) with a recorded state and BatchNorm eps."""
    model = DetectionModel("yolov8n-fasternet.yaml", verbose=False).eval()
    model.load_state_dict(state)
    for bn, value in zip((m for m in model.modules() if isinstance(m, nn.BatchNorm2d)), eps):
        bn.eps = value
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for layer in model.model[:8]:
            x = layer(x)
    return x


@pytest.mark.slow  # not `registration`: training on Ultralytics 8.3.0 needs pandas, which the test venv lacks
def test_stock_cli_train_starts_from_the_yaml_weights(t0_file, tmp_path, coco8_yaml):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(RECORDER)
    yaml_file = write_yaml(tmp_path / "yolov8n-fn-t0.yaml", str(t0_file))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    record = tmp_path / "record.pt"
    env = {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]), "RECORD_TO": str(record)}
    args = [f"model={yaml_file}", f"data={coco8_yaml}", "epochs=1", "imgsz=64", "batch=4", "workers=0", "device=cpu"]
    args += [f"project={tmp_path / 'runs'}", "name=train", "plots=False", "val=False"]
    run_checked([str(YOLO_CLI), "train", *args], cwd=cwd, env=env, timeout=900)
    recorded = torch.load(record, weights_only=False)
    expected = expected_backbone(t0_file)
    expected_eps = [m.eps for m in expected.modules() if isinstance(m, nn.BatchNorm2d)]
    for name in ("model", "ema"):
        snap = recorded[name]
        assert backbone_diff(snap["state"], expected) == 0, name
        assert snap["eps"] == expected_eps, name  # 1e-5 in the backbone, Ultralytics' 1e-3 elsewhere
        # The same weights in the same layers: equal to float32 rounding of the features' size.
        features = _features(snap["state"], snap["eps"])
        assert_close_to_magnitude(
            features, _features(expected.state_dict(), expected_eps), atol=1e-6, rel=1e-7, what=name
        )


@pytest.mark.slow
@pytest.mark.registration
@pytest.mark.parametrize("model_kind", ["yaml", "module"])
def test_ddp_workers_start_from_the_yaml_weights(model_kind, t0_file, tmp_path, coco8_yaml):
    """The script Ultralytics generates for DDP workers: rebuilt from the YAML, or (8.4.140+) the pickled model."""
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.dist import generate_ddp_file

    yaml_file = str(write_yaml(tmp_path / "yolov8n-fn-t0.yaml", str(t0_file)))
    overrides = dict(model=yaml_file, data=str(coco8_yaml), epochs=1, imgsz=64, device="cpu", workers=0)
    trainer = DetectionTrainer(overrides={**overrides, "project": str(tmp_path), "name": "ddp"})
    if model_kind == "module":
        trainer.model = trainer.get_model(cfg=yaml_file, verbose=False)
    script = Path(generate_ddp_file(trainer))
    out = tmp_path / "worker_state.pt"
    try:
        probe = f"trainer.setup_model(); import torch; torch.save(trainer.model.state_dict(), {str(out)!r})"
        worker = tmp_path / "ddp_worker.py"
        worker.write_text(script.read_text().replace("trainer.train()", probe))
        proc = subprocess.run([sys.executable, str(worker)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        script.unlink(missing_ok=True)
        script.with_suffix(".pt").unlink(missing_ok=True)
    assert backbone_diff(torch.load(out), expected_backbone(t0_file)) == 0
