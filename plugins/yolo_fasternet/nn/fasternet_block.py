"""The FasterNet block: PConv -> 1x1 expand -> BN -> act -> 1x1 project, plus the residual (paper, figure 4)."""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv

from .activation import make_activation
from .inference_layout import ChannelsLastInference
from .pconv import PConv


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability ``p`` while training."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero the branch for a random subset of the batch and rescale the rest (identity in eval)."""
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _is_number(value) -> bool:
    """True for an int or float from a YAML row (not a bool, not a string such as 'two')."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class FasterNetBlock(ChannelsLastInference, nn.Module):
    """FasterNet block, as in the paper: PConv, 1x1 conv expanding by ``mlp_ratio``, BN, activation, 1x1 conv back.

    The expanding 1x1 conv and its BN form an Ultralytics ``Conv``, so ``model.fuse()`` folds the BN into it; the
    projecting 1x1 conv has no norm, exactly as in the reference implementation. ``model.fuse()`` also selects the
    inference form (``switch_to_deploy()``): the layer scale folded into the projection, channels-last on CPU.

    YAML arguments (a Conv-like layer; ``c1`` is filled in by Ultralytics, and the row's ``n`` stacks ``n`` blocks,
    which is how one YAML line writes a FasterNet stage): ``[c2, n_div, mlp_ratio, act, drop_path, layer_scale]``.

    Args:
        c1 (int): Input channels.
        c2 (int): Output channels; must equal ``c1`` when ``shortcut`` is on.
        n_div (int): PConv convolves ``c1 // n_div`` channels.
        mlp_ratio (float): Hidden width of the MLP as a multiple of ``c1``.
        act (str | nn.Module | None): ``gelu``, ``relu`` or ``silu``; None takes the model's ``fasternet_act``.
        drop_path (float | None): Stochastic-depth probability of the residual branch; None: from the model's
            ``drop_path_rate`` schedule (linear over the backbone's blocks, as the official configs), else 0.
        layer_scale (float): Initial value of a learnable per-channel scale on the branch; 0 disables it.
        shortcut (bool): Add the residual (the paper's block always does; C2f_Faster passes its own flag).
        pconv_mode (str): PConv forward mode, see ``PConv``.

    Example:
        >>> FasterNetBlock(64, 64, act="relu")(torch.zeros(1, 64, 16, 16)).shape
        torch.Size([1, 64, 16, 16])
    """

    def __init__(
        self,
        c1: int,
        c2: int | None = None,
        n_div: int = 4,
        mlp_ratio: float = 2.0,
        act: str | nn.Module | None = None,
        drop_path: float | None = None,
        layer_scale: float = 0.0,
        shortcut: bool = True,
        pconv_mode: str = "split_cat",
    ):
        super().__init__()
        c2 = c1 if c2 is None else c2
        if min(c1, c2) <= 0:
            raise ValueError(f"FasterNetBlock channels must be positive, got c1={c1}, c2={c2}")
        if shortcut and c1 != c2:
            raise ValueError(f"FasterNetBlock residual needs c1 == c2, got c1={c1}, c2={c2}")
        if not _is_number(mlp_ratio) or mlp_ratio <= 0:
            raise ValueError(f"FasterNetBlock mlp_ratio must be a positive number, got mlp_ratio={mlp_ratio!r}")
        if drop_path is not None and (not _is_number(drop_path) or not 0.0 <= drop_path < 1.0):
            raise ValueError(f"FasterNetBlock drop_path must be a number in [0, 1), got drop_path={drop_path!r}")
        if not _is_number(layer_scale) or layer_scale < 0:
            raise ValueError(f"FasterNetBlock layer_scale must be a number >= 0, got layer_scale={layer_scale!r}")
        hidden = int(c1 * mlp_ratio)
        self.add = shortcut
        self.spatial_mixing = PConv(c1, c1, n_div, pconv_mode)
        self.expand = Conv(c1, hidden, 1, act=make_activation(act))
        self.project = nn.Conv2d(hidden, c2, 1, bias=False)
        self.layer_scale = nn.Parameter(torch.full((c2, 1, 1), float(layer_scale))) if layer_scale > 0 else None
        self.drop_path_given = drop_path is not None  # a YAML value wins over the model's drop_path_rate schedule
        self.drop_path = DropPath(drop_path or 0.0)

    def yolo_pruning_kept_outputs(self) -> tuple[nn.Module, ...]:
        """Pruning rule (integration.pruning_rules): the residual width stays (the projection's outputs), the MLP's
        hidden width is pruned. Torch-Pruning 1.6.1 maps PConv's split of the residual channels to the wrong branch,
        so these channels are not pruned rather than pruned wrongly."""
        return (self.project,)

    def switch_to_deploy(self, channels_last: bool = True) -> None:
        """Inference form: layer scale folded into the projection, channels-last activations on CPU."""
        super().switch_to_deploy(channels_last)
        self.fold_layer_scale()

    @torch.no_grad()
    def fold_layer_scale(self) -> None:
        """Multiply the per-channel layer scale into the projecting 1x1 conv and drop it (inference form)."""
        if self.layer_scale is not None:
            self.project.weight.mul_(self.layer_scale.view(-1, 1, 1, 1))
            self.layer_scale = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix spatially with PConv, apply the MLP, and add the residual."""
        x = self.inference_layout(x)
        y = self.project(self.expand(self.spatial_mixing(x)))
        if self.layer_scale is not None:
            y = y * self.layer_scale
        return x + self.drop_path(y) if self.add else y
