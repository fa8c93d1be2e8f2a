"""Loading FasterNet ImageNet weights into the FasterNet layers of a YOLO model, all or nothing.

``load_backbone_weights`` finds the model's FasterNet layers by type (a ``PatchEmbed`` stem, then stages of
``FasterNetBlock``, each after a ``PatchMerging``), so it works for any model YAML written with them, checks that every
tensor has exactly one counterpart of the same shape, and only then copies: on any error the model is left unchanged.
The classification head is ignored on purpose.

Ultralytics builds every BatchNorm from a YAML with ``eps=1e-3``; FasterNet was trained with ``eps=1e-5``. Loading
sets the loaded BatchNorms back to 1e-5, without which the features differ from the reference network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..nn.activation import ACTIVATIONS
from ..nn.fasternet_block import FasterNetBlock
from ..nn.patch_layers import PatchEmbed, PatchMerging
from .checkpoint_files import BackboneCheckpoint, read_backbone_checkpoint
from .errors import BackboneWeightsError
from .key_layouts import BLOCK_KEYS, MERGE_KEYS, STEM_KEYS, key_in_layout
from .load_report import LoadReport
from .variants import BN_EPS, FasterNetVariant, shape_text, variant_for


@dataclass
class BackbonePart:
    """One FasterNet module of the model and where its tensors live in both namings."""

    prefix: str  # in the model's state_dict, e.g. "model.3.1"
    module: nn.Module
    source_prefix: str  # in a timm-layout checkpoint, e.g. "stages.1.blocks.1"
    sub_keys: tuple[tuple[str, str], ...]

    def source_key(self, key: str) -> str | None:
        """The checkpoint key (timm layout) of one of this module's state_dict keys, or None if it has none."""
        for ours, theirs in self.sub_keys:
            if key.startswith(ours):
                return f"{self.source_prefix}.{theirs}{key[len(ours) :]}"
        return None


@dataclass
class FasterNetBackbone:
    """The FasterNet layers of a model: stem, then stages (a merging layer before each but the first, then blocks)."""

    parts: list[BackbonePart]
    layers: list[int]  # indices in model.model
    embed: int
    depths: tuple[int, ...]
    act: str

    @property
    def variant(self) -> FasterNetVariant | None:
        """The FasterNet variant this backbone is, or None (e.g. the l/x scales, whose depths differ from S/M)."""
        v = variant_for(self.embed, self.depths)
        return v if v is not None and v.act == self.act else None

    def describe(self) -> str:
        """E.g. ``fasternet_t0 (embed 40, depths 1-2-8-2, gelu)``."""
        name = self.variant.model_name if self.variant else "a FasterNet of no released variant"
        return f"{name} ({shape_text(self.embed, self.depths)}, {self.act})"

    def batchnorms(self) -> list[nn.BatchNorm2d]:
        """Every BatchNorm of the backbone."""
        return [m for p in self.parts for m in p.module.modules() if isinstance(m, nn.BatchNorm2d)]

    def parameters(self) -> list[nn.Parameter]:
        """Every parameter of the backbone."""
        return [t for p in self.parts for t in p.module.parameters()]


def _layers(model: nn.Module) -> nn.Module:
    """``model.model`` of an Ultralytics model, through DDP, torch.compile and ``YOLO(...)`` wrappers."""
    for _ in range(4):
        if hasattr(model, "module") and isinstance(model.module, nn.Module):  # DistributedDataParallel
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile
            model = model._orig_mod
        elif isinstance(getattr(model, "model", None), nn.Module) and not isinstance(
            model.model, (nn.Sequential, nn.ModuleList)
        ):  # YOLO(...): its .model is the DetectionModel
            model = model.model
        else:
            break
    layers = getattr(model, "model", None)
    if not isinstance(layers, (nn.Sequential, nn.ModuleList)):
        raise BackboneWeightsError(f"{type(model).__name__} is not an Ultralytics model (no model.model layer list)")
    return layers


def _act_name(block: FasterNetBlock) -> str:
    act = block.expand.act
    return next((name for name, cls in ACTIVATIONS.items() if type(act) is cls), type(act).__name__)


def find_backbone(model: nn.Module) -> FasterNetBackbone:
    """Find the FasterNet layers of an Ultralytics model by type, walking ``model.model`` in order.

    The backbone starts at the first ``PatchEmbed``; each ``PatchMerging`` starts a new stage; ``FasterNetBlock``
    rows (one block, or a Sequential of blocks for ``n > 1``) add blocks to the current stage; it ends at the first
    other layer or the first layer that does not take the previous one's output.

    Raises:
        BackboneWeightsError: If the model has no FasterNet stem, or its BatchNorms are already fused.
    """
    layers = _layers(model)
    start = next((i for i, m in enumerate(layers) if isinstance(m, PatchEmbed)), None)
    if start is None:
        raise BackboneWeightsError(
            "the model has no FasterNet backbone (no PatchEmbed layer); FasterNet weights load into YAMLs written "
            "with PatchEmbed, PatchMerging and FasterNetBlock, such as yolov8-fasternet.yaml"
        )
    stem = layers[start]
    if not hasattr(stem, "bn"):
        raise BackboneWeightsError("the model is fused (fuse() folded its BatchNorms); load weights before fusing")
    parts = [BackbonePart(f"model.{start}", stem, "patch_embed", STEM_KEYS)]
    depths, used = [0], [start]
    for i in range(start + 1, len(layers)):
        m = layers[i]
        if getattr(m, "f", -1) != -1:  # a backbone is a chain; a layer reading elsewhere belongs to the neck
            break
        if isinstance(m, PatchMerging):
            depths.append(0)
            parts.append(BackbonePart(f"model.{i}", m, f"stages.{len(depths) - 1}.downsample", MERGE_KEYS))
        elif isinstance(m, FasterNetBlock) or (
            isinstance(m, nn.Sequential) and len(m) and all(isinstance(b, FasterNetBlock) for b in m)
        ):
            single = isinstance(m, FasterNetBlock)
            blocks = [(f"model.{i}", m)] if single else [(f"model.{i}.{j}", b) for j, b in enumerate(m)]
            for prefix, block in blocks:
                source = f"stages.{len(depths) - 1}.blocks.{depths[-1]}"
                parts.append(BackbonePart(prefix, block, source, BLOCK_KEYS))
                depths[-1] += 1
        else:
            break
        used.append(i)
    blocks = [p.module for p in parts if isinstance(p.module, FasterNetBlock)]
    acts = sorted({_act_name(b) for b in blocks}) or ["none"]
    return FasterNetBackbone(parts, used, stem.conv.out_channels, tuple(depths), "/".join(acts))


# ---------------------------------------------------------------------------------------------------------------------
# Loading


def _plan(ckpt: BackboneCheckpoint, backbone: FasterNetBackbone) -> tuple[list, LoadReport]:
    """Pair every backbone tensor with its checkpoint tensor; list everything that does not pair."""
    report = LoadReport(ckpt.source, ckpt.layout, ckpt.describe(), backbone.describe(), backbone.layers)
    report.ignored_head = list(ckpt.head_keys)
    pairs, used = [], set()
    for part in backbone.parts:
        for key, target in part.module.state_dict(keep_vars=True).items():
            model_key = f"{part.prefix}.{key}"
            src_key = part.source_key(key)
            value = ckpt.tensors.get(src_key) if src_key else None
            shown = f"{key_in_layout(ckpt.layout, src_key)} -> {model_key}" if src_key else model_key
            if value is None:
                if key.endswith("num_batches_tracked"):  # a step counter, unused with a fixed momentum
                    report.counters_kept += 1
                else:
                    report.missing.append(shown)
                continue
            used.add(src_key)
            if key.endswith("layer_scale") and value.numel() == target.numel():
                value = value.reshape(target.shape)  # timm keeps (C,), we keep (C, 1, 1)
            if value.shape != target.shape:
                report.mismatched.append(f"{shown} {tuple(value.shape)} vs {tuple(target.shape)}")
                continue
            pairs.append((target, value))
            report.loaded.append(shown)
    report.unexpected = [key_in_layout(ckpt.layout, k) for k in ckpt.tensors if k not in used]
    return pairs, report


def _check_variant(ckpt: BackboneCheckpoint, backbone: FasterNetBackbone) -> None:
    """Refuse a checkpoint of another variant with a message naming both."""
    same_shape = (ckpt.embed, ckpt.depths) == (backbone.embed, backbone.depths)
    want_act = ckpt.variant.act if ckpt.variant else None
    if same_shape and want_act in (None, backbone.act):
        return
    if backbone.variant is not None:
        hint = f"use a {backbone.variant.model_name} checkpoint, or a model scale whose backbone is {ckpt.describe()}"
    else:
        hint = "no released FasterNet checkpoint fits this backbone exactly"
    problem = f"activation {backbone.act} instead of {want_act}" if same_shape else "a different shape"
    raise BackboneWeightsError(
        f"{ckpt.source}: checkpoint is {ckpt.describe()} but the model's FasterNet backbone (layers "
        f"{backbone.layers[0]}-{backbone.layers[-1]}) is {backbone.describe()}, {problem}; {hint}"
    )


def load_backbone_weights(model: nn.Module, weights, verbose: bool = False) -> LoadReport:
    """Load FasterNet classification weights into the FasterNet backbone of an Ultralytics model, all or nothing.

    Args:
        model: A ``DetectionModel`` (or any Ultralytics model, a ``YOLO(...)`` object, DDP/compiled wrappers).
        weights (str | os.PathLike | dict | BackboneCheckpoint): A checkpoint file, a file name in ``weights/``, a
            known name (``fasternet_t0``, ``t0``), a state_dict, or a ``BackboneCheckpoint``.
        verbose: Print the report's summary.

    Returns:
        The ``LoadReport`` (loaded, ignored head keys, and empty missing/unexpected/mismatched lists).

    Raises:
        BackboneWeightsError: If the source cannot be read, is another variant than the model's backbone, or any key
            is missing, unexpected or of another shape. The model is then unchanged; ``error.report`` lists all keys.
    """
    ckpt = read_backbone_checkpoint(weights)
    backbone = find_backbone(model)
    _check_variant(ckpt, backbone)
    pairs, report = _plan(ckpt, backbone)
    if not report.ok:
        raise BackboneWeightsError(report.error_line(), report=report)
    with torch.no_grad():  # validated above: from here on nothing can fail half-way
        for target, value in pairs:
            target.copy_(value)
    for bn in backbone.batchnorms():
        bn.eps = BN_EPS
    if verbose:
        print(report.summary())
    return report
