"""SAConv (switchable atrous convolution): the switch, weight standardisation, YAML use, fuse() and ONNX export."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional
from ultralytics.nn.modules import Conv

from yolo_fasternet import SAConv

from conftest import assert_close_to_magnitude, assert_outputs_close, nontrivial_outputs, randomize_batchnorm


def _fuse(module: nn.Module) -> nn.Module:
    """Fuse the way Ultralytics' BaseModel.fuse() does, on a copy."""
    from ultralytics.nn.tasks import BaseModel

    holder = BaseModel()
    holder.model = copy.deepcopy(module)
    holder.fuse(verbose=False)
    return holder.model


def _randomize(m: SAConv) -> SAConv:
    """Non-trivial switch, context and weight_diff (all start at zero), so every branch shows in the output."""
    torch.manual_seed(1)
    for p in (m.weight_diff, m.switch.weight, m.pre_context.weight, m.post_context.weight, m.post_context.bias):
        p.data.normal_(0, 0.1)
    return randomize_batchnorm(m)


def test_shapes_follow_conv_args():
    x = torch.randn(2, 8, 17, 17)
    assert SAConv(8, 16)(x).shape == (2, 16, 17, 17)
    assert SAConv(8, 16, 3, 2)(x).shape == Conv(8, 16, 3, 2)(x).shape == (2, 16, 9, 9)
    assert SAConv(8, 4, 5, 2).eval()(torch.randn(1, 8, 2, 2)).shape == (1, 4, 1, 1)  # smaller than the 5x5 switch pool


@pytest.mark.parametrize("args", [(8, 16, 2), (0, 16), (8, 16, 3, 0)])
def test_impossible_arguments_raise_value_error(args):
    with pytest.raises(ValueError, match="SAConv needs"):
        SAConv(*args)


def test_weight_is_standardised_per_output_filter():
    m = SAConv(8, 16)
    m.weight.data.mul_(7).add_(3)
    w = m.standardized_weight()
    assert torch.allclose(w.mean((1, 2, 3)), torch.zeros(16), atol=1e-5)
    assert torch.allclose(w.pow(2).mean((1, 2, 3)), torch.ones(16), atol=1e-3)


@pytest.mark.parametrize("switch, dilation", [(1.0, 1), (0.0, 3)])
def test_switch_selects_the_dilation(switch, dilation):
    torch.manual_seed(0)
    m = SAConv(8, 16, act=False).eval()
    m.weight_diff.data.normal_(0, 0.1)
    nn.init.constant_(m.switch.bias, switch)  # switch weight is zero: s is this constant everywhere
    x = torch.randn(1, 8, 12, 12)
    w = m.standardized_weight() + (m.weight_diff if dilation == 3 else 0)
    expected = m.bn(functional.conv2d(x, w, padding=dilation, dilation=dilation))  # zero-initialised contexts
    with torch.no_grad():
        assert_close_to_magnitude(m(x), expected, atol=1e-5, rel=1e-6)  # the same arithmetic restated


def test_gradients_reach_every_parameter():
    m = _randomize(SAConv(8, 16, 3, 2)).train()
    m(torch.randn(2, 8, 16, 16)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


@pytest.mark.parametrize("scale", "nsmlx")
def test_yaml_puts_saconv_at_p4_and_p5_and_scales_like_conv(scale):
    import copy

    from ultralytics import YOLO
    from ultralytics.nn import tasks

    def layers(name):  # built on the meta device: shapes without memory, fast at x
        d = tasks.yaml_model_load(name)
        with torch.device("meta"):
            return tasks.parse_model(copy.deepcopy(d), ch=3, verbose=False)[0]

    model, stock = layers(f"yolov8{scale}-saconv.yaml"), layers(f"yolov8{scale}.yaml")
    assert [i for i, m in enumerate(model) if isinstance(m, SAConv)] == [5, 7]
    assert model[5].weight.shape[0] == {"n": 128, "s": 256, "m": 384, "l": 512, "x": 640}[scale]  # 512 x width
    for i in (5, 7):
        assert model[i].weight.shape == stock[i].conv.weight.shape  # same widths as the stock Conv at this scale
    if scale == "n":
        ours, theirs = YOLO("yolov8n-saconv.yaml").model.eval(), YOLO("yolov8n.yaml").model.eval()
        assert ours(torch.zeros(1, 3, 64, 64))[0].shape == theirs(torch.zeros(1, 3, 64, 64))[0].shape


def test_fuse_folds_bn_into_saconv_exactly():
    m = _randomize(SAConv(8, 16, 3, 2)).eval()
    x = torch.randn(2, 8, 15, 15)
    with torch.no_grad():
        before = m(x)
        fused = _fuse(m)
        assert "bn" not in fused._modules and fused.forward == fused.forward_fuse
        assert_close_to_magnitude(fused(x), before, atol=1e-5, rel=1e-6)  # one conv, BN folded
    assert "bn" in m._modules  # _fuse worked on a copy


def test_model_fuse_reaches_saconv_and_keeps_outputs():
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolov8n-saconv.yaml").model
    for m in model.modules():
        if isinstance(m, SAConv):
            _randomize(m)
    model = nontrivial_outputs(model).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[0]
        model.fuse(verbose=False)
        after = model(x)[0]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert_outputs_close(after, before, model, what="fused yolov8n-saconv")


def test_onnx_export_matches_pytorch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = _fuse(nn.Sequential(randomize_batchnorm(Conv(3, 8, 3, 2)), _randomize(SAConv(8, 16, 3, 2)))).eval()
    x = torch.randn(1, 3, 32, 32)
    path = tmp_path / "saconv.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert_close_to_magnitude(y, model(x), what="ONNX Runtime")


@pytest.mark.slow
def test_full_yaml_model_exports_to_onnx(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolov8n-saconv.yaml").model
    for m in model.modules():
        if isinstance(m, SAConv):
            _randomize(m)
    model = nontrivial_outputs(model).fuse(verbose=False).eval()
    x = torch.rand(1, 3, 64, 64)
    path = tmp_path / "yolov8n-saconv.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["images"])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = session.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        assert_outputs_close(y, model(x)[0], model, what="ONNX Runtime")


def test_zoo_counts_the_functional_convolutions_of_saconv():
    """THOP sees no FLOPs in SAConv's two functional convs; the zoo (and the ablation table) adds them.

    yolov8n-saconv is yolov8n with the stride-2 3x3 convs at P4 (64->128) and P5 (128->256) replaced: at 320 px each
    costs 2*c1*c2*9*H*W = 59.0 MFLOPs, and SAConv runs the kernel twice, so it adds about 0.118 GFLOPs (plus its tiny
    switch and context convs).
    """
    from yolo_fasternet.apps.zoo import build

    extra = build("yolov8n-saconv.yaml", 320)[1].gflops - build("yolov8n.yaml", 320)[1].gflops
    assert 0.11 < extra < 0.16, extra
