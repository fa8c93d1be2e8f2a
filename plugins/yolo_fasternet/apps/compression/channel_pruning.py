"""Structured channel pruning of a Ultralytics model with Torch-Pruning's DepGraph, honouring each module's rule.

Importance: DepGraph's group norm (``GroupMagnitudeImportance``, L2): the channels of one coupled group (every conv,
norm and residual that must lose the same channel) are ranked by the norm of all their weights together. It is
data-free, so it works on a checkpoint alone; Taylor importance needs gradients, hence data and a loss, and LAMP
only rescales magnitudes across layers, which matters for global pruning, not for the per-group ratio used here.

Each prunable group loses the same share of its channels (``ratio``), or the share grows in steps until the model's
GFLOPs fall by the wanted factor (``speed_up``), or, with ``latency=True``, until its measured CPU latency does
(the median of batch-1 forward passes of the fused original and the fused pruned copy, alternating, at every step).
What must not be pruned comes from ``pruning_rules``: the head's final convolutions and DFL never, C2f's chunked
layer, PConv's convolved channels, modules that say so. Channels a
rule keeps get infinite importance, so a group keeps them while it loses others; afterwards every kept layer is
checked, and a ratio that would have cut into one is an error, not a corrupted model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ...integration.pruned_architecture import describe_changes
from ...integration.pruning_rules import PruningPlan, pruning_plan, sync_after_pruning

MAX_RATIO = 0.7  # the largest per-group share a speed-up target may reach (PConv keeps 1/4 of its channels)
ROUND_TO = 8  # pruned widths stay multiples of 8, as Ultralytics' width scaling makes them (CPU kernels vectorize)
STEPS = 14  # speed-up targets approach MAX_RATIO in steps of MAX_RATIO / STEPS


class PruningError(RuntimeError):
    """The target cannot be met without cutting a kept channel (a one-line message naming the layer or target)."""


@dataclass
class PrunedModel:
    """The pruned copy, what changed (the ``pruned`` YAML entry), the ratio used, the notices to print, and for a
    speed-up target the factor measured when it was met."""

    model: nn.Module
    changes: dict
    ratio: float
    notices: list[str]
    speed_up: float | None = None


def _importance(plan: PruningPlan):
    import torch_pruning as tp

    class KeptChannelsGroupNorm(tp.importance.GroupMagnitudeImportance):
        """Group-norm importance; channels entering a kept layer rank above all others (never chosen first)."""

        def __call__(self, group):
            imp = super().__call__(group)
            if imp is None:
                return None
            for i, (dep, _) in enumerate(group):
                layer, fn = dep.layer, dep.pruning_fn
                if layer in plan.kept_inputs and getattr(fn, "__name__", "") == "prune_in_channels":
                    imp[[r for r in group[i].root_idxs if r is not None]] = float("inf")
            return None if torch.isinf(imp).all() else imp

    return KeptChannelsGroupNorm(p=2)


def _check_kept(before: dict, layers: nn.Module, plan: PruningPlan) -> None:
    """Raise ``PruningError`` naming the first kept layer whose kept channels were removed."""
    for name, module in layers.named_modules():
        if module in before and _kept_widths(module, plan) != before[module]:
            raise PruningError(
                f"layer {name} ({type(module).__name__}) would lose channels its rule keeps; use a smaller target"
            )


def _kept_widths(module: nn.Module, plan: PruningPlan) -> tuple:
    weight = getattr(module, "weight", None)
    if not isinstance(module, (nn.Conv2d, nn.Linear)) or weight is None:
        return ()
    out = weight.shape[0] if module in plan.kept_outputs else None
    grouped = isinstance(module, nn.Conv2d) and module.groups != 1
    return out, weight.shape[1] if module in plan.kept_inputs and not grouped else None


def _keep_untraceable(model: nn.Module, example: torch.Tensor, plan: PruningPlan) -> None:
    """Keep the output channels of every layer whose channel group Torch-Pruning cannot trace, with a notice.

    Torch-Pruning 1.6.1 fails with an ``IndexError`` on some groups (a ``split`` followed by a ``cat`` inside a
    residual, as PartialNet-T1's PAT_sp): the layer that feeds such a group keeps its outputs, never a crash.
    """
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(model, example)
    names = {m: name for name, m in model.model.named_modules()}
    for module in list(graph.module2node):
        pruner = graph.get_pruner_of_module(module)
        if module in plan.kept_outputs or not isinstance(module, (nn.Conv2d, nn.Linear)) or pruner is None:
            continue
        try:
            graph.get_pruning_group(module, pruner.prune_out_channels, list(range(pruner.get_out_channels(module))))
        except (IndexError, ValueError, RuntimeError) as e:
            plan.kept_outputs.add(module)
            plan.notices.append(
                f"layer {names.get(module, '?')} ({type(module).__name__}): output channels kept, Torch-Pruning "
                f"cannot trace the channels it feeds ({type(e).__name__})"
            )


def gflops(model: nn.Module, imgsz: int) -> float:
    """GFLOPs of one ``imgsz`` image, as Ultralytics' model summary counts them."""
    from ultralytics.utils.torch_utils import get_flops

    return get_flops(model, imgsz)


def fused_copy(model: nn.Module) -> nn.Module:
    """A float, fused (inference form), eval-mode copy of ``model`` without gradients: what latency is timed on."""
    return copy.deepcopy(model).float().requires_grad_(False).fuse(verbose=False).eval()


def gflops_speed_up(model: nn.Module, imgsz: int) -> Callable[[nn.Module], float]:
    """How many times fewer GFLOPs (at ``imgsz``) a pruned copy of ``model`` has."""
    base = gflops(model, imgsz)
    return lambda pruned: base / max(gflops(pruned, imgsz), 1e-9)


def latency_speed_up(model: nn.Module, imgsz: int, runs: int) -> Callable[[nn.Module], float]:
    """How many times lower the measured CPU latency of a pruned copy of ``model`` is: the median of ``runs``
    batch-1 forward passes at ``imgsz`` of both fused models, alternating in this process (``zoo.time_pair``)."""
    from ..zoo import time_pair

    original = fused_copy(model)

    def measured(pruned: nn.Module) -> float:
        with torch.no_grad():
            before, after = time_pair(original, fused_copy(pruned), imgsz, runs)
        return before / max(after, 1e-9)

    return measured


def prune(
    model: nn.Module,
    imgsz: int,
    ratio: float | None = None,
    speed_up: float | None = None,
    latency: bool = False,
    runs: int = 10,
    step_imgsz: int = 0,
) -> PrunedModel:
    """A pruned copy of the Ultralytics ``model`` (``DetectionModel``): ``ratio`` per group, or to ``speed_up``.

    ``speed_up`` divides the GFLOPs at ``imgsz``, or with ``latency`` the CPU latency at ``imgsz`` measured at every
    step (``runs`` timed passes per model). Tracing uses ``step_imgsz`` (default: the model's largest stride times
    two, enough to trace every layer).
    """
    import torch_pruning as tp

    pruned = copy.deepcopy(model).float().eval()
    for p in pruned.parameters():
        p.requires_grad_(True)  # DepGraph traces through autograd
    stride = int(max(getattr(model, "stride", torch.tensor([32])).max(), 32))
    example = torch.zeros(1, 3, step_imgsz or 2 * stride, step_imgsz or 2 * stride)
    layers = pruned.model
    plan = pruning_plan(layers)
    _keep_untraceable(pruned, example, plan)
    before = {m: _kept_widths(m, plan) for m in layers.modules()}
    before = {m: w for m, w in before.items() if w and any(v is not None for v in w)}
    target_ratio, steps = (ratio, 1) if ratio is not None else (MAX_RATIO, STEPS)
    pruner = tp.pruner.MetaPruner(
        pruned,
        example,
        importance=_importance(plan),
        pruning_ratio=target_ratio,
        iterative_steps=steps,
        ignored_layers=list(plan.kept_outputs),
        global_pruning=False,
        round_to=ROUND_TO,
    )
    measured = None
    if speed_up is not None:
        measured = latency_speed_up(model, imgsz, runs) if latency else gflops_speed_up(model, imgsz)
    reached, factor = 0.0, None
    for step in range(1, steps + 1):
        pruner.step()
        sync_after_pruning(layers, lambda: pruned(example))
        _check_kept(before, layers, plan)
        reached = target_ratio * step / steps
        if measured is not None and (factor := measured(pruned)) >= speed_up:
            break
    else:
        if measured is not None:
            option, what = ("--latency-speed-up", "lower CPU latency") if latency else ("--speed-up", "fewer GFLOPs")
            raise PruningError(
                f"{option} {speed_up}: pruning {MAX_RATIO:.0%} of every prunable group gives only {factor:.2f}x "
                f"{what}; ask for less"
            )
    for p in pruned.parameters():
        p.requires_grad_(False)
    return PrunedModel(pruned, describe_changes(model.model, layers), reached, plan.notices, factor)


def layer_changes(unpruned: nn.Module, pruned: nn.Module) -> list[str]:
    """One line per conv or linear layer whose widths changed: ``name: in a -> b, out c -> d``."""
    old = dict(unpruned.named_modules())
    lines = []
    for name, module in pruned.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        was, now = old[name].weight.shape, module.weight.shape
        parts = [f"{what} {a} -> {b}" for what, a, b in (("out", was[0], now[0]), ("in", was[1], now[1])) if a != b]
        if parts:
            lines.append(f"{name}: {', '.join(parts)}")
    return lines
