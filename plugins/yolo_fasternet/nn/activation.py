"""Activation choice for FasterNet layers: by name in a YAML row, or per model scale via ``fasternet_act``.

FasterNet T0/T1 use GELU and T2/S/M/L use ReLU, so the activation depends on the model scale. A model YAML states
that once, at top level, next to ``scales``::

    fasternet_act: {n: gelu, s: gelu, m: relu, l: relu, x: relu}

While Ultralytics builds that model, FasterNet layers whose ``act`` argument is left out use the entry for the
model's scale (the same way ``activation:`` sets Ultralytics' ``Conv.default_act`` for one build).
"""

from __future__ import annotations

import contextlib
import contextvars

from torch import nn

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}
FALLBACK_ACTIVATION = "gelu"  # the paper's choice for its smallest variants

_model_default = contextvars.ContextVar("fasternet_model_activation", default=None)


def make_activation(act: str | nn.Module | None) -> nn.Module:
    """Return an activation module from a name (``gelu``, ``relu``, ``silu``), a module, or None (model default)."""
    if isinstance(act, nn.Module):
        return act
    name = (_model_default.get() or FALLBACK_ACTIVATION) if act is None else act
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"unknown FasterNet activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name.lower()]()


@contextlib.contextmanager
def model_activation(model_yaml: dict):
    """Set the default FasterNet activation from ``model_yaml['fasternet_act']`` for the model's scale while building.

    ``fasternet_act`` may be a single name or a mapping from scale letter to name. Without it nothing changes.
    """
    spec = model_yaml.get("fasternet_act")
    if spec is None:
        yield
        return
    if isinstance(spec, dict):
        scale = model_yaml.get("scale") or next(iter(model_yaml.get("scales") or {}), None)
        if scale not in spec:
            raise ValueError(f"fasternet_act has no entry for scale {scale!r}; it lists {sorted(spec)}")
        spec = spec[scale]
    make_activation(spec)  # validate the name before any layer is built
    token = _model_default.set(spec)
    try:
        yield
    finally:
        _model_default.reset(token)
