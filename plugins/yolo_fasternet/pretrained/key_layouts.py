"""The two key layouts of FasterNet checkpoints (official release files and timm) and the renaming between them.

- ``official``: ``patch_embed.*``, blocks at ``stages.{0,2,4,6}.blocks.{i}.*``, the merging layers between them at
  ``stages.{1,3,5}.reduction/norm.*``, head ``avgpool_pre_head.*``, ``head.*``;
- ``timm``: the merging layer before stage k at ``stages.{k}.downsample.*``, its blocks at ``stages.{k}.blocks.{i}.*``,
  head ``conv_head.*``, ``classifier.*``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from .errors import BackboneWeightsError

LAYOUTS = ("official", "timm")
HEAD_PREFIXES = ("conv_head.", "classifier.", "avgpool_pre_head.", "head.")  # classification head, both layouts
OFFICIAL_ONLY = re.compile(r"stages\.\d+\.(reduction|norm)\.|avgpool_pre_head\.|head\.")
TIMM_ONLY = re.compile(r"stages\.\d+\.downsample\.|conv_head\.|classifier\.")
STAGE_KEY = re.compile(r"stages\.(\d+)\.(.*)")
BLOCK_KEY = re.compile(r"stages\.(\d+)\.blocks\.(\d+)\.")

# Our sub-module names -> timm's, per part of the backbone (official keys differ from timm's only in the prefix).
STEM_KEYS = (("conv.", "proj."), ("bn.", "norm."))
MERGE_KEYS = (("conv.", "reduction."), ("bn.", "norm."))
BLOCK_KEYS = (
    ("spatial_mixing.conv.", "spatial_mixing.partial_conv3."),
    ("expand.conv.", "mlp.0."),
    ("expand.bn.", "mlp.1."),
    ("project.", "mlp.3."),
    ("layer_scale", "layer_scale"),
)


def detect_layout(keys) -> str:
    """Return ``"official"`` or ``"timm"`` for a FasterNet state_dict's keys.

    Keys that both layouts name alike (a checkpoint without merging layers and head) count as ``timm``.

    Raises:
        BackboneWeightsError: If the keys mix both layouts.
    """
    keys = list(keys)
    official = next((k for k in keys if OFFICIAL_ONLY.match(k)), None)
    timm = next((k for k in keys if TIMM_ONLY.match(k)), None)
    if official and timm:
        raise BackboneWeightsError(f"keys mix the official ({official}) and timm ({timm}) FasterNet layouts")
    return "official" if official else "timm"


# The classifier's keys: (official prefix, timm prefix); each direction of the renaming reads this one table.
_CLASSIFIER_PREFIXES = (("avgpool_pre_head.1.", "conv_head."), ("head.", "classifier."))


def _swap_prefix(key: str, prefixes) -> str:
    """``key`` with the first matching ``(old, new)`` prefix replaced; unchanged when none matches."""
    for old, new in prefixes:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def official_to_timm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of an official-layout FasterNet state_dict to timm's layout (values are shared, not copied)."""
    out = {}
    for key, value in state_dict.items():
        m = STAGE_KEY.fullmatch(key)
        if m:  # official stage 2k holds timm stage k's blocks, official stage 2k-1 its merging layer
            n, rest = int(m[1]), m[2]
            key = f"stages.{n // 2}.{rest}" if n % 2 == 0 else f"stages.{(n + 1) // 2}.downsample.{rest}"
        else:
            key = _swap_prefix(key, _CLASSIFIER_PREFIXES)
        out[key] = value
    return out


def timm_to_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of a timm-layout FasterNet state_dict to the official release layout (the inverse)."""
    out = {}
    for key, value in state_dict.items():
        m = STAGE_KEY.fullmatch(key)
        if m:
            n, rest = int(m[1]), m[2]
            if rest.startswith("downsample."):
                key = f"stages.{2 * n - 1}.{rest[len('downsample.') :]}"
            else:
                key = f"stages.{2 * n}.{rest}"
        else:
            key = _swap_prefix(key, [(timm, official) for official, timm in _CLASSIFIER_PREFIXES])
        out[key] = value
    return out


def key_in_layout(layout: str, key: str) -> str:
    """A timm-layout key as the source file names it (reports speak the checkpoint's own language)."""
    return next(iter(timm_to_official({key: None}))) if layout == "official" else key
