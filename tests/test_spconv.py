"""SPConv and C2f_SPConv: the reference arithmetic (restated here independently), constraints, fusing, YAML scaling."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional
from ultralytics import YOLO
from ultralytics.nn import tasks
from ultralytics.nn.modules import C2f, C3k2
from ultralytics.nn.modules.block import C3k
from ultralytics.nn.tasks import DetectionModel

from yolo_fasternet import ModelYamlError
from yolo_fasternet.integration.inference_form import fused_copy
from yolo_fasternet.nn import C2f_SPConv, C3k2_SPConv, C3k_SPConv, SPConv, SPConvBottleneck

from conftest import assert_close_to_magnitude, randomize_batchnorm

SCALES = "nsmlx"


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, training: bool) -> torch.Tensor:
    """BatchNorm written out: batch statistics (biased variance) in training, running statistics in eval."""
    if training:
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    shape = (1, -1, 1, 1)
    return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)


def _grouped3x3(x: torch.Tensor, weight: torch.Tensor, stride: int) -> torch.Tensor:
    """A 2-group 3x3 convolution written as two ordinary convolutions on the two halves."""
    xa, xb = x.chunk(2, dim=1)
    wa, wb = weight.chunk(2, dim=0)
    return torch.cat([functional.conv2d(xa, wa, None, stride, 1), functional.conv2d(xb, wb, None, stride, 1)], 1)


def spconv_reference(m: SPConv, x: torch.Tensor, stride: int, ratio: float, training: bool) -> torch.Tensor:
    """SPConv_3x3 of qiulinzhang/SPConv.pytorch followed by BN + SiLU (its ResNet bottleneck), restated."""
    r = int(x.shape[1] * ratio)
    rep, rest = x[:, :r], x[:, r:]
    pooled = (lambda t: functional.avg_pool2d(t, 2, 2)) if stride == 2 else (lambda t: t)
    u = _bn(_grouped3x3(rep, m.gwc.weight, stride) + functional.conv2d(pooled(rep), m.pwc.weight), m.bn_3x3, training)
    v = _bn(functional.conv2d(pooled(rest), m.conv_1x1.weight, m.conv_1x1.bias), m.bn_1x1, training)
    # softmax over two values == a sigmoid of their difference
    w_u = torch.sigmoid(u.mean((2, 3)) - v.mean((2, 3)))[..., None, None]
    y = _bn(w_u * u + (1 - w_u) * v, m.bn, training)
    return y * torch.sigmoid(y)


def _random_spconv(c1: int, c2: int, stride: int, ratio: float) -> SPConv:
    torch.manual_seed(0)
    m = randomize_batchnorm(SPConv(c1, c2, stride, ratio))
    with torch.no_grad():
        m.conv_1x1.bias.uniform_(-0.5, 0.5)
    return m


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c1, c2, ratio", [(16, 32, 0.5), (24, 16, 0.25)])
def test_spconv_matches_the_reference_arithmetic(c1, c2, ratio, stride, training):
    m = _random_spconv(c1, c2, stride, ratio).train(training)
    x = torch.randn(3, c1, 12, 10)
    with torch.no_grad():
        expected = spconv_reference(m, x, stride, ratio, training)
        actual = m(x)
    assert actual.shape == (3, c2, 12 // stride, 10 // stride)
    assert_close_to_magnitude(
        actual, expected, atol=1e-5, rel=1e-5
    )  # same float32 operations, reordered: rounding only


@pytest.mark.parametrize("stride", [1, 2])
def test_fused_spconv_folds_both_branch_bns_and_keeps_outputs(stride):
    m = _random_spconv(32, 32, stride, 0.5).eval()
    x = torch.randn(2, 32, 16, 16)
    fused = fused_copy(m)
    assert all(isinstance(bn, nn.Identity) for bn in (fused.bn_3x3, fused.bn_1x1, fused.bn))
    with torch.no_grad():
        assert_close_to_magnitude(
            fused(x), m(x), atol=1e-4, rel=1e-4
        )  # folded weights round differently: 1e-4 of the magnitude


def test_spconv_is_a_drop_in_for_a_3x3_conv():
    m = SPConv(32, 64, 2)
    assert m.gwc.groups == 2 and m.gwc.kernel_size == (3, 3) and m.gwc.in_channels == 16
    assert m.pwc.bias is None and m.conv_1x1.bias is not None and m.conv_1x1.in_channels == 16
    assert m(torch.randn(1, 32, 8, 8)).shape == (1, 64, 4, 4)


def test_gradients_reach_every_parameter():
    m = C2f_SPConv(32, 32, 2, True).train()
    m(torch.randn(2, 32, 8, 8)).square().mean().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_c2f_spconv_has_the_c2f_contract_with_spconv_bottlenecks():
    ref, ours = C2f(64, 128, 3, True), C2f_SPConv(64, 128, 3, True)
    assert isinstance(ours, C2f) and ours.c == ref.c and len(ours.m) == 3
    assert all(isinstance(b, SPConvBottleneck) and b.add for b in ours.m)
    assert all(isinstance(b.cv1, SPConv) and isinstance(b.cv2, SPConv) for b in ours.m)
    assert ours.cv1.conv.weight.shape == ref.cv1.conv.weight.shape
    assert ours.cv2.conv.weight.shape == ref.cv2.conv.weight.shape
    x = torch.randn(1, 64, 8, 8)
    ours.eval()
    assert_close_to_magnitude(ours(x), ours.forward_split(x), atol=1e-6, rel=1e-6)  # the same convs, split apart


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: SPConv(16, 16, 3), ["stride", "s=3"]),
        (lambda: SPConv(16, 16, 1, 1.0), ["ratio=1.0"]),
        (lambda: SPConv(12, 16, 1, 0.25), ["int(c1 * ratio)=3"]),
        (lambda: SPConv(16, 15), ["c2=15"]),
        (lambda: C2f_SPConv(16, 16, 1, False, 2), ["g=2"]),
    ],
)
def test_constraints_are_one_line_errors_with_the_values(build, words):
    with pytest.raises(ValueError) as e:
        build()
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_odd_input_at_stride_2_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^SPConv \(stride 2\) needs an even input height and width, got 9x8$"):
        SPConv(16, 16, 2)(torch.randn(1, 16, 9, 8))


def test_yaml_row_violation_names_the_layer():
    d = tasks.yaml_model_load("yolov8n-spconv.yaml")
    d["backbone"][1] = [-1, 1, "SPConv", [128, 3]]  # stride 3 cannot align SPConv's two branches
    with pytest.raises(ModelYamlError, match=r"^model YAML layer 1 \(SPConv\).*s=3") as e:
        DetectionModel(d, verbose=False)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("family, stock_cls, ours_cls", [("yolov8", C2f, C2f_SPConv), ("yolo11", C3k2, C3k2_SPConv)])
@pytest.mark.parametrize("scale", SCALES)
def test_spconv_csp_blocks_scale_like_their_builtins(family, stock_cls, ours_cls, scale):
    ours = YOLO(f"{family}{scale}-spconv.yaml", verbose=False).model
    stock = YOLO(f"{family}{scale}.yaml", verbose=False).model
    assert len(ours.model) == len(stock.model)
    for a, b in zip(ours.model, stock.model):
        if type(b) is stock_cls:
            assert isinstance(a, ours_cls) and len(a.m) == len(b.m)
            assert a.cv1.conv.weight.shape == b.cv1.conv.weight.shape
            assert a.cv2.conv.weight.shape == b.cv2.conv.weight.shape
            assert [isinstance(m, C3k) for m in b.m] == [isinstance(m, C3k_SPConv) for m in a.m]  # c3k at m/l/x
        else:
            assert type(a) is type(b)


@pytest.mark.parametrize("source, sub", [("yolov8.yaml", "C2f=C2f_SPConv"), ("yolo11.yaml", "C3k2=C3k2_SPConv")])
def test_graft_substitutes_the_spconv_blocks_into_stock_yamls(source, sub, tmp_path):
    from yolo_fasternet.cli import main as cli_main

    out = tmp_path / "grafted.yaml"
    assert cli_main(["graft", source, sub, "-o", str(out)]) == 0  # graft also builds the result at every scale
    old, new = sub.split("=")
    text = out.read_text()
    assert f", {new}, " in text and f", {old}, " not in text


def test_final_bn_with_a_near_zero_scale_stays_and_outputs_still_match():
    m = _random_spconv(16, 16, 1, 0.5).eval()
    with torch.no_grad():
        m.bn.weight[3] = 0.0  # folding would divide the mixing logits by this channel's scale
    x = torch.randn(2, 16, 8, 8)
    fused = fused_copy(m)
    assert isinstance(fused.bn, nn.BatchNorm2d) and fused.logit_scale is None
    with torch.no_grad():
        assert_close_to_magnitude(fused(x), m(x), atol=1e-4, rel=1e-4)
