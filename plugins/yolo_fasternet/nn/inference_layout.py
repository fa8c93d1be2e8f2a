"""The channels-last inference layout that fused FasterNet modules hand on, and the switch each module carries.

oneDNN runs the 1x1 convolutions of a FasterNet block much faster on channels-last (NHWC) activations than on NCHW
ones when the channel count is small (40 -> 80 at 160x160: 1.05 ms instead of 2.07 ms in the run in
docs/performance.md). A fused model therefore turns its activations channels-last at the first plugin layer it meets;
every later convolution, stock ones included, keeps that layout. Only the memory layout changes (outputs agree to
float rounding, tested to 1e-4). It is skipped on GPUs (not measured there), while tracing or exporting (graphs stay
layout-free), and for tensors that are not 4-D.
"""

from __future__ import annotations

import torch


def compile_check(torch_module=torch):
    """torch's "is dynamo compiling" test: ``torch.compiler.is_compiling`` (torch 2.3+), else ``torch._dynamo``'s.

    torch 2.0's dynamo does not see its own ``is_compiling()`` (it returns False while compiling), so there the
    channels-last hand-on also happens inside ``torch.compile`` graphs (same values, only the memory layout).
    """
    for owner in ("compiler", "_dynamo"):  # a torch with neither has no torch.compile to ask about
        check = getattr(getattr(torch_module, owner, None), "is_compiling", None)
        if check is not None:
            return check
    return lambda: False


is_compiling = compile_check()


def is_exporting() -> bool:
    """Whether the forward pass is traced, scripted, exported or compiled (``from yolo_fasternet import is_exporting``).

    True under ``torch.jit.trace``/``script`` (TorchScript, NCNN's pnnx, CoreML), ONNX export (ONNX, OpenVINO, MNN)
    and ``torch.export``/dynamo (LiteRT). A module's forward branches on it to trace its export form: no in-place
    channel writes, no op a converter lacks (docs/deploying.md, "Export forms").
    """
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export() or is_compiling()


class ChannelsLastInference:
    """Mixin for ``nn.Module`` classes whose deploy form hands channels-last activations on (CPU, eager, eval).

    ``switch_to_deploy()`` is the inference-form switch in the style of RepVGG/MobileOne in timm and ``RepConv`` in
    Ultralytics: ``model.fuse()`` calls it on every module that has one (see ``integration.inference_form``).
    Subclasses that have more to switch (a PConv mode, a folded layer scale) extend it.
    """

    channels_last = False  # class default: also what modules unpickled from older checkpoints read

    def switch_to_deploy(self, channels_last: bool = True) -> None:
        """Select the inference form; ``channels_last=False`` keeps NCHW activations (for comparisons)."""
        self.channels_last = channels_last

    def inference_layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in channels-last layout when this module runs in the fused CPU inference form; ``x`` otherwise."""
        if (
            self.channels_last
            and x.device.type == "cpu"
            and x.dim() == 4
            and x.is_contiguous()  # dense NCHW; views such as C2f's chunks are left to the convolution that reads them
            and not self.training
            and not is_exporting()
        ):
            return x.contiguous(memory_format=torch.channels_last)
        return x
