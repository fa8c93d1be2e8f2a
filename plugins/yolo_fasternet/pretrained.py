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

    python -m yolo_fasternet.pretrained list                     # known checkpoints and which are present
    python -m yolo_fasternet.pretrained info FILE_OR_NAME        # layout, variant, tensor counts
    python -m yolo_fasternet.pretrained load FILE_OR_NAME --model yolov8n-fasternet.yaml   # dry run, prints report
    python -m yolo_fasternet.pretrained convert FILE OUT.pth --layout timm   # rewrite the keys in the other layout
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torch import nn

from .activation import ACTIVATIONS
from .fasternet_block import FasterNetBlock
from .patch_layers import PatchEmbed, PatchMerging

BN_EPS = 1e-5  # BatchNorm eps of FasterNet and timm (Ultralytics' initialize_weights sets 1e-3)
LAYOUTS = ("official", "timm")
MANIFEST = "manifest.yaml"
WEIGHTS_ENV = "YOLO_FASTERNET_WEIGHTS"  # overrides the folder searched for (and named in messages about) files

_PACKAGE = Path(__file__).resolve().parent
# Installed wheel: weights/ inside the package; source checkout or editable install: the repository's weights/.
_WEIGHTS_DIRS = (_PACKAGE / "weights", _PACKAGE.parents[1] / "weights")

# Wrappers that training scripts put around a state_dict, most specific first; EMA copies only when alone.
_WRAPPER_KEYS = ("state_dict", "model", "module", "net", "params", "state_dict_ema", "model_ema")
_PREFIXES = ("module.", "model.", "_orig_mod.")  # DataParallel, Lightning/wrapper attribute, torch.compile
_HEAD = ("conv_head.", "classifier.", "avgpool_pre_head.", "head.")  # classification head, both layouts
_OFFICIAL_ONLY = re.compile(r"stages\.\d+\.(reduction|norm)\.|avgpool_pre_head\.|head\.")
_TIMM_ONLY = re.compile(r"stages\.\d+\.downsample\.|conv_head\.|classifier\.")
_STAGE_KEY = re.compile(r"stages\.(\d+)\.(.*)")
_BLOCK_KEY = re.compile(r"stages\.(\d+)\.blocks\.(\d+)\.")
_MAX_LISTED = 3  # keys named in a one-line error before "... (+N more)"

# Our sub-module names -> timm's, per part of the backbone (official keys differ from timm's only in the prefix).
_STEM_KEYS = (("conv.", "proj."), ("bn.", "norm."))
_MERGE_KEYS = (("conv.", "reduction."), ("bn.", "norm."))
_BLOCK_KEYS = (
    ("spatial_mixing.conv.", "spatial_mixing.partial_conv3."),
    ("expand.conv.", "mlp.0."),
    ("expand.bn.", "mlp.1."),
    ("project.", "mlp.3."),
    ("layer_scale", "layer_scale"),
)


class BackboneWeightsError(ValueError):
    """Backbone weights cannot be read or loaded; the one-line message names the file, key or variant at fault."""

    def __init__(self, message: str, report: LoadReport | None = None):
        super().__init__(message)
        self.report = report  # for a refused load: every missing, unexpected and mismatched key


class BackboneWeightsNotFoundError(BackboneWeightsError, FileNotFoundError):
    """No file for the requested weights; the message says which file to place where."""


@dataclass(frozen=True)
class FasterNetVariant:
    """One FasterNet architecture of the paper (and of timm)."""

    name: str  # t0, t1, t2, s, m, l
    embed: int
    depths: tuple[int, ...]
    act: str

    @property
    def model_name(self) -> str:
        """The name timm and the release files use, e.g. ``fasternet_t0``."""
        return f"fasternet_{self.name}"


VARIANTS = {
    v.name: v
    for v in (
        FasterNetVariant("t0", 40, (1, 2, 8, 2), "gelu"),
        FasterNetVariant("t1", 64, (1, 2, 8, 2), "gelu"),
        FasterNetVariant("t2", 96, (1, 2, 8, 2), "relu"),
        FasterNetVariant("s", 128, (1, 2, 13, 2), "relu"),
        FasterNetVariant("m", 144, (3, 4, 18, 3), "relu"),
        FasterNetVariant("l", 192, (3, 4, 18, 3), "relu"),
    )
}


def _variant_for(embed: int, depths: tuple[int, ...]) -> FasterNetVariant | None:
    return next((v for v in VARIANTS.values() if (v.embed, v.depths) == (embed, tuple(depths))), None)


def _shape_text(embed: int, depths: tuple[int, ...]) -> str:
    return f"embed {embed}, depths {'-'.join(map(str, depths))}"


def _listed(items: list[str]) -> str:
    more = f", ... (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


# ---------------------------------------------------------------------------------------------------------------------
# Key layouts


def detect_layout(keys) -> str:
    """Return ``"official"`` or ``"timm"`` for a FasterNet state_dict's keys.

    Keys that both layouts name alike (a checkpoint without merging layers and head) count as ``timm``.

    Raises:
        BackboneWeightsError: If the keys mix both layouts.
    """
    keys = list(keys)
    official = next((k for k in keys if _OFFICIAL_ONLY.match(k)), None)
    timm = next((k for k in keys if _TIMM_ONLY.match(k)), None)
    if official and timm:
        raise BackboneWeightsError(f"keys mix the official ({official}) and timm ({timm}) FasterNet layouts")
    return "official" if official else "timm"


# The classifier's keys: (official prefix, timm prefix); each direction of the renaming reads this one table.
_HEAD_PREFIXES = (("avgpool_pre_head.1.", "conv_head."), ("head.", "classifier."))


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
        m = _STAGE_KEY.fullmatch(key)
        if m:  # official stage 2k holds timm stage k's blocks, official stage 2k-1 its merging layer
            n, rest = int(m[1]), m[2]
            key = f"stages.{n // 2}.{rest}" if n % 2 == 0 else f"stages.{(n + 1) // 2}.downsample.{rest}"
        else:
            key = _swap_prefix(key, _HEAD_PREFIXES)
        out[key] = value
    return out


def timm_to_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of a timm-layout FasterNet state_dict to the official release layout (the inverse)."""
    out = {}
    for key, value in state_dict.items():
        m = _STAGE_KEY.fullmatch(key)
        if m:
            n, rest = int(m[1]), m[2]
            if rest.startswith("downsample."):
                key = f"stages.{2 * n - 1}.{rest[len('downsample.') :]}"
            else:
                key = f"stages.{2 * n}.{rest}"
        else:
            key = _swap_prefix(key, [(timm, official) for official, timm in _HEAD_PREFIXES])
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class BackboneCheckpoint:
    """A FasterNet classification checkpoint, read and normalized: backbone tensors in timm's layout."""

    source: str  # the file, or "timm hub: <id>"
    layout: str  # the layout the source was in
    tensors: dict[str, torch.Tensor]  # backbone tensors, timm layout
    head: dict[str, torch.Tensor]  # classification-head tensors, timm layout: never loaded, kept for conversion
    embed: int
    depths: tuple[int, ...]

    @property
    def head_keys(self) -> list[str]:
        """The classification-head keys as the source names them (loading ignores them on purpose)."""
        return [_source_name(self.layout, k) for k in self.head]

    @property
    def variant(self) -> FasterNetVariant | None:
        """The FasterNet variant with this checkpoint's widths and depths, or None for a custom one."""
        return _variant_for(self.embed, self.depths)

    def describe(self) -> str:
        """E.g. ``fasternet_t0 (embed 40, depths 1-2-8-2)``."""
        name = self.variant.model_name if self.variant else "a custom FasterNet"
        return f"{name} ({_shape_text(self.embed, self.depths)})"


def _unwrap(obj, origin: str) -> dict[str, torch.Tensor]:
    """Find the state_dict inside common checkpoint wrappers and strip prefixes every key shares."""
    for _ in range(4):  # wrappers nest at most a few levels deep ({"model": {"state_dict": ...}} and the like)
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping) or all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        key = next((k for k in _WRAPPER_KEYS if isinstance(obj.get(k), (Mapping, nn.Module))), None)
        if key is None:
            break
        obj = obj[key]
    if not isinstance(obj, Mapping) or not obj:
        raise BackboneWeightsError(f"{origin}: holds no state_dict (got {type(obj).__name__})")
    bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor) or not isinstance(k, str)), None)
    if bad is not None:
        raise BackboneWeightsError(f"{origin}: entry {bad!r} of its state_dict is not a tensor")
    state = dict(obj)
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely (tensors only); every failure becomes a one-line error naming the file."""
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise BackboneWeightsError(f"{path}: reading .safetensors needs the safetensors package") from None
        try:
            return load_file(str(path))
        except Exception as e:
            raise BackboneWeightsError(f"{path}: not a readable safetensors file ({_first_line(e)})") from None
    try:
        # weights_only: a checkpoint is data; never run code from a downloaded pickle
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if "Weights only load failed" in str(e):
            raise BackboneWeightsError(
                f"{path}: holds objects other than tensors, which safe loading refuses; save its state_dict alone "
                f"(torch.save(model.state_dict(), 'fasternet.pth'))"
            ) from None
        raise BackboneWeightsError(
            f"{path}: not a readable PyTorch checkpoint, truncated or corrupt? ({_first_line(e)})"
        ) from None
    return _unwrap(obj, str(path))


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def parse_checkpoint(state_dict: Mapping[str, torch.Tensor], source: str = "state_dict") -> BackboneCheckpoint:
    """Normalize a FasterNet state_dict (either layout, wrappers allowed) and read its variant from the shapes.

    Raises:
        BackboneWeightsError: If it is not a FasterNet state_dict.
    """
    state = _unwrap(state_dict, source)
    stem = state.get("patch_embed.proj.weight")
    if stem is None or stem.ndim != 4:
        raise BackboneWeightsError(
            f"{source}: not a FasterNet checkpoint (no 4-d patch_embed.proj.weight among its {len(state)} keys)"
        )
    layout = detect_layout(state)
    if layout == "official":
        state = official_to_timm(state)
    head = {k: v for k, v in state.items() if k.startswith(_HEAD)}
    tensors = {k: v for k, v in state.items() if k not in head}
    stages = [int(m[1]) for m in map(_STAGE_KEY.match, tensors) if m]
    depths = [0] * (max(stages) + 1 if stages else 0)
    for m in filter(None, map(_BLOCK_KEY.match, tensors)):
        depths[int(m[1])] = max(depths[int(m[1])], int(m[2]) + 1)
    return BackboneCheckpoint(source, layout, tensors, head, int(stem.shape[0]), tuple(depths))


# ---------------------------------------------------------------------------------------------------------------------
# Manifest and name resolution


def weights_dir() -> Path:
    """The folder for checkpoint files: ``$YOLO_FASTERNET_WEIGHTS``, else the one holding ``manifest.yaml``."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).expanduser()
    return next((d for d in _WEIGHTS_DIRS if (d / MANIFEST).is_file()), _WEIGHTS_DIRS[-1])


@dataclass(frozen=True)
class KnownCheckpoint:
    """One entry of ``weights/manifest.yaml``."""

    name: str  # fasternet_t0
    variant: FasterNetVariant
    file: str  # official release file name
    url: str
    timm: str  # timm hub id
    top1: float  # ImageNet-1k top-1 (%), as reported for the release

    @property
    def path(self) -> Path:
        """Where the file goes: ``weights_dir() / file``."""
        return weights_dir() / self.file


def _manifest_path() -> Path | None:
    return next((d / MANIFEST for d in _WEIGHTS_DIRS if (d / MANIFEST).is_file()), None)


def manifest() -> dict[str, KnownCheckpoint]:
    """The known checkpoints from ``manifest.yaml`` (in the package or the repository's ``weights/``), by name."""
    path = _manifest_path()
    if path is None:
        raise BackboneWeightsError(f"no {MANIFEST} in {' or '.join(map(str, _WEIGHTS_DIRS))}; pass a file instead")
    try:
        data = yaml.safe_load(path.read_text())
        out = {}
        for name, entry in data["checkpoints"].items():
            out[name] = KnownCheckpoint(
                name=name,
                variant=VARIANTS[entry["variant"]],
                file=entry["file"],
                url=data["release_url"] + entry["file"],
                timm=entry["timm"],
                top1=float(entry["top1"]),
            )
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise BackboneWeightsError(f"{path}: malformed manifest ({_first_line(e)})") from None
    return out


def find_known(name: str) -> KnownCheckpoint | None:
    """The manifest entry for a name: ``fasternet_t0``, ``t0``, the timm id or the release file name."""
    wanted = str(name).strip().lower()
    for entry in (manifest() if _manifest_path() else {}).values():  # no manifest: no names, files still load
        if wanted in {entry.name.lower(), entry.variant.name, entry.timm.lower(), entry.file.lower()}:
            return entry
    return None


def _offline_flag() -> str | None:
    """The environment variable that forbids downloads (Ultralytics' or huggingface_hub's), if one is set."""
    return next(
        (k for k in ("YOLO_OFFLINE", "HF_HUB_OFFLINE") if os.environ.get(k, "").strip().lower() in {"1", "true"}), None
    )


def _download(entry: KnownCheckpoint) -> BackboneCheckpoint:
    """Fetch the timm-layout weights through timm's hub support (cached by huggingface_hub)."""
    place = f"download {entry.url} and place it at {entry.path}"
    flag = _offline_flag()
    if flag:
        raise BackboneWeightsNotFoundError(f"{entry.name}: no local file and downloads are off ({flag}); {place}")
    try:
        import timm  # optional: only this download path needs it
    except ImportError:
        raise BackboneWeightsNotFoundError(
            f"{entry.name}: no local file and downloading needs timm (pip install timm); or {place}"
        ) from None
    try:
        model = timm.create_model(entry.timm, pretrained=True)
    except Exception as e:
        raise BackboneWeightsNotFoundError(
            f"{entry.name}: downloading {entry.timm} through timm failed ({_first_line(e)}); {place}"
        ) from None
    return parse_checkpoint(model.state_dict(), f"timm hub: {entry.timm}")


def read_backbone_checkpoint(source) -> BackboneCheckpoint:
    """Read FasterNet weights from a file, a file in ``weights/``, a known name, or an in-memory state_dict.

    A name (``fasternet_t0``, ``t0``, ``fasternet_t0.in1k``) uses ``weights/<release file>`` if present, else
    downloads through timm; offline, the error says which file to place where.

    Raises:
        BackboneWeightsNotFoundError: If there is no such file and the name is not known or cannot be fetched.
        BackboneWeightsError: If the file cannot be read or is not a FasterNet checkpoint.
    """
    if isinstance(source, BackboneCheckpoint):
        return source
    if isinstance(source, (Mapping, nn.Module)):
        return parse_checkpoint(source, "state_dict")
    path = Path(source).expanduser()
    for candidate in (path, weights_dir() / path):
        if candidate.is_file():
            return parse_checkpoint(_read_file(candidate), str(candidate))
    entry = find_known(str(source)) if path.name == str(source) else None
    if entry is not None:
        return parse_checkpoint(_read_file(entry.path), str(entry.path)) if entry.path.is_file() else _download(entry)
    if path.suffix or path.name != str(source):  # it looks like a file name: say where we looked
        raise BackboneWeightsNotFoundError(f"{source}: no such file (also looked in {weights_dir()})")
    known = ", ".join(f"{e.name} ({e.variant.name})" for e in manifest().values())
    raise BackboneWeightsNotFoundError(f"{source}: neither a file nor a known FasterNet checkpoint ({known})")


# ---------------------------------------------------------------------------------------------------------------------
# The model side


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
        v = _variant_for(self.embed, self.depths)
        return v if v is not None and v.act == self.act else None

    def describe(self) -> str:
        """E.g. ``fasternet_t0 (embed 40, depths 1-2-8-2, gelu)``."""
        name = self.variant.model_name if self.variant else "a FasterNet of no released variant"
        return f"{name} ({_shape_text(self.embed, self.depths)}, {self.act})"

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
    parts = [BackbonePart(f"model.{start}", stem, "patch_embed", _STEM_KEYS)]
    depths, used = [0], [start]
    for i in range(start + 1, len(layers)):
        m = layers[i]
        if getattr(m, "f", -1) != -1:  # a backbone is a chain; a layer reading elsewhere belongs to the neck
            break
        if isinstance(m, PatchMerging):
            depths.append(0)
            parts.append(BackbonePart(f"model.{i}", m, f"stages.{len(depths) - 1}.downsample", _MERGE_KEYS))
        elif isinstance(m, FasterNetBlock) or (
            isinstance(m, nn.Sequential) and len(m) and all(isinstance(b, FasterNetBlock) for b in m)
        ):
            single = isinstance(m, FasterNetBlock)
            blocks = [(f"model.{i}", m)] if single else [(f"model.{i}.{j}", b) for j, b in enumerate(m)]
            for prefix, block in blocks:
                source = f"stages.{len(depths) - 1}.blocks.{depths[-1]}"
                parts.append(BackbonePart(prefix, block, source, _BLOCK_KEYS))
                depths[-1] += 1
        else:
            break
        used.append(i)
    blocks = [p.module for p in parts if isinstance(p.module, FasterNetBlock)]
    acts = sorted({_act_name(b) for b in blocks}) or ["none"]
    return FasterNetBackbone(parts, used, stem.conv.out_channels, tuple(depths), "/".join(acts))


# ---------------------------------------------------------------------------------------------------------------------
# Loading


@dataclass
class LoadReport:
    """What loading did, or would have done: every key in one of the lists below."""

    source: str
    layout: str
    checkpoint: str  # e.g. "fasternet_t0 (embed 40, depths 1-2-8-2)"
    backbone: str  # the model's, e.g. "fasternet_t0 (embed 40, depths 1-2-8-2, gelu)"
    layers: list[int]
    loaded: list[str] = field(default_factory=list)  # "checkpoint key -> model key", as named in the source
    ignored_head: list[str] = field(default_factory=list)  # classification head: ignored on purpose
    missing: list[str] = field(default_factory=list)  # model tensors the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)  # checkpoint tensors without a place in the model
    mismatched: list[str] = field(default_factory=list)  # both exist, shapes differ
    counters_kept: int = 0  # BatchNorm num_batches_tracked absent from the checkpoint (unused by the model)

    @property
    def ok(self) -> bool:
        """Whether everything matched (the load went through)."""
        return not (self.missing or self.unexpected or self.mismatched)

    def error_line(self) -> str:
        """One line naming what did not match."""
        problems = [
            f"{len(items)} {what} ({_listed(items)})"
            for what, items in (
                ("missing key(s)", self.missing),
                ("unexpected key(s)", self.unexpected),
                ("shape mismatch(es)", self.mismatched),
            )
            if items
        ]
        return f"{self.source}: not loaded, the model is unchanged: {'; '.join(problems)}"

    def summary(self) -> str:
        """A few lines for people: source, layout, variant, counts, what was ignored and why."""
        layers = f"{self.layers[0]}-{self.layers[-1]}" if self.layers else "none"
        head = (
            f"ignored {len(self.ignored_head)} classification-head key(s) on purpose ({_listed(self.ignored_head)})"
            if self.ignored_head
            else "no classification-head keys"
        )
        lines = [
            f"backbone weights: {self.source} ({self.layout} layout, {self.checkpoint})",
            f"  {'loaded' if self.ok else 'would load'} {len(self.loaded)} tensors into model layers {layers} "
            f"({self.backbone}); {head}",
            f"  missing {len(self.missing)}, unexpected {len(self.unexpected)}, shape-mismatched "
            f"{len(self.mismatched)}; backbone BatchNorm eps set to {BN_EPS:g} (FasterNet's; Ultralytics builds 1e-3)",
        ]
        if self.counters_kept:
            lines.append(f"  {self.counters_kept} BatchNorm num_batches_tracked not in the checkpoint (unused, kept)")
        if not self.ok:
            lines.append(f"  {self.error_line()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _source_name(layout: str, key: str) -> str:
    """A timm-layout key as the source file names it (reports speak the checkpoint's own language)."""
    return next(iter(timm_to_official({key: None}))) if layout == "official" else key


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
            shown = f"{_source_name(ckpt.layout, src_key)} -> {model_key}" if src_key else model_key
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
    report.unexpected = [_source_name(ckpt.layout, k) for k in ckpt.tensors if k not in used]
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
        weights: A checkpoint file, a file name in ``weights/``, a known name (``fasternet_t0``, ``t0``), a
            state_dict, or a ``BackboneCheckpoint``.
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


# ---------------------------------------------------------------------------------------------------------------------
# Command line


def _cmd_list(_args) -> None:
    for entry in manifest().values():
        state = "present" if entry.path.is_file() else "absent"
        print(f"{entry.name:<13} {entry.variant.name:<3} top-1 {entry.top1:<5} {entry.timm:<18} {state}: {entry.path}")


def _cmd_info(args) -> None:
    ckpt = read_backbone_checkpoint(args.source)
    print(f"{ckpt.source}\n  layout   {ckpt.layout}\n  variant  {ckpt.describe()}")
    print(f"  tensors  {len(ckpt.tensors)} backbone, {len(ckpt.head_keys)} classification head (ignored when loading)")


def _cmd_load(args) -> None:
    from ultralytics import YOLO

    report = load_backbone_weights(YOLO(args.model).model, args.source)
    print(report.summary())


def _cmd_convert(args) -> None:
    ckpt = read_backbone_checkpoint(args.source)
    out = Path(args.output)
    if out.resolve() == Path(ckpt.source).resolve():
        raise BackboneWeightsError(f"{out}: refusing to overwrite the source checkpoint")
    state = {**ckpt.tensors, **ckpt.head}  # convert renames keys and drops nothing
    state = timm_to_official(state) if args.layout == "official" else state
    torch.save(state, out)
    print(f"{out}: {len(state)} tensors, {args.layout} layout ({ckpt.describe()})")


def main(argv: list[str] | None = None) -> int:
    """Command line: list known checkpoints, inspect one, dry-run a load into a model YAML, or convert layouts."""
    parser = argparse.ArgumentParser(prog="python -m yolo_fasternet.pretrained", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="known checkpoints (weights/manifest.yaml) and whether their files are present")
    p = sub.add_parser("info", help="layout, variant and tensor counts of a checkpoint")
    p.add_argument("source", help="checkpoint file, file name in weights/, or a known name (fasternet_t0, t0)")
    p = sub.add_parser("load", help="load into a freshly built model and print the report (writes nothing)")
    p.add_argument("source", help="checkpoint file, file name in weights/, or a known name (fasternet_t0, t0)")
    p.add_argument("--model", required=True, help="model YAML, e.g. yolov8n-fasternet.yaml")
    p = sub.add_parser("convert", help="rewrite a checkpoint's keys in the timm or the official layout")
    p.add_argument("source", help="checkpoint file, file name in weights/, or a known name (fasternet_t0, t0)")
    p.add_argument("output", help="output .pth (a plain state_dict)")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="layout of the output")
    args = parser.parse_args(argv)
    commands = {"list": _cmd_list, "info": _cmd_info, "load": _cmd_load, "convert": _cmd_convert}
    try:
        commands[args.command](args)
    except BackboneWeightsError as e:
        parser.exit(1, f"{parser.prog}: error: {e}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
