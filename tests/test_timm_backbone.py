"""timm backbones by name: ``yolov8n-timm-<timm name>.yaml`` builds, trains, reloads, fuses and exports like ours."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import (
    SHARED_DATASETS,
    assert_close_to_magnitude,
    assert_outputs_close,
    nontrivial_outputs,
    randomize_batchnorm,
)

timm = pytest.importorskip("timm")

from ultralytics import YOLO  # noqa: E402

from yolo_fasternet.apps.zoo import _PLUGIN_PART  # noqa: E402
from yolo_fasternet.integration.output_parts import compare_outputs, layout_of  # noqa: E402
from yolo_fasternet.nn.timm_backbone import FeatureIndex, TimmBackbone, TimmBackboneError  # noqa: E402
from yolo_fasternet.pretrained import load_backbone_weights  # noqa: E402
from yolo_fasternet.pretrained.fine_tuning import FreezeBackbone  # noqa: E402

# Small models of 9 families, each checked to exist in timm 1.0.31 with stride-8/16/32 feature maps
FAMILIES = [
    "mobilenetv3_small_100",
    "efficientnet_b0",
    "ghostnet_100",
    "repvit_m1",
    "resnet18",
    "convnext_atto",
    "efficientvit_b0",
    "starnet_s1",
    "fasternet_t0",
]
TRAINED = "yolov8n-timm-mobilenetv3_small_100.yaml"  # the one trained with the stock CLI
YOLO_CLI = Path(sys.executable).with_name("yolo")
IMGSZ = 64


@pytest.fixture(scope="module", autouse=True)
def yaml_cache(tmp_path_factory):
    """Generated YAMLs go to a fresh cache folder (also for the subprocesses, which inherit the environment)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YOLO_FASTERNET_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def _stock_detect_channels(name: str) -> list[int]:
    detect = YOLO(name, verbose=False).model.model[-1]
    return [seq[0].conv.in_channels for seq in detect.cv2]


# every family on YOLOv8's neck and head, two on YOLO11's, each at scales n and s
BUILDS = [(f, "yolov8", s) for f in FAMILIES for s in "ns"]
BUILDS += [(f, "yolo11", s) for f in ("mobilenetv3_small_100", "convnext_atto") for s in "ns"]


@pytest.mark.registration
@pytest.mark.parametrize(("timm_name", "family", "scale"), BUILDS)
def test_timm_yaml_builds_the_stock_neck_and_head_at_the_named_scale(timm_name, family, scale):
    model = YOLO(f"{family}{scale}-timm-{timm_name}.yaml", verbose=False).model
    features = timm.create_model(timm_name, features_only=True).feature_info
    strides = dict(zip(features.reduction(), features.channels()))  # the deepest map at each stride wins
    assert model.yaml["scale"] == scale
    assert isinstance(model.model[0], TimmBackbone)
    assert [m.c2 for m in model.model[1:4]] == [strides[8], strides[16], strides[32]]
    assert _stock_detect_channels(f"{family}{scale}.yaml") == [seq[0].conv.in_channels for seq in model.model[-1].cv2]
    with torch.no_grad():
        y = model.eval()(torch.rand(1, 3, IMGSZ, IMGSZ))[0]
    assert y.shape == (1, 84, (IMGSZ // 8) ** 2 + (IMGSZ // 16) ** 2 + (IMGSZ // 32) ** 2)


@pytest.mark.registration
def test_unknown_timm_name_is_one_error_listing_close_matches():
    with pytest.raises(TimmBackboneError, match=r"'resnet181' is not a timm model\. Close matches: .*resnet18"):
        YOLO("yolov8n-timm-resnet181.yaml")


@pytest.mark.registration
def test_timm_model_without_stride_8_features_is_refused():
    with pytest.raises(TimmBackboneError, match=r"no feature maps at stride 8, 32 .* needs strides 8, 16 and 32"):
        YOLO("yolov8n-timm-vit_tiny_patch16_224.yaml")


def test_feature_index_with_wrong_channels_names_the_layer():
    index = FeatureIndex(64, 1, 100)
    index.i = 2
    with pytest.raises(TimmBackboneError, match=r"layer 2 FeatureIndex \[1, 100\]: feature map 1 has 64 channels"):
        index([torch.zeros(1, 32, 4, 4), torch.zeros(1, 64, 2, 2)])


def test_timm_batchnorm_settings_survive_ultralytics_initialize_weights():
    model = YOLO("yolov8n-timm-resnet18.yaml", verbose=False).model.eval()
    expected = [
        m.eps for m in timm.create_model("resnet18", features_only=True).modules() if isinstance(m, nn.BatchNorm2d)
    ]
    assert [m.eps for m in model.model[0].batchnorms()] == expected == [1e-5] * len(expected)


@pytest.mark.parametrize("timm_name", ["efficientnet_b0", "ghostnet_100", "repvit_m1", "resnet18"])
def test_fuse_folds_the_timm_batchnorms_and_keeps_the_outputs(timm_name):
    torch.manual_seed(0)
    model = nontrivial_outputs(YOLO(f"yolov8n-timm-{timm_name}.yaml", verbose=False).model).eval()
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        expected = model(x)[0]
        model.fuse(verbose=False)
        assert not [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert_outputs_close(model(x)[0], expected, model, what=f"fused {timm_name}")


def _weights_file(folder: Path, timm_name: str, seed: int) -> dict[str, torch.Tensor]:
    """Random timm weights (random BN statistics too) saved where ``-pretrained`` looks for them; returns them."""
    torch.manual_seed(seed)
    state = randomize_batchnorm(timm.create_model(timm_name)).state_dict()
    full_name = timm.models.get_pretrained_cfg(timm_name)
    (folder / "timm").mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "timm" / f"{timm_name}.{full_name.tag}.pth")
    return state


def test_timm_fasternet_t0_matches_our_fasternet_layers(tmp_path, monkeypatch):
    """Two implementations, the same FasterNet-T0 weights: equal P3/P4/P5 (ours: layers 3, 5, 7 of the YAML)."""
    monkeypatch.setenv("YOLO_FASTERNET_WEIGHTS", str(tmp_path))
    state = _weights_file(tmp_path, "fasternet_t0", seed=0)
    ours = YOLO("yolov8n-fasternet.yaml", verbose=False).model
    load_backbone_weights(ours, state)
    theirs = YOLO("yolov8n-timm-fasternet_t0-pretrained.yaml", verbose=False).model  # timm's own loader
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    taps, y = {}, x
    with torch.no_grad():
        for i in range(8):
            y = taps[i] = ours.model[i](y)
        timm_features = theirs.model[0](x)
    # timm's FasterNet and ours compute the same convolutions in the same order: equal to rounding of the features.
    diffs = [assert_close_to_magnitude(taps[i], f, atol=1e-5, rel=1e-6) for i, f in zip((3, 5, 7), timm_features)]
    print(f"max abs difference P3/P4/P5: {diffs}")


def test_pretrained_loads_the_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_FASTERNET_WEIGHTS", str(tmp_path))
    state = _weights_file(tmp_path, "resnet18", seed=1)
    backbone = YOLO("yolov8n-timm-resnet18-pretrained.yaml", verbose=False).model.model[0]
    loaded = backbone.model.state_dict()
    assert torch.equal(loaded["conv1.weight"], state["conv1.weight"])
    assert torch.equal(loaded["layer4.1.bn2.running_var"], state["layer4.1.bn2.running_var"])


def test_pretrained_offline_without_the_file_says_what_to_place_where(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_FASTERNET_WEIGHTS", str(tmp_path))
    place = tmp_path / "timm" / "resnet18.a1_in1k.safetensors"
    url = "https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors"
    with pytest.raises(ValueError, match="downloads are off") as e:
        YOLO("yolov8n-timm-resnet18-pretrained.yaml")
    assert f"download {url} and place it at {place}" in str(e.value)


def test_freeze_backbone_freezes_the_timm_backbone():
    from types import SimpleNamespace

    model = YOLO("yolov8n-timm-resnet18.yaml", verbose=False).model
    trainer = SimpleNamespace(model=model, epoch=0)
    freezer = FreezeBackbone(1)
    freezer.on_train_start(trainer)
    backbone = {id(p) for p in model.model[0].parameters()}
    assert {id(p) for p in freezer.params} == backbone
    for epoch, frozen in ((0, True), (1, False)):
        trainer.epoch = epoch
        freezer.on_train_epoch_start(trainer)
        model.train()
        freezer.on_train_batch_start(trainer)
        assert all(p.requires_grad is not frozen for p in freezer.params)
        assert all(bn.training is not frozen for bn in model.model[0].batchnorms())
        assert all(p.requires_grad for p in model.model[1:-1].parameters())


def test_zoo_times_timm_names_against_their_stock_model():
    assert _PLUGIN_PART.sub("", "yolov8n-timm-resnet18.a1_in1k-pretrained.yaml") == "yolov8n.yaml"
    assert _PLUGIN_PART.sub("", "yolo11s-timm-efficientnet_b0.yaml") == "yolo11s.yaml"


# ---------------------------------------------------------------------------------------------------------------------
# Processes: the stock CLI, fresh checkpoint loads, safe loading, DDP workers, export


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """best.pt of a one-epoch stock ``yolo train`` of a timm YAML by bare name."""
    data = SHARED_DATASETS / "coco8" / "coco8.yaml"
    if not data.is_file():
        pytest.skip(f"shared dataset not found: {data}")
    cwd = tmp_path_factory.mktemp("cli")
    proc = subprocess.run(
        [str(YOLO_CLI), "train", f"model={TRAINED}", f"data={data}", "epochs=1", f"imgsz={IMGSZ}", "batch=4",
         "workers=0", "device=cpu", f"project={cwd / 'runs'}", "name=train", "plots=False"],
        cwd=cwd, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "yolo_fasternet.nn.timm_backbone.TimmBackbone" in out
    best = cwd / "runs" / "train" / "weights" / "best.pt"
    assert best.is_file(), out[-3000:]
    return best


def _input() -> torch.Tensor:
    return torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))


# the checkpoint's fused model on a fixed input: its whole prediction tensor
PROBE = (
    "import json, sys, torch; from ultralytics import YOLO; "
    f"x = torch.rand(1, 3, {IMGSZ}, {IMGSZ}, generator=torch.Generator().manual_seed(0)); "
    "m = YOLO(sys.argv[1]).model.float().fuse(verbose=False).eval(); "
    "print(json.dumps(m(x)[0].tolist()))"
)


@pytest.mark.slow
@pytest.mark.parametrize("safe_load", ["0", "1"])
def test_checkpoint_reloads_in_a_fresh_process(trained, safe_load):
    env = {**os.environ, "ULTRALYTICS_SAFE_LOAD": safe_load}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(trained)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with torch.no_grad():
        model = YOLO(str(trained)).model.float().fuse(verbose=False).eval()
        expected = model(_input())[0]
    reloaded = torch.tensor(json.loads(proc.stdout.strip().splitlines()[-1]))
    # the same weights and arithmetic in another process: boxes and class scores each equal to float32 rounding
    differences = compare_outputs(reloaded, expected, layout_of(model), rel=1e-6, atol=1e-7)
    assert all(d.ok and d.magnitude > 0 for d in differences), [str(d) for d in differences]


@pytest.mark.slow
def test_checkpoint_references_only_allow_listed_classes(trained):
    """The timm network is pickled as name + tensors: no timm class path in the file."""
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(trained))
    assert unsafe and not [g for g in unsafe if g.startswith("timm.")]


@pytest.mark.slow
@pytest.mark.parametrize("model_kind", ["yaml", "module"])
def test_ddp_worker_rebuilds_the_timm_model(tmp_path, coco8_yaml, model_kind):
    """The script Ultralytics generates for DDP workers builds the same model in a fresh process."""
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.dist import generate_ddp_file

    overrides = dict(model=TRAINED, data=str(coco8_yaml), epochs=1, imgsz=IMGSZ, device="cpu", workers=0)
    trainer = DetectionTrainer(overrides={**overrides, "project": str(tmp_path), "name": "ddp"})
    if model_kind == "module":
        trainer.model = trainer.get_model(cfg=TRAINED, verbose=False)
    script_file = Path(generate_ddp_file(trainer))
    try:
        probe = (
            "trainer.setup_model(); import json; m = trainer.model; "
            "print(json.dumps([type(m.model[0]).__name__, sum(p.numel() for p in m.parameters())]))"
        )
        worker = tmp_path / "ddp_worker.py"
        worker.write_text(script_file.read_text().replace("trainer.train()", probe))
        proc = subprocess.run([sys.executable, str(worker)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        expected = sum(p.numel() for p in trainer.get_model(cfg=TRAINED, verbose=False).parameters())
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["TimmBackbone", expected]
    finally:
        script_file.unlink(missing_ok=True)
        script_file.with_suffix(".pt").unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_export_matches_pytorch(fmt, tmp_path, monkeypatch):
    from test_export import RUNNERS

    torch.manual_seed(0)
    yolo = YOLO("yolov8n-timm-efficientnet_b0.yaml", verbose=False)
    nontrivial_outputs(yolo.model)
    x = _input()
    with torch.no_grad():
        expected = copy.deepcopy(yolo.model).eval().fuse(verbose=False)(x)[0]
    monkeypatch.chdir(tmp_path)
    exported = Path(yolo.export(format=fmt, imgsz=IMGSZ, batch=1, device="cpu")).resolve()
    assert_outputs_close(RUNNERS[fmt](exported, x), expected, yolo.model, what=fmt)
