"""Any timm backbone as one YAML row, its feature maps picked by ``FeatureIndex`` rows.

This follows Ultralytics' ``TorchVision`` + ``Index`` convention: one row builds the backbone and returns a list of
feature maps, and each ``FeatureIndex`` row picks one of them for the neck::

    backbone:
      - [-1, 1, TimmBackbone, [resnet18, 512, [2, 3, 4]]]  # 0: timm features at strides 8, 16, 32
      - [0, 1, FeatureIndex, [0, 128]]  # 1-P3/8
      - [0, 1, FeatureIndex, [1, 256]]  # 2-P4/16
      - [0, 1, FeatureIndex, [2, 512]]  # 3-P5/32

Both are registered to scale like Ultralytics' ``HGStem``, which exists from 8.3.0 on and whose rule is exactly the
bookkeeping needed here: the row's output channels are its second YAML argument, never width-scaled, and the module
receives ``(c1, arg0, arg1, *rest)``. (Ultralytics' own ``TorchVision``/``Index`` rule is the same, but those classes
only exist from 8.3.x releases after 8.3.0.) On Ultralytics versions that have ``Index``, its rows
(``[0, 1, Index, [128, 0]]``) work on a ``TimmBackbone`` too.

``yolov8n-timm-<timm name>.yaml`` writes such a YAML for any timm model (``integration.timm_yamls``).

Three things make the timm model behave inside Ultralytics exactly as timm built it:

- Ultralytics' ``initialize_weights`` sets every plain ``nn.BatchNorm2d`` to ``eps=1e-3, momentum=0.03`` (and, in
  8.3.x, activations to ``inplace=True``) after the model is built; timm's pretrained weights expect their own
  values (FasterNet: eps 1e-5) and an in-place activation can overwrite a tensor a timm block still reads. The
  backbone restores timm's values whenever the model is switched to train or eval mode (trainer, validator,
  predictor and exporter all do that before running it).
- ``switch_to_deploy()`` (called by ``model.fuse()``) runs timm's own re-parameterisation (RepViT, MobileOne, ...)
  and folds the remaining BatchNorms into their convolutions (``nn.conv_bn_folding``).
- A pickled ``TimmBackbone`` (checkpoints, DDP) holds its timm name, settings and ``state_dict``, not timm's module
  objects: loading rebuilds the network with ``timm.create_model`` and loads the tensors. So a checkpoint references
  two allow-listed classes only, also under ``ULTRALYTICS_SAFE_LOAD=1``, and does not depend on timm's internal
  class paths.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass

import torch
from torch import nn

from .inference_layout import is_exporting

STRIDES = (8, 16, 32)  # the P3/P4/P5 strides a detection neck reads
# How ``pretrained=`` becomes timm's keyword arguments, and the error for weights that do not load: installed by the
# weights layer above this one (``pretrained.timm_weights``, imported with ``yolo_fasternet``), so that a network
# module reads no weight files and imports nothing above ``nn``.
WEIGHT_SOURCES: dict = {}


def install_weight_sources(resolve, explain_failure) -> None:
    """``resolve(name, pretrained) -> create_model kwargs``; ``explain_failure(name, kwargs, error) -> Exception``."""
    WEIGHT_SOURCES.update(resolve=resolve, explain_failure=explain_failure)


_SAVED_SETTINGS = ("eps", "momentum", "inplace")  # what Ultralytics' initialize_weights overwrites


class TimmBackboneError(ValueError):
    """A timm backbone cannot be built as asked; the one-line message names the model and what was meant."""


def import_timm():
    """timm, or a one-line error saying how to install it."""
    try:
        import timm
    except ImportError:
        raise TimmBackboneError("timm backbones need timm: pip install timm (or yolo-fasternet[timm])") from None
    return timm


def close_timm_names(name: str, n: int = 5) -> list[str]:
    """The timm model names closest to ``name`` (difflib over ``timm.list_models()``)."""
    timm = import_timm()
    return difflib.get_close_matches(name.split(".")[0], timm.list_models(), n=n, cutoff=0.6)


def _suggest(name: str) -> str:
    close = close_timm_names(name)
    return f" Close matches: {', '.join(close)}." if close else ""


def create_features_model(name: str, in_chans: int = 3, out_indices=None, **kwargs) -> nn.Module:
    """``timm.create_model(name, features_only=True, ...)``; an unknown name is one error listing close matches."""
    timm = import_timm()
    if not timm.is_model(name.split(".")[0]):
        raise TimmBackboneError(f"'{name}' is not a timm model.{_suggest(name)}")
    options = {"out_indices": tuple(out_indices)} if out_indices is not None else {}
    try:
        return timm.create_model(name, features_only=True, in_chans=in_chans, **options, **kwargs)
    except (RuntimeError, ValueError, TypeError, AssertionError, NotImplementedError, IndexError) as e:
        if kwargs.get("pretrained"):
            raise
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TimmBackboneError(f"timm cannot build '{name}' as a feature extractor ({text}).{_suggest(name)}") from e


@dataclass(frozen=True)
class FeatureLayout:
    """The feature maps a timm model hands on: indices into its ``feature_info``, channels and strides."""

    out_indices: tuple[int, ...]
    channels: tuple[int, ...]
    strides: tuple[int, ...]


def detection_features(model: nn.Module, name: str) -> FeatureLayout:
    """The deepest feature map at each of strides 8, 16 and 32 of a ``features_only`` model (all of its maps)."""
    info = model.feature_info
    reductions, channels = list(info.reduction()), list(info.channels())
    missing = [s for s in STRIDES if s not in reductions]
    if missing:
        raise TimmBackboneError(
            f"timm model '{name}' has no feature maps at stride {', '.join(map(str, missing))} (it has strides "
            f"{sorted(set(reductions))}); a detection neck needs strides 8, 16 and 32.{_suggest(name)}"
        )
    picked = [max(i for i, r in enumerate(reductions) if r == s) for s in STRIDES]
    return FeatureLayout(tuple(picked), tuple(channels[i] for i in picked), STRIDES)


def timm_feature_layout(name: str, in_chans: int = 3) -> FeatureLayout:
    """Build ``name`` once with random weights to read which feature maps give strides 8, 16 and 32."""
    return detection_features(create_features_model(name, in_chans), name)


class TimmBackbone(nn.Module):
    """A timm model as a feature extractor: returns a list of feature maps (one per ``out_indices`` entry).

    YAML args (``c1`` is filled in): ``[model, c2, out_indices=None, pretrained=False]``

    - ``model``: timm model name, optionally with a pretrained tag (``resnet18``, ``resnet18.a1_in1k``);
    - ``c2``: channels of the last feature map (what Ultralytics records for this row; checked against timm);
    - ``out_indices``: indices into the model's ``feature_info``; None picks the deepest map at strides 8, 16, 32;
    - ``pretrained``: False (random init), True (``weights/timm/`` file if present, else timm's hub download) or the
      path of a weights file. See ``pretrained.timm_weights``.

    ``c1`` becomes timm's ``in_chans``. Example: ``TimmBackbone(3, "resnet18", 512)(x)`` -> 3 tensors.
    """

    # Pruning rule (integration.pruning_rules): left unpruned.
    # a timm model's internal sizes (its own partial convs, heads) are not declared to the pruner.
    yolo_pruning = False

    def __init__(self, c1: int, model: str, c2: int, out_indices=None, pretrained: bool | str = False):
        super().__init__()
        if not isinstance(model, str):
            raise TimmBackboneError(f"TimmBackbone's first argument is a timm model name, got {model!r}")
        if out_indices is None:
            out_indices = timm_feature_layout(model, c1).out_indices
        source = {}
        if pretrained:
            if not WEIGHT_SOURCES:
                raise TimmBackboneError(f"timm {model}: pretrained weights need yolo_fasternet.pretrained imported")
            source = WEIGHT_SOURCES["resolve"](model, pretrained)
        try:
            self.model = create_features_model(model, c1, out_indices, **source)
        except TimmBackboneError:
            raise
        except Exception as e:  # a bad weights file or a failed download: say which file to place where
            if not source:
                raise
            raise WEIGHT_SOURCES["explain_failure"](model, source, e) from e
        channels = list(self.model.feature_info.channels())
        if channels[-1] != c2:
            raise TimmBackboneError(
                f"timm {model} out_indices {list(out_indices)} gives {channels} channels at strides "
                f"{list(self.model.feature_info.reduction())}; the row's c2 must be {channels[-1]}, not {c2}"
            )
        self.name, self.c1, self.c2, self.out_indices = model, c1, c2, tuple(out_indices)
        self.channels = tuple(channels)
        self.deployed = False
        self._timm_settings = {
            path: {k: getattr(m, k) for k in _SAVED_SETTINGS if isinstance(getattr(m, k, None), (bool, float))}
            for path, m in self.model.named_modules()
        }

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(x))

    def restore_timm_settings(self) -> None:
        """Undo what Ultralytics' ``initialize_weights`` changed: BN eps/momentum, in-place flags as timm set them."""
        for path, module in self.model.named_modules():
            for key, value in self._timm_settings.get(path, {}).items():
                setattr(module, key, value)

    def train(self, mode: bool = True):
        self.restore_timm_settings()
        return super().train(mode)

    def batchnorms(self) -> list[nn.Module]:
        """The BatchNorms of the timm model (what freezing keeps in eval mode)."""
        return [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def switch_to_deploy(self) -> None:
        """Inference form: timm's re-parameterisation, then every remaining conv + BN pair folded; idempotent."""
        if self.deployed:
            return
        from timm.utils.model import reparameterize_model

        from .conv_bn_folding import fold_batchnorms

        reparameterize_model(self.model, inplace=True)
        fold_batchnorms(self.model)
        self.deployed = True

    # ------------------------------------------------------------------------------------------------ pickling
    def __reduce__(self):
        """Pickle as (timm name, settings, tensors); unpickling rebuilds through timm (no download) and loads them."""
        attrs = {k: v for k, v in vars(self).items() if not k.startswith("_") and _plain(v)}
        state = {
            "timm_backbone": 1,
            "state_dict": self.state_dict(),
            "requires_grad": {k: p.requires_grad for k, p in self.named_parameters()},
            "attrs": attrs,
        }
        return (TimmBackbone, (self.c1, self.name, self.c2, list(self.out_indices), False), state)

    def __setstate__(self, state: dict) -> None:
        if "timm_backbone" not in state:  # a plain nn.Module state (copy.copy and the like)
            super().__setstate__(state)
            return
        if state["attrs"].get("deployed"):
            self.switch_to_deploy()  # the same structure as when saved; its values come from the state_dict next
        tensor = next((t for t in state["state_dict"].values() if t.is_floating_point()), None)
        if tensor is not None:
            self.to(device=tensor.device, dtype=tensor.dtype)
        self.load_state_dict(state["state_dict"])
        for key, p in self.named_parameters():
            p.requires_grad_(state["requires_grad"].get(key, True))
        vars(self).update(state["attrs"])
        self.train(self.training)  # the timm modules in the mode the backbone was saved in

    def __deepcopy__(self, memo: dict):
        """An ordinary deep copy of the module objects (EMA, checkpoint saving): no rebuild through timm."""
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        nn.Module.__setstate__(new, copy.deepcopy(vars(self), memo))
        return new


def _plain(value) -> bool:
    """Whether ``value`` is plain data (safe-load picklable): numbers, strings, None and lists/tuples of them."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


class FeatureIndex(nn.Module):
    """Pick one feature map from the list a ``TimmBackbone`` (or any list-returning row) hands on.

    YAML args (``c1`` is filled in): ``[index, c2]``: which map, and its channel count (checked on every eager
    forward, so a wrong ``c2`` is an error naming this layer instead of a shape mismatch further on).
    Example: ``[0, 1, FeatureIndex, [0, 128]]`` picks the stride-8 map of ``yolov8n-timm-resnet18``.
    """

    def __init__(self, c1: int, index: int, c2: int):
        super().__init__()
        self.index, self.c2 = index, c2

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        y = x[self.index]
        if not is_exporting() and y.shape[1] != self.c2:
            raise TimmBackboneError(
                f"layer {getattr(self, 'i', '?')} FeatureIndex [{self.index}, {self.c2}]: feature map {self.index} "
                f"has {y.shape[1]} channels, not {self.c2}"
            )
        return y
