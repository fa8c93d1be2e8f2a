"""ImageNet weights for a timm backbone: a local file when there is one, else timm's own hub download.

Where a local file goes: ``weights/timm/<architecture>.<tag>.safetensors`` (or ``.pth``/``.bin``; the folder is
``$YOLO_FASTERNET_WEIGHTS/timm`` when that is set), e.g. ``weights/timm/resnet18.a1_in1k.safetensors``: the
``model.safetensors`` of the hub repository ``timm/resnet18.a1_in1k``, renamed. A file found there wins over a
download. Offline (``YOLO_OFFLINE`` or ``HF_HUB_OFFLINE``) without the file, or when the download fails, the error
says which file to fetch from where and where to place it. Never a silent random initialisation: a model for which
timm knows no weights is an error too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..error_text import typed_first_line
from ..nn.timm_backbone import install_weight_sources
from .checkpoint_files import offline_flag, weights_dir
from .errors import BackboneWeightsNotFoundError

SUFFIXES = (".safetensors", ".pth", ".bin")


@dataclass(frozen=True)
class TimmWeights:
    """Where the pretrained weights of one timm model come from."""

    name: str  # as the user gave it: resnet18 or resnet18.a1_in1k
    full_name: str  # architecture.tag, e.g. resnet18.a1_in1k ("" when timm knows no weights)
    hub_url: str  # the file to fetch by hand ("" when timm knows no source)

    @property
    def place(self) -> Path:
        """The local file to place, named after the full timm name."""
        return weights_dir() / "timm" / f"{self.full_name or self.name}.safetensors"

    def local_file(self) -> Path | None:
        """The first local file present for this model, by full name and by the name given."""
        names = dict.fromkeys(n for n in (self.full_name, self.name) if n)
        for name in names:
            for suffix in SUFFIXES:
                path = weights_dir() / "timm" / f"{name}{suffix}"
                if path.is_file():
                    return path
        return None

    def how_to_get(self) -> str:
        """One sentence: what to download from where, and where to put it."""
        where = f"download {self.hub_url} and " if self.hub_url else ""
        return f"{where}place it at {self.place}"


def timm_weights(name: str) -> TimmWeights:
    """What timm knows about the pretrained weights of ``name`` (architecture, optionally ``.tag``)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        return TimmWeights(name, "", "")
    full_name = f"{cfg.architecture}.{cfg.tag}" if cfg.tag else cfg.architecture
    if cfg.hf_hub_id:
        url = f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/{cfg.hf_hub_filename or 'model.safetensors'}"
    else:
        url = cfg.url
    return TimmWeights(name, full_name, url)


def pretrained_source(name: str, requested: bool | str) -> dict:
    """``timm.create_model`` keyword arguments that load the requested weights, checked before anything is built.

    Args:
        name: The timm model name.
        requested: True (local file if present, else timm's hub download), or the path of a weights file.

    Raises:
        BackboneWeightsNotFoundError: No such file, downloads off or impossible, or timm knows no weights.
    """
    if isinstance(requested, str):
        path = Path(requested).expanduser()
        if not path.is_file():
            raise BackboneWeightsNotFoundError(f"timm backbone {name}: pretrained weights file {path} does not exist")
        return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}
    weights = timm_weights(name)
    local = weights.local_file()
    if local is not None:
        return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(local)}}
    if not weights.full_name:
        raise BackboneWeightsNotFoundError(
            f"timm backbone {name}: timm has no pretrained weights for it; drop '-pretrained' / pretrained, or "
            f"place a state_dict at {weights.place}"
        )
    flag = offline_flag()
    if flag:
        raise BackboneWeightsNotFoundError(
            f"timm backbone {name}: no local weights file and downloads are off ({flag}); {weights.how_to_get()}"
        )
    return {"pretrained": True}


def loading_failed(name: str, source: dict, error: BaseException) -> BackboneWeightsNotFoundError:
    """The error for weights that did not load: a bad local file, or a failed hub download (no network, hub down)."""
    file = source.get("pretrained_cfg_overlay", {}).get("file")
    if file:
        return BackboneWeightsNotFoundError(
            f"timm backbone {name}: {file} does not load into it ({typed_first_line(error)}); it must hold the "
            f"state_dict of timm's {name}"
        )
    return BackboneWeightsNotFoundError(
        f"timm backbone {name}: downloading its pretrained weights through timm failed ({typed_first_line(error)}); "
        f"{timm_weights(name).how_to_get()}"
    )


install_weight_sources(pretrained_source, loading_failed)  # TimmBackbone(pretrained=...) resolves through these
