"""Fold every BatchNorm of a third-party network into the convolution that feeds it, found from the traced graph.

Ultralytics' ``fuse()`` folds only its own ``Conv`` modules (they hold their BN as ``.bn``). A timm backbone is built
from many other classes, and the order in which a module registers its children says nothing about the order in
which it calls them. So the pairs come from the graph that ``torch.fx`` traces: a BatchNorm whose only input is the
output of a plain convolution that nothing else reads, each module called exactly once. Only then are the two
folded (the convolution gets the BN's scale and shift, the BN becomes ``nn.Identity``, or its activation alone for
timm's ``BatchNormAct2d``). Module classes stay those of the network (no ``GraphModule``), so checkpoints and
exports see the same classes as before. A network that cannot be traced keeps its BatchNorms: the result is slower,
never different.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_types() -> tuple[type, ...]:
    """Convolutions whose forward is ``conv(x, weight, bias)``: a BN after them folds into weight and bias.

    Subclasses that transform their weight first (weight standardization, CondConv) are deliberately not listed.
    """
    from timm.layers import Conv2dSame

    return (nn.Conv2d, Conv2dSame)


def _norm_types() -> tuple[type, ...]:
    """BatchNorms that normalise with running statistics in eval mode: plain, and timm's BN + activation."""
    from timm.layers import BatchNormAct2d

    return (nn.BatchNorm2d, BatchNormAct2d)


class _LeafTracer(torch.fx.Tracer):
    """Trace down to convolutions and BatchNorms (kept as single nodes), honouring timm's own no-trace lists."""

    def __init__(self, leaves: tuple[type, ...]):
        from timm.layers import get_notrace_functions, get_notrace_modules

        super().__init__(autowrap_functions=tuple(f for f in get_notrace_functions() if callable(f)))
        self.leaves = leaves
        self.notrace = tuple(get_notrace_modules())

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in self.leaves or isinstance(m, self.notrace) or super().is_leaf_module(m, qualname)


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """Qualified names of (convolution, BatchNorm) pairs that fold exactly; [] if ``model`` cannot be traced."""
    convs, norms = _conv_types(), _norm_types()
    try:
        graph = _LeafTracer(convs + norms).trace(model)
    except Exception:  # noqa: BLE001 - any tracing failure means: fold nothing (slower, never wrong)
        return []
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or type(modules[node.target]) not in norms or node.kwargs or len(node.args) != 1:
            continue
        source = node.args[0]
        if (
            isinstance(source, torch.fx.Node)
            and source.op == "call_module"
            and type(modules[source.target]) in convs
            and len(source.users) == 1
            and calls[source.target] == calls[node.target] == 1
        ):
            pairs.append((source.target, node.target))
    return pairs


@torch.no_grad()
def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Give ``conv`` the BN's affine transform of its running statistics: conv'(x) == bn(conv(x)) in eval mode."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
    conv.bias = nn.Parameter(bias * scale + shift, requires_grad=conv.weight.requires_grad)


def _without_norm(bn: nn.Module) -> nn.Module:
    """What replaces a folded BN: nothing, or the dropout and activation timm's ``BatchNormAct2d`` applies after it."""
    rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
    rest = [m for m in rest if not isinstance(m, nn.Identity)]
    return nn.Identity() if not rest else rest[0] if len(rest) == 1 else nn.Sequential(*rest)


def fold_batchnorms(model: nn.Module) -> int:
    """Fold every foldable BatchNorm of ``model`` into its convolution, in place; returns how many were folded."""
    folded = 0
    for conv_name, bn_name in conv_bn_pairs(model):
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        if not bn.track_running_stats or bn.running_mean is None or conv.out_channels != bn.num_features:
            continue
        _fold_into(conv, bn)
        parent_name, _, attr = bn_name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, _without_norm(bn))
        folded += 1
    return folded
