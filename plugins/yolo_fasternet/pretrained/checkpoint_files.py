"""Reading FasterNet ImageNet checkpoints: files in either layout, the manifest of known releases, timm's hub.

A name instead of a file (``fasternet_t0`` or ``t0``, see ``weights/manifest.yaml``) loads ``weights/<release file>``
when it is there, otherwise downloads through timm's hub support, otherwise fails saying which file to place where.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from ..error_text import typed_first_line
from .errors import BackboneWeightsError, BackboneWeightsNotFoundError
from .key_layouts import BLOCK_KEY, HEAD_PREFIXES, STAGE_KEY, detect_layout, key_in_layout, official_to_timm
from .variants import VARIANTS, FasterNetVariant, shape_text, variant_for

MANIFEST = "manifest.yaml"
WEIGHTS_ENV = "YOLO_FASTERNET_WEIGHTS"  # overrides the folder searched for (and named in messages about) files

_PACKAGE = Path(__file__).resolve().parents[1]  # the yolo_fasternet package folder
# Installed wheel: weights/ inside the package; source checkout or editable install: the repository's weights/.
_WEIGHTS_DIRS = (_PACKAGE / "weights", _PACKAGE.parents[1] / "weights")

# Wrappers that training scripts put around a state_dict, most specific first; EMA copies only when alone.
_WRAPPER_KEYS = ("state_dict", "model", "module", "net", "params", "state_dict_ema", "model_ema")
_PREFIXES = ("module.", "model.", "_orig_mod.")  # DataParallel, Lightning/wrapper attribute, torch.compile
# How torch.save files begin: a zip archive (PyTorch >= 1.6) or a pickle (the legacy format, protocol 2+ opcode).
_TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")


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
        return [key_in_layout(self.layout, k) for k in self.head]

    @property
    def variant(self) -> FasterNetVariant | None:
        """The FasterNet variant with this checkpoint's widths and depths, or None for a custom one."""
        return variant_for(self.embed, self.depths)

    def describe(self) -> str:
        """E.g. ``fasternet_t0 (embed 40, depths 1-2-8-2)``."""
        name = self.variant.model_name if self.variant else "a custom FasterNet"
        return f"{name} ({shape_text(self.embed, self.depths)})"


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
            raise BackboneWeightsError(f"{path}: not a readable safetensors file ({typed_first_line(e)})") from None
    problem = _not_a_torch_file(path)
    if problem:
        raise BackboneWeightsError(f"{path}: {problem}")
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
            f"{path}: not a readable PyTorch checkpoint, truncated or corrupt? ({typed_first_line(e)})"
        ) from None
    return _unwrap(obj, str(path))


def _not_a_torch_file(path: Path) -> str | None:
    """Why ``path`` cannot be a ``torch.save`` file at all (empty, or neither zip nor pickle), or None if it may be."""
    try:
        with open(path, "rb") as f:
            start = f.read(4)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if not start:
        return "is empty, not a checkpoint"
    if not start.startswith(_TORCH_FILE_STARTS):
        return (
            f"not a PyTorch checkpoint at all (it starts with {start!r}, neither a zip archive nor a pickle); "
            "the wrong file, or an error page saved instead of a download?"
        )
    return None


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
    head = {k: v for k, v in state.items() if k.startswith(HEAD_PREFIXES)}
    tensors = {k: v for k, v in state.items() if k not in head}
    stages = [int(m[1]) for m in map(STAGE_KEY.match, tensors) if m]
    depths = [0] * (max(stages) + 1 if stages else 0)
    for m in filter(None, map(BLOCK_KEY.match, tensors)):
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
        raise BackboneWeightsError(f"{path}: malformed manifest ({typed_first_line(e)})") from None
    return out


def find_known(name: str) -> KnownCheckpoint | None:
    """The manifest entry for a name: ``fasternet_t0``, ``t0``, the timm id or the release file name."""
    wanted = str(name).strip().lower()
    for entry in (manifest() if _manifest_path() else {}).values():  # no manifest: no names, files still load
        if wanted in {entry.name.lower(), entry.variant.name, entry.timm.lower(), entry.file.lower()}:
            return entry
    return None


def offline_flag() -> str | None:
    """The environment variable that forbids downloads (Ultralytics' or huggingface_hub's), if one is set."""
    return next(
        (k for k in ("YOLO_OFFLINE", "HF_HUB_OFFLINE") if os.environ.get(k, "").strip().lower() in {"1", "true"}), None
    )


def _download(entry: KnownCheckpoint) -> BackboneCheckpoint:
    """Fetch the timm-layout weights through timm's hub support (cached by huggingface_hub)."""
    place = f"download {entry.url} and place it at {entry.path}"
    flag = offline_flag()
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
            f"{entry.name}: downloading {entry.timm} through timm failed ({typed_first_line(e)}); {place}"
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
        if candidate.is_dir() and candidate == path:
            raise BackboneWeightsError(f"{source}: is a folder, not a checkpoint file")
    entry = find_known(str(source)) if path.name == str(source) else None
    if entry is not None:
        return parse_checkpoint(_read_file(entry.path), str(entry.path)) if entry.path.is_file() else _download(entry)
    if path.suffix or path.name != str(source):  # it looks like a file name: say where we looked
        raise BackboneWeightsNotFoundError(f"{source}: no such file (also looked in {weights_dir()})")
    known = ", ".join(f"{e.name} ({e.variant.name})" for e in manifest().values())
    raise BackboneWeightsNotFoundError(f"{source}: neither a file nor a known FasterNet checkpoint ({known})")
