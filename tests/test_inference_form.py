"""Every PConv / block form gives the same outputs: training form, inference forms, fused, traced and exported.

Timings are not asserted anywhere: ``benchmarks/performance.py`` measures them.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from ultralytics.nn.modules import Conv

from yolo_fasternet import C2f_Faster, C3k2_Faster, FasterNetBlock, PatchEmbed, PatchMerging, PConv
from yolo_fasternet.integration.inference_form import fused_copy
from yolo_fasternet.nn import C2f_SPConv, PartialNetBlock, SPConv

from conftest import assert_close_to_magnitude, assert_outputs_close, nontrivial_outputs, randomize_batchnorm

BUILDERS = {
    "pconv": lambda: PConv(32, 32),
    "pconv-slicing": lambda: PConv(32, 32, 4, "slicing"),
    "pconv-preallocated": lambda: PConv(32, 32, 4, "preallocated"),
    "fasternet-block-layer-scale": lambda: FasterNetBlock(32, 32, act="gelu", layer_scale=0.5),
    "fasternet-stages": lambda: nn.Sequential(
        PatchEmbed(3, 32, 4), FasterNetBlock(32, act="gelu"), PatchMerging(32, 64), FasterNetBlock(64, act="relu")
    ),
    "c2f-faster": lambda: nn.Sequential(Conv(3, 32, 3, 2), C2f_Faster(32, 64, 2, True)),
    "c3k2-faster": lambda: nn.Sequential(Conv(3, 32, 3, 2), C3k2_Faster(32, 64, 1, True), C3k2_Faster(64, 64, 1)),
    "spconv": lambda: nn.Sequential(Conv(3, 32, 3, 2), SPConv(32, 32, 2), C2f_SPConv(32, 64, 2, True)),
    "partialnet-stages": lambda: nn.Sequential(
        PatchEmbed(3, 32, 4),
        PartialNetBlock(32, 32, "channel", act="gelu", spatial_mlp=True),
        PatchMerging(32, 64),
        PartialNetBlock(64, 64, "self", act="relu"),
    ),
}


def _input_for(name: str) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 32 if name.startswith(("pconv", "fasternet-block")) else 3, 64, 64)


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = randomize_batchnorm(BUILDERS[name]())
    for m in model.modules():
        if isinstance(m, FasterNetBlock) and m.layer_scale is not None:
            m.layer_scale.data.uniform_(0.5, 1.5)
    return model.eval()


def _training_form(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The form training runs: split_cat PConv, BN unfused, autograd recording (eval statistics, so comparable)."""
    with torch.enable_grad():
        return model(x.clone().requires_grad_(True)).detach()


@pytest.mark.parametrize("name", list(BUILDERS))
def test_fused_inference_form_equals_the_training_form(name):
    """Fused, channels-last on CPU (what fuse() selects) and fused NCHW all match the training form within 1e-4."""
    model, x = _model(name), _input_for(name)
    expected = _training_form(model, x)
    with torch.inference_mode():
        assert_close_to_magnitude(fused_copy(model)(x), expected)
        assert_close_to_magnitude(fused_copy(model, channels_last=False)(x), expected)
        assert_close_to_magnitude(model(x.contiguous(memory_format=torch.channels_last)), expected)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_traced_and_onnx_exports_equal_the_training_form_without_scatternd(name, tmp_path):
    """TorchScript and ONNX exports of the fused form match, and no export contains ScatterND (not even slicing)."""
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    model, x = _model(name), _input_for(name)
    expected = _training_form(model, x)
    fused = fused_copy(model)
    with torch.inference_mode():
        traced = torch.jit.trace(fused, x)
        traced_out = traced(x)
    assert_close_to_magnitude(traced_out, expected)
    assert traced_out.is_contiguous(), "the traced graph must not bake in the channels-last switch"

    path = tmp_path / f"{name}.onnx"
    with torch.no_grad():  # as Ultralytics' exporter runs it: without autograd, slicing would otherwise be taken
        torch.onnx.export(fused, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"])
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "ScatterND" not in ops, f"{name}: exported graph has ScatterND ({sorted(ops)})"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert_close_to_magnitude(torch.from_numpy(session.run(None, {"x": x.numpy()})[0]), expected)


def test_fuse_folds_the_layer_scale_into_the_projection():
    """After fuse() the block has no layer scale left; its projection carries it."""
    model = _model("fasternet-block-layer-scale")
    scale = model.layer_scale.detach().clone()
    fused = fused_copy(model)
    assert fused.layer_scale is None
    torch.testing.assert_close(fused.project.weight, model.project.weight * scale.view(-1, 1, 1, 1))


def _activation_layouts(model: nn.Module, x: torch.Tensor) -> list[bool]:
    """Whether each Conv2d of ``model`` received a channels-last input, in call order."""
    seen: list[bool] = []
    hooks = [
        m.register_forward_pre_hook(
            lambda _m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
        )
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
    ]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.mark.registration
@pytest.mark.parametrize("yaml_name", ["yolov8n-fasternet.yaml", "yolov8n-c2f-faster.yaml"])
def test_yolo_fuse_selects_channels_last_and_keeps_detections(yaml_name):
    """YOLO(...).model.fuse() selects preallocated PConv and channels-last activations from the first plugin layer."""
    from ultralytics import YOLO

    model = nontrivial_outputs(YOLO(yaml_name, verbose=False).model).eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.inference_mode():
        expected = model(x)[0]
        assert not any(_activation_layouts(model, x)), "unfused models keep Ultralytics' NCHW layout"
        fused = copy.deepcopy(model).fuse(verbose=False)
        assert all(m.channels_last for m in fused.modules() if hasattr(type(m), "channels_last"))
        assert all(m.mode == "preallocated" for m in fused.modules() if isinstance(m, PConv))
        layouts = _activation_layouts(fused, x)
        out = fused(x)[0]
    assert sum(layouts) > len(layouts) // 2, f"most 1x1 convs should see channels-last inputs, saw {layouts}"
    assert_outputs_close(out, expected, model)
    assert out.is_contiguous(), "Detect's output keeps its usual layout"

    fused.train()
    with torch.no_grad():
        assert not any(_activation_layouts(fused, x)), "training mode never switches layout"


@pytest.mark.parametrize(
    "yaml_name", ["yolov8n-fasternet-seg.yaml", "yolo11n-fasternet-pose.yaml", "yolov8n-fasternet-obb.yaml"]
)
def test_predictor_runs_the_inference_form_through_every_task_head(yaml_name):
    """Ultralytics' predictor fuses its copy (inference form on), computes what the training form computes (boxes,
    scores, masks, keypoints, angles each compared), and its task post-processing accepts the layout."""
    import numpy as np
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(yaml_name, verbose=False)
    nontrivial_outputs(model.model)
    training_form = copy.deepcopy(model.model).eval()
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    result = model.predict(image, imgsz=96, conf=1e-9, device="cpu", verbose=False)[0]
    predictor_model = model.predictor.model.model
    assert any(getattr(m, "channels_last", False) for m in predictor_model.modules())
    x = model.predictor.preprocess([image])
    with torch.no_grad():
        assert_outputs_close(model.predictor.model(x), training_form(x), training_form, what=f"predictor {yaml_name}")
    assert len(result) > 0, "at conf=1e-9 random weights give detections, so post-processing really ran"


@pytest.mark.range
def test_compiled_forward_passes_count_as_exporting_from_torch_2_1():
    from types import SimpleNamespace

    from yolo_fasternet.nn import inference_layout
    from yolo_fasternet.supported import release

    assert inference_layout.is_exporting() is False
    compiled = torch.compile(lambda x: x + 1 if inference_layout.is_exporting() else x, backend="eager")
    # torch 2.0's dynamo runs torch._dynamo.is_compiling() as plain Python (False): the fused form then hands
    # channels-last activations on inside compiled graphs too (same values, tested in the fused-form tests)
    seen = 0.0 if release(torch.__version__)[:2] == (2, 0) else 1.0
    assert compiled(torch.zeros(1)).item() == seen
    assert inference_layout.compile_check(SimpleNamespace())() is False  # a torch without the dynamo API
