"""The inference form that ``model.fuse()`` selects, after Ultralytics has folded the BNs.

Each module that has an inference form carries it as a ``switch_to_deploy()`` method (the RepVGG/MobileOne
convention in timm, ``RepConv.fuse_convs()`` in Ultralytics); registration wraps ``BaseModel.fuse`` so that every
such method is called once Ultralytics has folded the BatchNorms. That covers ``predict``, checkpoint ``val`` and
``export`` alike. The FasterNet forms, measured with ``benchmarks/performance.py`` on a 2-core AVX-512 CPU (see
docs/performance.md; why each was chosen: docs/internals.md):

- **Channels-last on CPU** (``nn.inference_layout``): from the first plugin layer on, activations are channels-last.
- **Layer scale folded** into the FasterNet block's projecting 1x1 conv.
- **PConv writes into a preallocated output** (mode ``preallocated``), the fastest of its three forms at every
  FasterNet-T0 stage shape; eager inference only, so exported graphs have no ScatterND nodes.

``select_inference_form(model, channels_last=False)`` keeps NCHW activations, for comparisons.
"""

from __future__ import annotations

import copy

from torch import nn

from ..nn.inference_layout import ChannelsLastInference


def select_inference_form(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """Call ``switch_to_deploy()`` on every module of ``model`` that has one; idempotent. Called by ``model.fuse()``.

    Modules with the channels-last layout get ``channels_last``; any other module's ``switch_to_deploy()`` (a
    registered third-party block) is called without arguments.
    """
    for module in model.modules():
        if isinstance(module, ChannelsLastInference):
            module.switch_to_deploy(channels_last)
        elif callable(getattr(module, "switch_to_deploy", None)):
            module.switch_to_deploy()
    return model


def fused_copy(module: nn.Module, channels_last: bool = True) -> nn.Module:
    """A fused copy of a bare module (a block, a stack of layers), fused exactly as ``model.fuse()`` fuses a model."""
    from ultralytics.nn.tasks import BaseModel

    holder = BaseModel()
    holder.model = copy.deepcopy(module)
    holder.fuse(verbose=False)
    return select_inference_form(holder.model, channels_last)
