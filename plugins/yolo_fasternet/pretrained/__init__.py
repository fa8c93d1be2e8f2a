"""Pretrained FasterNet backbones: read an ImageNet classification checkpoint and load it into a YOLO model.

A FasterNet checkpoint comes in one of two key layouts, both detected from the keys:

- ``official`` (the FasterNet release files): ``patch_embed.*``, blocks at ``stages.{0,2,4,6}.blocks.{i}.*``, the
  merging layers between them at ``stages.{1,3,5}.reduction/norm.*``, head ``avgpool_pre_head.*``, ``head.*``;
- ``timm`` (``timm.create_model("fasternet_t0")``): the merging layer before stage k at ``stages.{k}.downsample.*``,
  its blocks at ``stages.{k}.blocks.{i}.*``, head ``conv_head.*``, ``classifier.*``.

The variant (t0, t1, t2, s, m, l) follows from the shapes: the embedding width from ``patch_embed.proj.weight``, the
depths from the block counts. ``load_backbone_weights`` finds the model's FasterNet layers by type (a ``PatchEmbed``
stem, then stages of ``FasterNetBlock``, each after a ``PatchMerging``), so it works for any model YAML written
with them, checks that every tensor has exactly one counterpart of the same shape, and only then copies: on any
error the model is left unchanged. The classification head is ignored on purpose.

Ultralytics builds every BatchNorm from a YAML with ``eps=1e-3``; FasterNet was trained with ``eps=1e-5``. Loading
sets the loaded BatchNorms back to 1e-5, without which the features differ from the reference network.

A name instead of a file (``fasternet_t0`` or ``t0``, see ``weights/manifest.yaml``) loads ``weights/<release file>``
when it is there, otherwise downloads through timm's hub support, otherwise fails saying which file to place where.

The files: ``variants`` (the architectures), ``key_layouts`` (official <-> timm keys), ``checkpoint_files`` (reading
files, the manifest, timm's hub), ``loading`` (into a model, all or nothing), ``load_report`` (what a load did),
``fine_tuning`` (trainer callbacks). The command line is ``yolo-fasternet weights`` (``apps/weights.py``), also
``python -m yolo_fasternet weights``: this package imports nothing from ``apps``.
"""

from . import timm_weights  # noqa: F401  installs TimmBackbone's pretrained-weights lookup
from .checkpoint_files import (
    MANIFEST,
    WEIGHTS_ENV,
    BackboneCheckpoint,
    KnownCheckpoint,
    find_known,
    manifest,
    parse_checkpoint,
    read_backbone_checkpoint,
    weights_dir,
)
from .errors import BackboneWeightsError, BackboneWeightsNotFoundError
from .key_layouts import LAYOUTS, detect_layout, official_to_timm, timm_to_official
from .load_report import LoadReport
from .loading import FasterNetBackbone, find_backbone, load_backbone_weights
from .variants import BN_EPS, VARIANTS, FasterNetVariant

__all__ = [
    "BN_EPS",
    "LAYOUTS",
    "MANIFEST",
    "VARIANTS",
    "WEIGHTS_ENV",
    "BackboneCheckpoint",
    "BackboneWeightsError",
    "BackboneWeightsNotFoundError",
    "FasterNetBackbone",
    "FasterNetVariant",
    "KnownCheckpoint",
    "LoadReport",
    "detect_layout",
    "find_backbone",
    "find_known",
    "load_backbone_weights",
    "manifest",
    "official_to_timm",
    "parse_checkpoint",
    "read_backbone_checkpoint",
    "timm_to_official",
    "weights_dir",
]
