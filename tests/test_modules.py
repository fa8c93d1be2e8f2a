"""Behaviour of the FasterNet modules on their own: shapes, PConv forms, gradients, fusing, argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from ultralytics.nn.modules import C2f, Conv

from yolo_fasternet import C2f_Faster, FasterNetBlock, PatchEmbed, PatchMerging, PConv
from yolo_fasternet.integration.inference_form import fused_copy
from yolo_fasternet.nn.activation import model_activation

from conftest import assert_close_to_magnitude, randomize_batchnorm


def test_pconv_convolves_only_the_first_quarter_of_channels():
    torch.manual_seed(0)
    pconv = PConv(16, 16, n_div=4).eval()
    x = torch.randn(2, 16, 8, 8)
    y = pconv(x)
    assert y.shape == x.shape
    assert pconv.conv.in_channels == pconv.conv.out_channels == 4
    assert torch.equal(y[:, 4:], x[:, 4:])
    assert not torch.allclose(y[:, :4], x[:, :4])


def test_pconv_slicing_equals_split_cat_in_inference_and_keeps_input_intact():
    torch.manual_seed(0)
    split = PConv(32, 32, mode="split_cat").eval()
    slicing = PConv(32, 32, mode="slicing").eval()
    slicing.load_state_dict(split.state_dict())
    x = torch.randn(2, 32, 16, 16)
    x_before = x.clone()
    with torch.no_grad():
        y = slicing(x)
        assert_close_to_magnitude(y, split(x), atol=1e-6, rel=1e-6)  # the same convolution, written elsewhere
    assert torch.equal(x, x_before)


def test_pconv_slicing_falls_back_to_split_cat_while_training():
    torch.manual_seed(0)
    pconv = PConv(16, 16, mode="slicing").train()
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    (pconv(x) + x).sum().backward()  # the in-place form would raise "modified by an inplace operation"
    assert x.grad is not None and pconv.conv.weight.grad is not None


def test_fasternet_block_is_pconv_mlp_with_residual():
    block = FasterNetBlock(64, 64, act="relu")
    assert isinstance(block.spatial_mixing, PConv)
    assert block.expand.conv.kernel_size == (1, 1) and block.expand.conv.out_channels == 128
    assert isinstance(block.expand.bn, nn.BatchNorm2d) and isinstance(block.expand.act, nn.ReLU)
    assert block.project.kernel_size == (1, 1) and block.project.bias is None
    with torch.no_grad():
        block.project.weight.zero_()
    x = torch.randn(1, 64, 8, 8)
    assert torch.equal(block.eval()(x), x)  # a zero branch leaves exactly the residual


@pytest.mark.parametrize("act, cls", [("gelu", nn.GELU), ("relu", nn.ReLU), ("silu", nn.SiLU), ("ReLU", nn.ReLU)])
def test_fasternet_block_activation_is_selectable(act, cls):
    assert isinstance(FasterNetBlock(16, 16, act=act).expand.act, cls)


def test_model_activation_picks_the_entry_for_the_scale():
    spec = {"fasternet_act": {"n": "gelu", "m": "relu"}}
    with model_activation({**spec, "scale": "m"}):
        assert isinstance(FasterNetBlock(16, 16).expand.act, nn.ReLU)
    with model_activation({**spec, "scale": "n"}):
        assert isinstance(FasterNetBlock(16, 16).expand.act, nn.GELU)
    assert isinstance(FasterNetBlock(16, 16).expand.act, nn.GELU)  # fallback outside a model build


def test_fasternet_block_layer_scale_and_drop_path():
    block = FasterNetBlock(16, 16, drop_path=0.5, layer_scale=1e-2)
    assert block.layer_scale.shape == (16, 1, 1)
    assert torch.allclose(block.layer_scale, torch.full((16, 1, 1), 1e-2))
    x = torch.randn(8, 16, 4, 4)
    block.eval()
    assert torch.equal(block(x), block(x))  # drop path is off in eval


@pytest.mark.parametrize("module", [FasterNetBlock(32, 32), C2f_Faster(32, 64, 2, True), PConv(32, 32)])
def test_gradients_reach_every_parameter(module):
    torch.manual_seed(0)
    module.train()
    module(torch.randn(2, 32, 16, 16)).square().mean().backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no gradient for {missing}"


def test_patch_layers_are_stride_k_convs_without_padding_or_activation():
    stem, merge = PatchEmbed(3, 40, 4), PatchMerging(40, 80, 2)
    assert stem.conv.stride == (4, 4) and stem.conv.padding == (0, 0) and isinstance(stem.act, nn.Identity)
    assert merge.conv.stride == (2, 2) and merge.conv.padding == (0, 0) and isinstance(merge.act, nn.Identity)
    y = merge(stem(torch.randn(1, 3, 64, 64)))
    assert y.shape == (1, 80, 8, 8)


def test_c2f_faster_has_the_c2f_contract_with_fasternet_blocks():
    ref, ours = C2f(64, 128, 3, True), C2f_Faster(64, 128, 3, True)
    assert isinstance(ours, C2f)
    assert ours.c == ref.c and len(ours.m) == 3
    assert all(isinstance(b, FasterNetBlock) and b.add for b in ours.m)
    assert ours.cv1.conv.weight.shape == ref.cv1.conv.weight.shape
    assert ours.cv2.conv.weight.shape == ref.cv2.conv.weight.shape
    assert not any(b.add for b in C2f_Faster(64, 128, 2, False).m)
    x = torch.randn(1, 64, 16, 16)
    ours.eval()
    assert_close_to_magnitude(ours(x), ours.forward_split(x), atol=1e-6, rel=1e-6)  # the same convs, split apart


def test_c2f_faster_uses_the_model_default_activation():
    assert all(b.expand.act is Conv.default_act for b in C2f_Faster(32, 32, 2).m)


@pytest.mark.parametrize(
    "build",
    [
        lambda: nn.Sequential(PatchEmbed(3, 32, 4), FasterNetBlock(32, 32), PatchMerging(32, 64), FasterNetBlock(64)),
        lambda: nn.Sequential(Conv(3, 32, 3, 2), C2f_Faster(32, 64, 2, True), C2f_Faster(64, 64, 1, False)),
    ],
    ids=["fasternet-stages", "c2f-faster"],
)
def test_fuse_folds_every_batchnorm_and_keeps_outputs(build):
    torch.manual_seed(0)
    model = randomize_batchnorm(build()).eval()
    x = torch.randn(2, 3, 64, 64)
    fused = fused_copy(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    with torch.no_grad():
        assert_close_to_magnitude(fused(x), model(x), what="fused")


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: PConv(2, 2, n_div=4), ["n_div=4", "c1=2"]),
        (lambda: PConv(8, 16), ["c1=8", "c2=16"]),
        (lambda: PConv(8, 8, mode="fast"), ["mode='fast'"]),
        (lambda: FasterNetBlock(16, 32), ["c1=16", "c2=32"]),
        (lambda: FasterNetBlock(16, 16, mlp_ratio=0), ["mlp_ratio=0"]),
        (lambda: FasterNetBlock(16, 16, act="tanh"), ["tanh"]),
        (lambda: PatchEmbed(3, 0, 4), ["c2=0"]),
        (lambda: C2f_Faster(16, 16, 1, False, 2), ["g=2"]),
    ],
)
def test_impossible_arguments_raise_value_error_with_the_values(build, words):
    with pytest.raises(ValueError) as e:
        build()
    assert all(w in str(e.value) for w in words), str(e.value)
