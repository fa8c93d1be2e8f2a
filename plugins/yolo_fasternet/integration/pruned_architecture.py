"""A pruned model's architecture, written into its ``model.yaml``, so every rebuild from the YAML is the pruned model.

Ultralytics' trainer does not train the model object of a ``.pt``: it builds a new one from ``model.yaml`` and
copies in the weights whose shapes match (``BaseModel.load``), so the channels a pruner removed would come back,
silently re-initialised (ultralytics#9813). ``yolo-fasternet prune`` therefore records, under the YAML key
``pruned``, the shape of every parameter and buffer that pruning changed and the integer attributes that follow
those shapes (``Conv2d.in_channels``, ``BatchNorm2d.num_features``, ``PConv.dim_untouched``, ...), and the
registered ``parse_model`` calls ``apply_pruned_architecture`` right after building the layers: the model built from
that YAML, in any process (the stock ``yolo`` CLI, DDP workers), has the pruned widths, and the checkpoint's weights
then load completely. A YAML without the key builds exactly as before.

Layer names are relative to the ``nn.Sequential`` of layers (``"5.m.0.expand.conv.weight"``); the tensors re-made
here are slices of the freshly initialised ones (pruning only removes channels), later overwritten by the weights.
"""

from __future__ import annotations

from torch import nn

from .layer_errors import ModelYamlError

KEY = "pruned"
# Integer attributes of torch layers that state their widths; a module adds its own in ``yolo_pruning_attributes``.
_WIDTH_ATTRIBUTES = {
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm2d: ("num_features",),
    nn.LayerNorm: ("normalized_shape",),
}
DECLARED_ATTRIBUTES = "yolo_pruning_attributes"


def width_attributes(module: nn.Module) -> dict:
    """The integer attributes of ``module`` that must follow its weights' shapes (lists for tuples)."""
    names = next((names for cls, names in _WIDTH_ATTRIBUTES.items() if isinstance(module, cls)), ())
    names = (*names, *getattr(module, DECLARED_ATTRIBUTES, ()))
    return {name: list(v) if isinstance(v := getattr(module, name), tuple) else v for name in names}


def tensor_shapes(layers: nn.Module) -> dict[str, list[int]]:
    """Every parameter's and buffer's shape, by name."""
    named = [*layers.named_parameters(), *layers.named_buffers()]
    return {name: list(tensor.shape) for name, tensor in named}


def describe_changes(unpruned: nn.Module, pruned: nn.Module) -> dict:
    """The ``pruned`` YAML entry: the shapes and width attributes of ``pruned`` that differ from ``unpruned``."""
    before, after = tensor_shapes(unpruned), tensor_shapes(pruned)
    shapes = {name: shape for name, shape in after.items() if before.get(name) != shape}
    old_modules = dict(unpruned.named_modules())
    attributes = {}
    for name, module in pruned.named_modules():
        now, was = width_attributes(module), width_attributes(old_modules[name])
        changed = {key: value for key, value in now.items() if was.get(key) != value}
        if changed:
            attributes[name] = changed
    return {"shapes": shapes, "attributes": attributes}


def apply_pruned_architecture(model_yaml: dict, layers: nn.Module) -> None:
    """Re-shape the freshly built ``layers`` to the ``pruned`` entry of ``model_yaml`` (nothing if it has none)."""
    entry = model_yaml.get(KEY)
    if not entry:
        return
    if not isinstance(entry, dict) or not isinstance(entry.get("shapes"), dict):
        raise ModelYamlError(f"model YAML key {KEY} must map 'shapes' and 'attributes', got {type(entry).__name__}")
    modules = dict(layers.named_modules())
    for name, shape in entry["shapes"].items():
        owner_name, _, leaf = name.rpartition(".")
        owner = modules.get(owner_name)
        store = None if owner is None else owner._parameters if leaf in owner._parameters else owner._buffers
        old = None if store is None else store.get(leaf)
        if old is None or len(shape) != old.dim() or any(n > o for n, o in zip(shape, old.shape)):
            raise ModelYamlError(
                f"model YAML key {KEY}: {name} {shape} does not fit the built model "
                f"({'no such tensor' if old is None else list(old.shape)}); the YAML was edited after pruning"
            )
        new = old[tuple(slice(0, n) for n in shape)].clone()
        store[leaf] = nn.Parameter(new, requires_grad=old.requires_grad) if isinstance(old, nn.Parameter) else new
    for name, values in (entry.get("attributes") or {}).items():
        module = modules.get(name)
        if module is None:
            raise ModelYamlError(f"model YAML key {KEY}: no layer {name} in the built model")
        for attribute, value in values.items():
            setattr(module, attribute, tuple(value) if isinstance(value, list) else value)
