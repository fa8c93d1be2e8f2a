"""Which channels of a model a structured pruner may remove: each module's own rule, else a built-in's, else none.

DepGraph (Torch-Pruning) traces convolutions, norms, concatenations, additions and splits and removes coupled
channels together. What it cannot see are integers a module keeps beside its weights (PConv's split sizes, C2f's
``chunk(2)``, attention head counts) and the outputs the loss reads (the head's final convolutions). A module states
its rule with these optional members, which the pruner looks up (no Torch-Pruning import is needed to declare them):

- ``yolo_pruning = False``: leave every channel of the module as it is (its inputs, its outputs, everything inside);
  ``yolo_pruning = True``: let DepGraph trace it with no extra rule (for a module of another package).
- ``yolo_pruning_kept_outputs(self)`` / ``yolo_pruning_kept_inputs(self)``: submodules whose output (input) channels
  must stay, e.g. the layer in front of a ``chunk``.
- ``yolo_pruned(self, in_channels)``: called once after pruning with the module's new input width, to reset the
  integers that follow it; ``yolo_pruning_attributes = ("dim_untouched", ...)``: those integers, recorded in the
  pruned checkpoint so every rebuild from its YAML has them (``pruned_architecture``).

Modules of Ultralytics and torch are traced, with the rules below for the built-ins that need one. A module of any
other package that declares none of these members is left unpruned, with a one-line notice naming it: an unknown
forward may hold sizes a tracer cannot see, and a corrupted model is worse than a smaller saving.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from torch import nn

SWITCH = "yolo_pruning"
KEPT_OUTPUTS = "yolo_pruning_kept_outputs"
KEPT_INPUTS = "yolo_pruning_kept_inputs"
SYNC = "yolo_pruned"
_DECLARATIONS = (SWITCH, KEPT_OUTPUTS, KEPT_INPUTS, SYNC, "yolo_pruning_attributes")
_TRACED_PACKAGES = ("torch", "ultralytics", "yolo_fasternet")


@dataclass
class PruningPlan:
    """The layers a pruner must leave alone in one model, and the notices to print."""

    kept_outputs: set = field(default_factory=set)  # modules whose output channels stay
    kept_inputs: set = field(default_factory=set)  # modules whose input channels stay
    notices: list[str] = field(default_factory=list)


def _builtin_kept_outputs(module: nn.Module) -> Iterable[nn.Module]:
    """Rules of Ultralytics built-ins, which cannot declare them: the layer whose output they split evenly."""
    from ultralytics.nn.modules import block

    chunked = tuple(getattr(block, name) for name in ("C2f", "C2PSA", "PSA", "C2fPSA") if hasattr(block, name))
    if isinstance(module, chunked):  # C2f: cv1(x).chunk(2, 1) or split((c, c), 1)
        return (module.cv1,)
    return ()


def _builtin_unpruned(module: nn.Module) -> bool:
    """Ultralytics built-ins whose head counts or fixed kernels follow their widths (attention, DFL)."""
    from ultralytics.nn.modules import block

    names = ("Attention", "AAttn", "DFL")
    return isinstance(module, tuple(getattr(block, n) for n in names if hasattr(block, n)))


def head_outputs(head: nn.Module) -> list[nn.Module]:
    """The head's final layers: the last ``nn.Conv2d`` of each ``nn.Sequential`` branch (boxes, classes, masks,
    keypoints, angles; YOLO26's one-to-one branches too)."""
    ends = []
    for branch in head.modules():
        if isinstance(branch, nn.Sequential) and len(branch) and isinstance(branch[-1], nn.Conv2d):
            ends.append(branch[-1])
    return ends


def _declares(module: nn.Module) -> bool:
    return any(hasattr(type(module), name) for name in _DECLARATIONS)


def _whole(module: nn.Module, plan: PruningPlan) -> None:
    for inner in module.modules():
        plan.kept_outputs.add(inner)
        plan.kept_inputs.add(inner)


def pruning_plan(layers: nn.Sequential) -> PruningPlan:
    """The plan for a Ultralytics model's layers (``model.model``); its last layer is the head."""
    plan = PruningPlan()
    head = layers[-1]
    plan.kept_outputs.update(head_outputs(head))
    inside_skipped: set[int] = set()
    for name, module in layers.named_modules():
        if id(module) in inside_skipped:
            continue
        package = type(module).__module__.split(".")[0]
        switch = getattr(module, SWITCH, None)
        unknown = package not in _TRACED_PACKAGES and not _declares(module)
        if switch is False or unknown or _builtin_unpruned(module):
            _whole(module, plan)
            inside_skipped.update(id(inner) for inner in module.modules())
            if switch is False or unknown:
                why = "declares yolo_pruning = False" if switch is False else "declares no pruning rule"
                plan.notices.append(f"layer {name} ({type(module).__name__}): left unpruned, it {why}")
            continue
        plan.kept_outputs.update(_builtin_kept_outputs(module))
        plan.kept_outputs.update(getattr(module, KEPT_OUTPUTS, lambda: ())())
        plan.kept_inputs.update(getattr(module, KEPT_INPUTS, lambda: ())())
    for module in list(plan.kept_outputs):  # an Ultralytics Conv kept means its conv and norm
        plan.kept_outputs.update(module.modules())
    for module in list(plan.kept_inputs):
        plan.kept_inputs.update(module.modules())
    if hasattr(head, "dfl"):
        _whole(head.dfl, plan)
    return plan


def sync_after_pruning(layers: nn.Module, forward) -> None:
    """Let each module with ``yolo_pruned(in_channels)`` reset its integers from its pruned input width.

    ``forward()`` runs the model once; a pre-hook tells each such module its input width just before it runs.
    """

    def tell(module, inputs):
        getattr(module, SYNC)(inputs[0].shape[1])

    hooks = [m.register_forward_pre_hook(tell) for m in layers.modules() if callable(getattr(m, SYNC, None))]
    try:
        forward()
    finally:
        for hook in hooks:
            hook.remove()
