"""PConv's export forms (``nn/pconv.py``: ``split_cat``, ``aligned8``, ``aligned16``, ``full``) equal its training form.

Every form is checked where it is used: traced by TorchScript (what pnnx reads for NCNN) and exported to ONNX (what
ONNX Runtime, MNN and OpenVINO read), on PConv alone and inside the blocks that hold one, with random weights and
random BatchNorm statistics, in eval mode, against the training form (split_cat, autograd recording). Which form
``model.fuse()`` selects for an export is pinned here too; why it was selected is measured by
``benchmarks/profile_runtimes.py`` (docs/performance.md). Timings are never asserted.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from yolo_fasternet import C2f_Faster, C3k2_Faster, FasterNetBlock, PConv
from yolo_fasternet.integration.inference_form import fused_copy
from yolo_fasternet.nn.pconv import PCONV_EXPORT_FORMS, SELECTED_EXPORT_FORM, forced_export_form

from conftest import assert_close_to_magnitude, randomize_batchnorm

# channels -> convolved part: 40 -> 10 (FasterNet-T0 stage 1, off every pack), 80 -> 20, 64 -> 16 (aligned), 12 -> 3
CHANNELS = (40, 80, 64, 12)
BLOCKS = {
    "fasternet-block": lambda: FasterNetBlock(40, 40, act="gelu"),
    "c2f-faster": lambda: C2f_Faster(40, 80, 2, True),
    "c3k2-faster": lambda: C3k2_Faster(40, 80, 1, True),
}


def _training_form(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        return model(x.clone().requires_grad_(True)).detach()


def _fused(model: nn.Module, form: str) -> nn.Module:
    with forced_export_form(form):
        return fused_copy(model)


def _onnx_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    onnxruntime = pytest.importorskip("onnxruntime")
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17, input_names=["x"])
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def _pconv(c: int) -> PConv:
    torch.manual_seed(c)
    return PConv(c, c).eval()


@pytest.mark.parametrize("form", PCONV_EXPORT_FORMS)
@pytest.mark.parametrize("c", CHANNELS)
def test_pconv_export_form_traces_and_exports_to_the_training_form(form, c):
    """TorchScript trace and ONNX export of each form equal split_cat within 1e-4 of the output's magnitude."""
    pconv, x = _pconv(c), torch.randn(2, c, 16, 16)
    expected = _training_form(pconv, x)
    fused = _fused(pconv, form)
    with torch.no_grad():
        assert_close_to_magnitude(torch.jit.trace(fused, x)(x), expected, what=f"{form} traced")
    assert_close_to_magnitude(_onnx_output(fused, x), expected, what=f"{form} onnx")


@pytest.mark.parametrize("c", CHANNELS)
def test_widened_kernel_is_the_pconv_kernel_plus_identity(c):
    """aligned16 widens the convolved part to a multiple of 16 (at most all channels) with centre-tap identities."""
    pconv = _pconv(c)
    width = pconv.export_width("aligned16")
    assert width % 16 == 0 or width == c
    assert pconv.dim_conv <= width <= c
    w = pconv.widened_weight(width)
    assert torch.equal(w[: pconv.dim_conv, : pconv.dim_conv], pconv.conv.weight.detach())
    rest = w[pconv.dim_conv :].clone()
    identity = torch.zeros_like(rest)
    identity[torch.arange(width - pconv.dim_conv), torch.arange(pconv.dim_conv, width), 1, 1] = 1.0
    assert torch.equal(rest, identity)
    assert not w[: pconv.dim_conv, pconv.dim_conv :].any()


@pytest.mark.parametrize("form", PCONV_EXPORT_FORMS)
@pytest.mark.parametrize("name", list(BLOCKS))
def test_blocks_export_with_each_form_to_their_training_form(name, form):
    """The blocks holding a PConv, fused with each form, trace and export to the training form."""
    torch.manual_seed(0)
    model = randomize_batchnorm(BLOCKS[name]()).eval()
    x = torch.randn(1, 40, 32, 32)
    expected = _training_form(model, x)
    fused = _fused(model, form)
    with torch.no_grad():
        assert_close_to_magnitude(torch.jit.trace(fused, x)(x), expected, what=f"{name} {form} traced")
    assert_close_to_magnitude(_onnx_output(fused, x), expected, what=f"{name} {form} onnx")


def test_fuse_selects_the_measured_export_form():
    """``model.fuse()`` (which ``yolo export`` calls) prepares the selected form; eager inference keeps preallocated."""
    pconv = fused_copy(_pconv(40))
    assert pconv.mode == "preallocated"
    expected_width = pconv.export_width(SELECTED_EXPORT_FORM)
    width = pconv.dim_conv if pconv.export_weight is None else pconv.export_weight.shape[0]
    assert width == expected_width


def test_training_and_eager_forward_ignore_the_export_kernel():
    """The widened kernel is a copy made at fuse time: training and eager forwards use the PConv's own weight."""
    pconv = _fused(_pconv(40), "full")
    with torch.no_grad():
        pconv.conv.weight.mul_(2.0)  # the export kernel is now stale; only a trace or export may read it
    x = torch.randn(1, 40, 8, 8)
    pconv.train()
    expected = pconv.forward_split_cat(x)
    assert torch.equal(pconv(x), expected)
    pconv.eval()
    with torch.no_grad():
        assert_close_to_magnitude(pconv(x), expected, atol=1e-6, rel=1e-6)


def test_an_unknown_export_form_is_a_one_line_error():
    with pytest.raises(ValueError, match="PConv export form must be one of"):
        with forced_export_form("grouped"):
            pass
