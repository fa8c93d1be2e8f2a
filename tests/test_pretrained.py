"""Pretrained FasterNet backbones: equivalence with timm, both key layouts, all-or-nothing errors, names, training."""

from __future__ import annotations

import copy
import functools
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel

from yolo_fasternet import cfg_dir, pretrained
from yolo_fasternet.apps import train as train_yolo
from yolo_fasternet.apps.synthetic_data import make_synthetic_dataset
from yolo_fasternet.cli import main as cli_main
from yolo_fasternet.pretrained import (
    BackboneWeightsError,
    BackboneWeightsNotFoundError,
    detect_layout,
    find_backbone,
    load_backbone_weights,
    official_to_timm,
    parse_checkpoint,
    read_backbone_checkpoint,
    timm_to_official,
)
from yolo_fasternet.pretrained.fine_tuning import FreezeBackbone, LoadBackboneWeights

from conftest import REPO, assert_close_to_magnitude, randomize_batchnorm, run_checked

timm = pytest.importorskip("timm")

SCALE_OF = {"t0": "n", "t1": "s", "t2": "m"}  # yolov8-fasternet scales built as FasterNet-T0/T1/T2
BACKBONE_LAYERS = 8  # yolov8-fasternet: layers 0-7
TAPS = {3: 1, 5: 2, 7: 3}  # our P3/P4/P5 layers -> timm stage index in forward_intermediates
SCRIPT = REPO / "train_yolo.py"


def weights_command(argv: list[str]) -> int:
    """``yolo-fasternet weights ...`` in this process."""
    return cli_main(["weights", *argv])


@functools.cache
def _reference(variant: str) -> nn.Module:
    """timm's FasterNet with random weights and random BatchNorm statistics and affine parameters, in eval mode."""
    torch.manual_seed({"t0": 0, "t1": 1, "t2": 2}[variant])
    return randomize_batchnorm(timm.create_model(f"fasternet_{variant}", pretrained=False).eval())


@functools.cache
def _built(scale: str) -> nn.Module:
    return YOLO(f"yolov8{scale}-fasternet.yaml").model


def _fresh(scale: str = "n") -> nn.Module:
    """A new yolov8<scale>-fasternet DetectionModel (a copy of one built once per scale, to save time)."""
    return copy.deepcopy(_built(scale))


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, nn.BatchNorm2d))  # Ultralytics' build value


def _save(state: dict, path: Path) -> Path:
    torch.save(state, path)
    return path


def _official_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keys of a timm-layout FasterNet renamed to the official release layout, restated here from the official
    repository's module tree (not with the converter under test): its ``stages`` list interleaves the four block
    stages (0, 2, 4, 6) with the three merging layers (1, 3, 5), and its head is ``avgpool_pre_head.1`` + ``head``.
    """
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "stages" and parts[2] == "downsample":  # timm: the merging layer in front of stage k
            key = ".".join(["stages", str(2 * int(parts[1]) - 1), *parts[3:]])
        elif parts[0] == "stages":
            key = ".".join(["stages", str(2 * int(parts[1])), *parts[2:]])
        elif parts[0] == "conv_head":
            key = ".".join(["avgpool_pre_head", "1", *parts[1:]])
        elif parts[0] == "classifier":
            key = ".".join(["head", *parts[1:]])
        out[key] = value
    return out


def _taps(model: nn.Module, x: torch.Tensor) -> dict[int, torch.Tensor]:
    """Outputs of the backbone layers (a chain in yolov8-fasternet) at the P3/P4/P5 taps."""
    out = {}
    for i in range(BACKBONE_LAYERS):
        x = model.model[i](x)
        out[i] = x
    return {i: out[i] for i in TAPS}


# ---------------------------------------------------------------------------------------------------------------------
# Equivalence with the reference implementation


@pytest.mark.parametrize("variant", ["t0", "t1", "t2"])
def test_features_match_timm_in_both_layouts(variant, tmp_path, record_property):
    ref = _reference(variant)
    state = ref.state_dict()
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref.forward_intermediates(x, indices=[1, 2, 3], intermediates_only=True)
    fresh = _fresh(SCALE_OF[variant])
    for layout, layout_state in (("timm", state), ("official", _official_layout(state))):
        model = copy.deepcopy(fresh).eval()
        report = load_backbone_weights(model, _save(layout_state, tmp_path / f"{variant}-{layout}.pth"))
        assert (report.layout, report.ok, report.layers) == (layout, True, list(range(BACKBONE_LAYERS)))
        assert report.checkpoint.startswith(f"fasternet_{variant} ")
        with torch.no_grad():
            ours = _taps(model, x)
        # The same arithmetic in the same order as timm's network: equal to float32 rounding of the features' size.
        diffs = [
            assert_close_to_magnitude(ours[i], expected[k - 1], atol=1e-5, rel=1e-6, what=f"{variant} {layout} P{k}")
            for i, k in TAPS.items()
        ]
        record_property(f"max_abs_diff_{variant}_{layout}", max(diffs))
        print(f"fasternet_{variant} {layout}: max abs difference P3/P4/P5 {diffs}")
        backbone_bns = find_backbone(model).batchnorms()
        assert backbone_bns and all(bn.eps == 1e-5 for bn in backbone_bns)
        neck_bns = [m for m in model.model[BACKBONE_LAYERS:].modules() if isinstance(m, nn.BatchNorm2d)]
        assert all(bn.eps == 1e-3 for bn in neck_bns)  # only what was loaded follows FasterNet's convention


def test_batchnorm_eps_is_why_features_match():
    """With Ultralytics' eps=1e-3 left on the loaded BatchNorms, the features differ from the reference."""
    ref = _reference("t0")
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    model = _fresh("n").eval()
    load_backbone_weights(model, ref.state_dict())
    for bn in find_backbone(model).batchnorms():
        bn.eps = 1e-3
    with torch.no_grad():
        expected = ref.forward_intermediates(x, indices=[3], intermediates_only=True)[0]
        ours = _taps(model, x)[7]
    with pytest.raises(AssertionError):  # ten times the rounding the matching comparison above allows
        assert_close_to_magnitude(ours, expected, atol=1e-4, rel=1e-5)


# A FasterNet backbone: a PatchEmbed stem, then FasterNetBlock stages (PartialNet shares the stem, not the blocks)
FASTERNET_YAMLS = sorted(
    p.name for p in cfg_dir().glob("*.yaml") if "PatchEmbed" in p.read_text() and "FasterNetBlock" in p.read_text()
)


@pytest.mark.parametrize("yaml_name", FASTERNET_YAMLS)
def test_loads_into_every_bundled_fasternet_yaml(yaml_name):
    """Layers are found by type, so every task head and YOLO generation written with FasterNet layers works."""
    state = _reference("t0").state_dict()
    model = YOLO(yaml_name.replace("-fasternet", "n-fasternet", 1)).model  # n scale: FasterNet-T0
    report = load_backbone_weights(model, state)
    backbone = find_backbone(model)
    assert report.ok and len(report.loaded) == 128 and backbone.variant is pretrained.VARIANTS["t0"]
    assert torch.equal(backbone.parts[0].module.conv.weight, state["patch_embed.proj.weight"])


# ---------------------------------------------------------------------------------------------------------------------
# Layouts, variants, wrappers


def test_layout_conversion_round_trips_and_is_detected():
    state = _reference("t0").state_dict()
    official = timm_to_official(state)
    assert official.keys() == _official_layout(state).keys()  # the converter gives the official names, all of them
    assert all(official[k] is v for k, v in _official_layout(state).items())  # each on the right tensor
    assert "stages.1.reduction.weight" in official and "stages.6.blocks.1.mlp.3.weight" in official
    assert "avgpool_pre_head.1.weight" in official and "head.bias" in official
    assert official_to_timm(official).keys() == state.keys()
    assert (detect_layout(state), detect_layout(official)) == ("timm", "official")
    with pytest.raises(BackboneWeightsError, match="mix the official .* and timm"):
        detect_layout([*official, "stages.1.downsample.reduction.weight"])


@pytest.mark.parametrize("variant", ["t0", "t1", "t2", "s", "m", "l"])
def test_variant_is_read_from_shapes(variant):
    state = timm.create_model(f"fasternet_{variant}", pretrained=False, device="meta").state_dict()  # no memory
    for layout_state in (state, timm_to_official(state)):
        ckpt = parse_checkpoint(layout_state)
        assert ckpt.variant is pretrained.VARIANTS[variant]
        assert ckpt.head_keys and not any(k.startswith(("conv_head", "classifier", "head")) for k in ckpt.tensors)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd, "epoch": torch.tensor(3)},
        lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}},
        lambda sd: {"state_dict": {f"model.{k}": v for k, v in timm_to_official(sd).items()}},  # Lightning
        lambda sd: {"model_ema": sd},
    ],
    ids=["state_dict", "model+module", "lightning-official", "model_ema"],
)
def test_common_wrappers_load(wrap, tmp_path):
    state = _reference("t0").state_dict()
    model = _fresh("n")
    report = load_backbone_weights(model, _save(wrap(state), tmp_path / "wrapped.pth"))
    assert report.ok and len(report.loaded) == len([k for k in state if not k.startswith(("conv_head", "classif"))])
    assert torch.equal(model.model[5][7].project.weight, state["stages.2.blocks.7.mlp.3.weight"])


def test_safetensors_files_load(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = _reference("t0").state_dict()
    path = tmp_path / "model.safetensors"  # what the timm hub serves
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = _fresh("n")
    assert load_backbone_weights(model, path).layout == "timm"
    assert torch.equal(model.model[7][1].expand.bn.running_var, state["stages.3.blocks.1.mlp.1.running_var"])


def test_report_says_head_keys_are_ignored_on_purpose(tmp_path):
    state = timm_to_official(_reference("t0").state_dict())
    report = load_backbone_weights(_fresh("n"), _save(state, tmp_path / "t0.pth"))
    assert report.ignored_head == ["avgpool_pre_head.1.weight", "head.weight", "head.bias"]
    assert (report.missing, report.unexpected, report.mismatched) == ([], [], [])
    assert "stages.4.blocks.7.mlp.3.weight -> model.5.7.project.weight" in report.loaded
    text = report.summary()
    assert "ignored 3 classification-head key(s) on purpose" in text and "official layout" in text
    assert "missing 0, unexpected 0, shape-mismatched 0" in text and "eps set to 1e-05" in text


# ---------------------------------------------------------------------------------------------------------------------
# Errors: one line, naming the culprit, model untouched


def _missing(state):
    del state["stages.4.blocks.3.mlp.1.running_var"]
    return state


def _extra(state):
    state["stages.2.blocks.0.extra.weight"] = torch.zeros(3)
    return state


def _mismatch(state):
    state["stages.1.reduction.weight"] = torch.zeros(80, 40, 3, 3)
    return state


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (_missing, r"t0\.pth: not loaded, the model is unchanged: 1 missing key\(s\) "
         r"\(stages\.4\.blocks\.3\.mlp\.1\.running_var -> model\.5\.3\.expand\.bn\.running_var\)$"),
        (_extra, r"t0\.pth: not loaded, the model is unchanged: 1 unexpected key\(s\) "
         r"\(stages\.2\.blocks\.0\.extra\.weight\)$"),
        (_mismatch, r"1 shape mismatch\(es\) \(stages\.1\.reduction\.weight -> model\.2\.conv\.weight "
         r"\(80, 40, 3, 3\) vs \(80, 40, 2, 2\)\)$"),
    ],
    ids=["missing", "extra", "shape"],
)  # fmt: skip
def test_key_errors_leave_the_model_unchanged(corrupt, message, tmp_path):
    state = corrupt(timm_to_official(_reference("t0").state_dict()))  # official layout: errors use its key names
    model = _fresh("n")
    before = _state(model)
    with pytest.raises(BackboneWeightsError, match=message) as exc:
        load_backbone_weights(model, _save(state, tmp_path / "t0.pth"))
    assert "\n" not in str(exc.value) and not exc.value.report.ok
    _assert_unchanged(model, before)


def test_wrong_variant_is_refused_naming_both(tmp_path):
    model = _fresh("n")
    before = _state(model)
    path = _save(_reference("t1").state_dict(), tmp_path / "t1.pth")
    with pytest.raises(BackboneWeightsError) as exc:
        load_backbone_weights(model, path)
    assert str(exc.value) == (
        f"{path}: checkpoint is fasternet_t1 (embed 64, depths 1-2-8-2) but the model's FasterNet backbone "
        "(layers 0-7) is fasternet_t0 (embed 40, depths 1-2-8-2, gelu), a different shape; use a fasternet_t0 "
        "checkpoint, or a model scale whose backbone is fasternet_t1 (embed 64, depths 1-2-8-2)"
    )
    _assert_unchanged(model, before)


def test_wrong_activation_is_refused(tmp_path):
    cfg = yaml.safe_load((cfg_dir() / "yolov8-fasternet.yaml").read_text())
    model = DetectionModel({**cfg, "scale": "n", "fasternet_act": "relu"}, verbose=False)  # T0 shapes, ReLU
    with pytest.raises(
        BackboneWeightsError, match=r"\(embed 40, depths 1-2-8-2, relu\), activation relu instead of gelu"
    ):
        load_backbone_weights(model, _reference("t0").state_dict())


def test_truncated_file_is_named_in_a_one_line_error(tmp_path):
    path = _save(_reference("t0").state_dict(), tmp_path / "t0.pth")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    model = _fresh("n")
    before = _state(model)
    with pytest.raises(BackboneWeightsError, match=rf"^{re.escape(str(path))}: not a readable PyTorch checkpoint, "):
        load_backbone_weights(model, path)
    _assert_unchanged(model, before)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: {"conv.weight": torch.zeros(1)}, r"not a FasterNet checkpoint \(no 4-d patch_embed\.proj\.weight"),
        (lambda: {"state_dict": {"a": 1}}, r"entry 'a' of its state_dict is not a tensor"),
        (lambda: {"patch_embed.proj.weight": torch.zeros(40, 3, 4, 4), "config": object()}, "safe loading refuses"),
    ],
    ids=["not-fasternet", "not-tensor", "unsafe-pickle"],
)
def test_unusable_files_give_one_line_errors(build, message, tmp_path):
    path = _save(build(), tmp_path / "bad.pth")
    with pytest.raises(BackboneWeightsError, match=message) as exc:
        load_backbone_weights(_fresh("n"), path)
    assert str(exc.value).startswith(f"{path}: ") and "\n" not in str(exc.value)


def test_models_without_a_fasternet_backbone_or_fused_are_refused():
    state = _reference("t0").state_dict()
    with pytest.raises(BackboneWeightsError, match="no FasterNet backbone"):
        load_backbone_weights(YOLO("yolov8n-c2f-faster.yaml").model, state)
    fused = _fresh("n").fuse(verbose=False)
    with pytest.raises(BackboneWeightsError, match="fused"):
        load_backbone_weights(fused, state)


# ---------------------------------------------------------------------------------------------------------------------
# Names, manifest, weights/, download


def test_manifest_matches_release_names_and_timm():
    known = pretrained.manifest()
    assert list(known) == [f"fasternet_{v}" for v in ("t0", "t1", "t2", "s", "m", "l")]
    hub = set(timm.list_models("fasternet*", pretrained=True))
    for entry in known.values():
        assert entry.variant.model_name == entry.name and entry.timm in hub
        acc = float(re.fullmatch(rf"{entry.name}-epoch\.\d+-val_acc1\.(\d+\.\d+)\.pth", entry.file)[1])
        assert round(acc, 1) == entry.top1
        assert entry.url.endswith("/releases/download/v1.0/" + entry.file)
    assert [e.top1 for e in known.values()] == [71.9, 76.2, 78.9, 81.3, 83.0, 83.5]


def test_offline_name_says_which_file_to_place_where(monkeypatch, tmp_path):
    monkeypatch.setenv("YOLO_FASTERNET_WEIGHTS", str(tmp_path))
    target = tmp_path / "fasternet_t0-epoch.281-val_acc1.71.9180.pth"
    for name in ("fasternet_t0", "t0", "fasternet_t0.in1k"):
        with pytest.raises(BackboneWeightsNotFoundError, match=f"place it at {re.escape(str(target))}$"):
            read_backbone_checkpoint(name)
    with pytest.raises(FileNotFoundError, match=r"nope\.pth: no such file \(also looked in "):
        read_backbone_checkpoint("nope.pth")
    with pytest.raises(FileNotFoundError, match=r"fasternet_x9: neither a file nor a known FasterNet checkpoint"):
        read_backbone_checkpoint("fasternet_x9")


def test_names_and_bare_file_names_load_from_the_weights_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("YOLO_FASTERNET_WEIGHTS", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)  # a bare file name must not resolve through the working directory
    release = "fasternet_t0-epoch.281-val_acc1.71.9180.pth"
    _save(timm_to_official(_reference("t0").state_dict()), tmp_path / release)
    for name in ("t0", "fasternet_t0", release):
        ckpt = read_backbone_checkpoint(name)
        assert (ckpt.source, ckpt.layout, ckpt.variant.name) == (str(tmp_path / release), "official", "t0")


def test_download_goes_through_timm(monkeypatch, tmp_path):
    monkeypatch.setenv("YOLO_FASTERNET_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("YOLO_OFFLINE", "0")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def fake_create_model(name, pretrained=False):
        calls.append((name, pretrained))
        return _reference("t1")

    monkeypatch.setattr(timm, "create_model", fake_create_model)
    model = _fresh("s")
    report = load_backbone_weights(model, "fasternet_t1")
    assert calls == [("fasternet_t1.in1k", True)] and report.source == "timm hub: fasternet_t1.in1k"

    def failing(name, pretrained=False):
        raise OSError("connection refused\nmore detail")

    monkeypatch.setattr(timm, "create_model", failing)
    with pytest.raises(BackboneWeightsNotFoundError, match=r"downloading fasternet_t1\.in1k through timm failed "):
        read_backbone_checkpoint("t1")
    monkeypatch.setitem(sys.modules, "timm", None)  # timm is optional: not installed reads as ImportError
    with pytest.raises(BackboneWeightsNotFoundError, match=r"downloading needs timm \(pip install timm\)"):
        read_backbone_checkpoint("t1")


def test_command_line(tmp_path, capsys):
    src = _save(_reference("t0").state_dict(), tmp_path / "t0-timm.pth")
    out = tmp_path / "t0-official.pth"
    assert weights_command(["convert", str(src), str(out), "--layout", "official"]) == 0
    converted = torch.load(out, weights_only=True)
    assert detect_layout(converted) == "official" and converted.keys() == timm_to_official(torch.load(src)).keys()
    assert weights_command(["info", str(out)]) == 0
    assert weights_command(["load", str(out), "--model", "yolov8n-fasternet.yaml"]) == 0
    text = capsys.readouterr().out
    assert "layout   official" in text and "fasternet_t0 (embed 40, depths 1-2-8-2)" in text
    assert "loaded 128 tensors into model layers 0-7" in text
    assert weights_command(["info", str(tmp_path / "nope.pth")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"yolo-fasternet weights: error: {tmp_path / 'nope.pth'}: no such file (also ")


# ---------------------------------------------------------------------------------------------------------------------
# Training callbacks (fake trainers: no data, no steps)


def test_load_callback_loads_model_and_ema_unless_resuming():
    state = _reference("t0").state_dict()
    ckpt = read_backbone_checkpoint(state)
    trainer = SimpleNamespace(model=_fresh("n"), ema=SimpleNamespace(ema=_fresh("n")), resume=False)
    LoadBackboneWeights(ckpt)(trainer)
    for m in (trainer.model, trainer.ema.ema):
        assert torch.equal(m.model[0].conv.weight, state["patch_embed.proj.weight"])
    resumed = SimpleNamespace(model=_fresh("n"), ema=None, resume=True)
    before = _state(resumed.model)
    LoadBackboneWeights(ckpt)(resumed)
    _assert_unchanged(resumed.model, before)


def test_freeze_callbacks_toggle_exactly_the_backbone():
    model = _fresh("n")
    model.model[0].conv.weight.requires_grad_(False)  # as Ultralytics' freeze= leaves it: must stay frozen
    trainer = SimpleNamespace(model=model, epoch=0)
    freezer = FreezeBackbone(2)
    freezer.on_train_start(trainer)
    backbone = {id(p) for i in range(BACKBONE_LAYERS) for p in model.model[i].parameters()}
    others = {id(p): p.requires_grad for p in model.parameters() if id(p) not in backbone}  # Detect's DFL is frozen
    assert {id(p) for p in freezer.params} == backbone - {id(model.model[0].conv.weight)}
    for epoch, frozen in ((0, True), (1, True), (2, False), (3, False)):
        trainer.epoch = epoch
        freezer.on_train_epoch_start(trainer)
        model.train()  # what the trainer does after on_train_epoch_start
        freezer.on_train_batch_start(trainer)
        assert all(p.requires_grad is not frozen for p in freezer.params)
        assert {id(p): p.requires_grad for p in model.parameters() if id(p) not in backbone} == others
        assert all(bn.training is not frozen for bn in find_backbone(model).batchnorms())
    assert not model.model[0].conv.weight.requires_grad
    # Ultralytics' freeze=8 matches parameter names against "model.0." ... "model.7.": exactly the same backbone
    freeze_8 = {id(p) for k, p in model.named_parameters() if any(f"model.{x}." in k for x in range(8))}
    assert freeze_8 == backbone
    with pytest.raises(ValueError, match="integer >= 0"):
        FreezeBackbone(-1)


# ---------------------------------------------------------------------------------------------------------------------
# train_yolo.py end to end (real Ultralytics trainer)


def _backbone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in _state(model).items() if int(k.split(".")[1]) < BACKBONE_LAYERS}


def _expected_backbone(path: Path) -> dict[str, torch.Tensor]:
    model = _fresh("n")
    load_backbone_weights(model, path)
    return _backbone_state(model)


def test_train_script_refuses_a_wrong_variant_before_training(tmp_path, capsys):
    path = _save(_reference("t1").state_dict(), tmp_path / "t1.pth")
    # a file that does not fit the model is failed work (status 1), found before the dataset is read
    assert train_yolo.main(["--backbone-weights", str(path), "--data", str(tmp_path / "unused.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f": error: {path}: checkpoint is fasternet_t1 (embed 64" in err


@pytest.mark.slow
def test_train_script_trains_from_the_loaded_backbone(tmp_path):
    """The saved model's backbone is the loaded one plus one optimizer step, with FasterNet's BatchNorm eps."""
    data = make_synthetic_dataset(tmp_path / "data", n_train=8, n_val=4, imgsz=64)
    weights = _save(timm_to_official(_reference("t0").state_dict()), tmp_path / "t0.pth")
    args = ["--data", str(data), "--epochs", "1", "--imgsz", "64", "--batch", "4", "--backbone-weights", str(weights)]
    args += ["--project", str(tmp_path / "runs"), "--name", "run", "plots=False"]
    proc = run_checked([sys.executable, str(SCRIPT), *args], cwd=tmp_path, timeout=300)
    assert "ignored 3 classification-head key(s) on purpose" in proc.stdout
    ckpt = torch.load(tmp_path / "runs" / "run" / "weights" / "last.pt", weights_only=False)
    trained = (ckpt["ema"] or ckpt["model"]).float()  # a finished run's last.pt keeps the EMA as "model"
    loaded, init = _expected_backbone(weights), _backbone_state(_fresh("n"))
    trained_state = _backbone_state(trained)
    params = [k for k, v in loaded.items() if v.is_floating_point() and "running" not in k]
    moved = max((trained_state[k] - loaded[k]).abs().max().item() for k in params)
    from_init = max((trained_state[k] - init[k]).abs().max().item() for k in params)
    print(f"backbone moved {moved:.2e} from the loaded weights, {from_init:.2e} from a random init")
    assert 0 < moved < 1e-2 < 0.1 < from_init, (moved, from_init)  # one AdamW step (lr ~1.4e-3) from the loaded
    assert all(bn.eps == 1e-5 for bn in find_backbone(trained).batchnorms())


RECORDING_RUN = """
import sys, torch, ultralytics
from yolo_fasternet.apps import train as train_yolo
from yolo_fasternet.pretrained import find_backbone
records = {}

def snapshot(trainer, model=None):
    model = trainer.model if model is None else model
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    grads = [p.requires_grad for p in find_backbone(model).parameters()]
    return {"state": state, "backbone_requires_grad": grads}

class RecordingYOLO(ultralytics.YOLO):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback("on_train_start", lambda t: records.update(start=snapshot(t), ema=snapshot(t, t.ema.ema)))
        self.add_callback("on_train_epoch_end", lambda t: records.update({f"epoch{t.epoch}": snapshot(t)}))

ultralytics.YOLO = RecordingYOLO  # the train command loads the model through `from ultralytics import YOLO`
assert train_yolo.main(sys.argv[2:]) == 0
torch.save(records, sys.argv[1])
"""


@pytest.mark.slow
def test_frozen_backbone_keeps_loaded_weights_then_trains(tmp_path):
    """Records the trained model at train start and after each epoch (in a fresh process: training sets globals)."""
    data = make_synthetic_dataset(tmp_path / "data", n_train=8, n_val=4, imgsz=64)
    weights = _save(_reference("t0").state_dict(), tmp_path / "t0.pth")
    records_file = tmp_path / "records.pt"
    args = ["--data", str(data), *"--epochs 2 --imgsz 64 --batch 4 --nbs 4 plots=False val=False".split()]
    args += ["--backbone-weights", str(weights), "--freeze-backbone", "1", "--project", str(tmp_path / "runs")]
    run_checked([sys.executable, "-c", RECORDING_RUN, str(records_file), *args], cwd=tmp_path, timeout=300)
    records = torch.load(records_file, weights_only=False)
    loaded = _expected_backbone(weights)

    def backbone_diff(record, weights_only=False):
        keys = [k for k in loaded if not weights_only or not re.search(r"running_|num_batches", k)]
        return max((record["state"][k].float() - loaded[k].float()).abs().max().item() for k in keys)

    def head_diff(a, b):
        keys = [k for k in a["state"] if int(k.split(".")[1]) >= BACKBONE_LAYERS and a["state"][k].is_floating_point()]
        return max((a["state"][k] - b["state"][k]).abs().max().item() for k in keys)

    assert backbone_diff(records["start"]) == 0 and backbone_diff(records["ema"]) == 0  # loaded before any step
    assert backbone_diff(records["epoch0"]) == 0  # frozen: weights and BatchNorm statistics untouched
    assert not any(records["epoch0"]["backbone_requires_grad"]) and head_diff(records["epoch0"], records["start"]) > 0
    assert all(records["epoch1"]["backbone_requires_grad"]) and backbone_diff(records["epoch1"], weights_only=True) > 0
    print(json.dumps({k: backbone_diff(records[k], weights_only=True) for k in ("start", "epoch0", "epoch1")}))
