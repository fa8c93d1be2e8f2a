"""The PartialNet block (arXiv 2502.01303): PATConv, then FasterNet's MLP (optionally with PAT_sp), with residuals.

Follows the reference code (haiduo/PartialNet, ``models/partialnet.py``: ``MLPBlock``,
``partial_spatial_attn_layer_reverse``) and its variant configs (``cfg/PartialNet_t0.yaml`` ...).
"""

from __future__ import annotations

import contextlib
import contextvars

import torch
from torch import nn
from ultralytics.nn.modules import Conv

from .activation import make_activation
from .fasternet_block import DropPath, _is_number
from .patconv import PATCONV_ATTENTION, PATConv

_model_spatial_mlp = contextvars.ContextVar("partialnet_model_spatial_mlp", default=False)


@contextlib.contextmanager
def spatial_mlp_default(value: bool):
    """While a model is built, PartialNet blocks that leave ``spatial_mlp`` out use ``value`` (a per-scale YAML key)."""
    token = _model_spatial_mlp.set(bool(value))
    try:
        yield
    finally:
        _model_spatial_mlp.reset(token)


class SpatialAttentionTail(nn.Module):
    """PAT_sp, the spatial-attention tail of the MLP in PartialNet-T1 (``partial_spatial_attn_layer_reverse``).

    With ``d = int(c * 0.5)`` and the split ``[c - d, d]`` (the untouched part *first*, as the reference orders it):
    the first part is gated per pixel by ``hardsigmoid(1x1 conv to one channel)`` and then BatchNorm-ed; the second
    part is BatchNorm-ed and then a bias-free 1x1 conv. The two are concatenated (one attention head, as in the code).

    Inference form (``switch_to_deploy()``): the BN before the 1x1 conv is folded into it (exact: a 1x1 conv has no
    padding); inside a ``PartialNetBlock`` the BN after the gate is folded too (see its ``switch_to_deploy``).
    """

    def __init__(self, c: int, partial: float = 0.5):
        super().__init__()
        self.dim_conv = int(partial * c)
        self.dim_untouched = c - self.dim_conv
        if self.dim_conv < 1 or self.dim_untouched < 1:
            raise ValueError(f"PAT_sp needs at least 2 channels to split, got c={c}")
        self.gate_conv = nn.Conv2d(self.dim_untouched, 1, 1, bias=False)
        self.gate = nn.Hardsigmoid()
        self.norm_gated = nn.BatchNorm2d(self.dim_untouched)
        self.norm_conv = nn.BatchNorm2d(self.dim_conv)
        self.register_buffer("gated_shift", None)  # the gated half's BN shift once its scale is folded (deploy)
        self.conv = nn.Conv2d(self.dim_conv, self.dim_conv, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate and normalise the first part; normalise and mix the second."""
        x1, x2 = torch.split(x, [self.dim_untouched, self.dim_conv], dim=1)
        x1 = self.norm_gated(x1 * self.gate(self.gate_conv(x1)))
        if self.gated_shift is not None:
            x1 = x1 + self.gated_shift
        return torch.cat((x1, self.conv(self.norm_conv(x2))), 1)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the BN that precedes the 1x1 conv into it; idempotent."""
        if isinstance(self.norm_conv, nn.Identity):
            return
        fold_input_bn(self.conv, self.norm_conv, 0)
        self.norm_conv = nn.Identity()


@torch.no_grad()
def fold_input_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, first: int) -> None:
    """Make the 1x1 ``conv`` apply eval-mode ``bn`` to its input channels ``first:first + bn.num_features`` first."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    cols = slice(first, first + bn.num_features)
    w = conv.weight[:, cols, 0, 0]  # (out, n)
    extra = w @ shift
    conv.weight[:, cols] *= scale.view(1, -1, 1, 1)
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels, dtype=w.dtype, device=w.device)
    conv.bias = nn.Parameter(bias + extra, requires_grad=conv.weight.requires_grad)


class PartialNetBlock(nn.Module):
    """PartialNet block: PATConv for spatial mixing, then 1x1 expand -> BN -> act -> 1x1 project [-> PAT_sp].

    Residual layout of the reference (``MLPBlock``): with channel attention (stages 1-3) one residual around the
    whole block, ``x + DropPath(MLP(PATConv(x)))``; with self-attention (the last stage, where the reference sets
    ``split_shortcut``) one residual around each, ``y = x + PATConv(x)``, ``y + DropPath(MLP(y))``. Layer scale is
    0 (off) in every reference config and is not offered.

    The expanding 1x1 conv and its BN form an Ultralytics ``Conv``, so ``model.fuse()`` folds that BN. The inference
    form (``switch_to_deploy()``, called by ``model.fuse()``) also folds the BN after PATConv's channel attention into
    the expanding conv's input side, the BNs of SRM and PAT_sp into their convolutions, and PAT_sp's BN after its gate
    into the projection and the gate (its shift stays as an addition); the LayerNorm stays.

    YAML arguments (a Conv-like layer; ``c1`` is filled in and the row's ``n`` stacks blocks, one row per stage):
    ``[c2, attn, n_div, mlp_ratio, act, drop_path, spatial_mlp, num_heads]``. Left out, ``act`` comes from the YAML's
    ``fasternet_act``, ``drop_path`` from ``drop_path_rate`` (linear over the backbone's blocks) and ``spatial_mlp``
    from ``spatial_mlp``, each per scale (see ``integration.stage_settings``).

    Args:
        c1 (int): Channels.
        c2 (int): Output channels; must equal ``c1`` (residual block).
        attn (str): ``"channel"`` (SRM, stages 1-3) or ``"self"`` (iRPE self-attention, last stage).
        n_div (int): PATConv convolves ``c1 // n_div`` channels.
        mlp_ratio (float): Hidden width of the MLP as a multiple of ``c1``.
        act (str | nn.Module | None): ``gelu``, ``relu`` or ``silu``; None: the model's ``fasternet_act``.
        drop_path (float | None): Stochastic depth of the MLP branch; None: from the model's schedule (else 0).
        spatial_mlp (bool | None): End the MLP with PAT_sp (PartialNet-T1); None: the model's setting (else off).
        num_heads (int): Heads of the self-attention.

    Example:
        >>> PartialNetBlock(64, 64, "self")(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 64, 8, 8])
    """

    # Pruning rule (integration.pruning_rules): as the FasterNet block's. The residual width stays (the projection's
    # outputs; PATConv keeps all its channels, see its rule) and so does PAT_sp (its split sizes are integers), while
    # the MLP's hidden width (the expanding conv's outputs and BN, the projection's inputs) is pruned.
    def yolo_pruning_kept_outputs(self) -> tuple[nn.Module, ...]:
        """The projection keeps its outputs (the residual width), PAT_sp all of its channels."""
        return (self.project, *self._tail())

    def yolo_pruning_kept_inputs(self) -> tuple[nn.Module, ...]:
        """PAT_sp keeps its input channels (they are the residual width already)."""
        return self._tail()

    def _tail(self) -> tuple[nn.Module, ...]:
        return (self.spatial_tail,) if self.spatial_tail is not None else ()

    def __init__(
        self,
        c1: int,
        c2: int | None = None,
        attn: str = "channel",
        n_div: int = 4,
        mlp_ratio: float = 2.0,
        act: str | nn.Module | None = None,
        drop_path: float | None = None,
        spatial_mlp: bool | None = None,
        num_heads: int = 4,
    ):
        super().__init__()
        c2 = c1 if c2 is None else c2
        if c1 != c2:
            raise ValueError(f"PartialNetBlock residual needs c1 == c2, got c1={c1}, c2={c2}")
        if attn not in PATCONV_ATTENTION:
            raise ValueError(f"PartialNetBlock attn must be one of {PATCONV_ATTENTION}, got attn={attn!r}")
        if not _is_number(mlp_ratio) or mlp_ratio <= 0:
            raise ValueError(f"PartialNetBlock mlp_ratio must be a positive number, got mlp_ratio={mlp_ratio!r}")
        if drop_path is not None and (not _is_number(drop_path) or not 0.0 <= drop_path < 1.0):
            raise ValueError(f"PartialNetBlock drop_path must be a number in [0, 1), got drop_path={drop_path!r}")
        if spatial_mlp is not None and not isinstance(spatial_mlp, bool):
            raise ValueError(f"PartialNetBlock spatial_mlp must be true or false, got spatial_mlp={spatial_mlp!r}")
        hidden = int(c1 * mlp_ratio)
        self.split_shortcut = attn == "self"
        self.spatial_mixing = PATConv(c1, c1, attn, n_div, num_heads)
        self.expand = Conv(c1, hidden, 1, act=make_activation(act))
        self.project = nn.Conv2d(hidden, c1, 1, bias=False)
        use_tail = _model_spatial_mlp.get() if spatial_mlp is None else spatial_mlp
        self.spatial_tail = SpatialAttentionTail(c1) if use_tail else None
        self.drop_path_given = drop_path is not None  # a YAML value wins over the model's drop_path_rate schedule
        self.drop_path = DropPath(drop_path or 0.0)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """1x1 expand (with BN and activation), 1x1 project, and PAT_sp when enabled."""
        y = self.project(self.expand(x))
        return self.spatial_tail(y) if self.spatial_tail is not None else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reference's residual layout for this block's stage kind."""
        if self.split_shortcut:
            x = x + self.spatial_mixing(x)
            return x + self.drop_path(self.mlp(x))
        return x + self.drop_path(self.mlp(self.spatial_mixing(x)))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the BN after the channel attention into the expanding 1x1 conv's input channels; idempotent."""
        mixer = self.spatial_mixing
        if mixer.attn_kind == "channel" and isinstance(mixer.norm, nn.BatchNorm2d):
            fold_input_bn(self.expand.conv, mixer.norm, mixer.dim_conv)
            mixer.norm = nn.Identity()
        tail = self.spatial_tail
        if tail is not None and isinstance(tail.norm_gated, nn.BatchNorm2d):
            # BN(x1 * g(W x1)) = (s x1) * g((W / s)(s x1)) + t: s into the projection rows that make x1, 1/s into
            # the gate's weights, t kept as a shift (not where some |s| < 1e-2: 1/s would amplify rounding)
            bn = tail.norm_gated
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            if bool((scale.abs() >= 1e-2).all()):
                self.project.weight[: tail.dim_untouched] *= scale.view(-1, 1, 1, 1)
                tail.gate_conv.weight.div_(scale.view(1, -1, 1, 1))
                tail.gated_shift = (bn.bias - bn.running_mean * scale).view(1, -1, 1, 1).clone()
                tail.norm_gated = nn.Identity()
