"""Multi-head self-attention over a feature map with an image relative position bias (iRPE), as PartialNet uses it.

PartialNet's last stage (haiduo/PartialNet, ``models/partialnet.py``: ``RPEAttention`` built with
``get_rpe_config(ratio=20, method="euc", mode="bias", shared_head=False, skip=0, rpe_on="k")`` from its copy of
iRPE, Wu et al., ICCV 2021) adds a learned per-head bias to the attention logits, looked up by the rounded Euclidean
distance between the two pixels, bucketed by iRPE's piecewise index function. These are the reference's settings:

- distance ``d = round(sqrt(dy**2 + dx**2))``; bucket ``40 + d`` for ``d <= 20`` and
  ``40 + min(round(20 + ln(d / 20) / ln(8) * 20), 40)`` beyond (``alpha, beta, gamma = 20, 40, 160``);
- a table of ``num_heads x 81`` biases (``2 * beta + 1`` buckets; a distance never being negative, only the upper
  41 are ever read, as in the reference), zero-initialised, one row per head (``shared_head=False``);
- only keys get the encoding (``rpe_on="k"``) and in ``bias`` mode it does not depend on the query;
- ``qkv`` without bias, ``scale = head_dim ** -0.5``, dropout 0.1 on the attention map and after the projection.

The bucket indices are computed from the feature map's height and width with tensor operations, so exported graphs
stay valid for other input sizes; eager runs cache them per size and device.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from .flop_count import hooked_gflops
from .inference_layout import is_exporting

ALPHA, BETA, GAMMA = 20.0, 40.0, 160.0  # iRPE ratio 20: alpha = 1 * ratio, beta = 2 * ratio, gamma = 8 * ratio
NUM_BUCKETS = 2 * int(BETA) + 1
_BUCKET_CACHE: dict[tuple, torch.Tensor] = {}


def euclidean_buckets(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bucket index of every (query, key) pixel pair of a ``height x width`` map: a long tensor of shape (L, L)."""
    rows = torch.arange(height, device=device).view(height, 1).expand(height, width).reshape(-1)
    cols = torch.arange(width, device=device).view(1, width).expand(height, width).reshape(-1)
    dy = rows.view(-1, 1) - rows.view(1, -1)
    dx = cols.view(-1, 1) - cols.view(1, -1)
    distance = (dy * dy + dx * dx).float().sqrt().round()
    far = (ALPHA + torch.log(distance.clamp(min=ALPHA) / ALPHA) / math.log(GAMMA / ALPHA) * (BETA - ALPHA)).round()
    index = torch.where(distance <= ALPHA, distance, far.clamp(max=BETA))
    return index.long() + int(BETA)


def _cached_buckets(height: int, width: int, device: torch.device) -> torch.Tensor:
    """``euclidean_buckets``, computed once per map size and device in eager mode (in the graph while exporting)."""
    if is_exporting():
        return euclidean_buckets(height, width, device)
    key = (int(height), int(width), device.type, device.index)
    if key not in _BUCKET_CACHE:
        with torch.inference_mode(False):  # a cached inference tensor would break a later training step
            _BUCKET_CACHE[key] = euclidean_buckets(int(height), int(width), device)
    return _BUCKET_CACHE[key]


class RPEAttention(nn.Module):
    """Multi-head self-attention over the pixels of a ``(B, C, H, W)`` map with iRPE's Euclidean key bias.

    Args:
        dim (int): Channels ``C``; must be divisible by ``num_heads``.
        num_heads (int): Attention heads (4 in every PartialNet variant: ``patnet_t0: True`` in all its configs).
        attn_drop (float): Dropout on the attention map while training (0.1 in the reference).
        proj_drop (float): Dropout after the output projection while training (0.1 in the reference).
    """

    def __init__(self, dim: int, num_heads: int = 4, attn_drop: float = 0.1, proj_drop: float = 0.1):
        super().__init__()
        if num_heads <= 0 or dim % num_heads:
            raise ValueError(f"RPEAttention needs dim divisible by num_heads, got dim={dim}, num_heads={num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)
        self.rpe_bias = nn.Parameter(torch.zeros(num_heads, NUM_BUCKETS))

    def position_bias(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """The (1, heads, L, L) bias added to the attention logits."""
        buckets = _cached_buckets(height, width, device)
        return self.rpe_bias[:, buckets]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention over the ``H * W`` positions; the output has the input's shape."""
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, L, C)
        qkv = self.qkv(tokens).reshape(b, -1, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        logits = (q * self.scale) @ k.transpose(-2, -1) + self.position_bias(h, w, x.device).unsqueeze(0)
        attn = self.attn_drop(logits.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, -1, c)
        out = self.proj_drop(self.proj(out))
        return out.transpose(1, 2).reshape(b, c, h, w)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map at every pixel (timm's ``LayerNorm2d``, eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each pixel's channel vector."""
        x = x.permute(0, 2, 3, 1)
        return functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


def attention_gflops(model: nn.Module, imgsz: int) -> float:
    """GFLOPs of the two attention matrix products (``q @ k`` and ``attn @ v``) of every ``RPEAttention`` in ``model``.

    THOP counts the ``qkv`` and output projections (``nn.Linear``) but not these functional products:
    ``2 * L * L * C`` multiply-adds per image for ``L = H * W`` positions, 2 FLOPs each. Add this to ``get_flops``.
    """
    return hooked_gflops(
        model, imgsz, RPEAttention, lambda m, inp, out: 4 * (inp[0].shape[-2] * inp[0].shape[-1]) ** 2 * inp[0].shape[1]
    )
