"""Clear errors for bad model YAML rows: which layer, which module, which values, and what was meant."""

from __future__ import annotations

import difflib
from types import CodeType, TracebackType

from torch import nn


class ModelYamlError(ValueError):
    """A model YAML row cannot be built; the message names the layer index, the module and its arguments."""


def _parse_frame_locals(tb: TracebackType | None, code: CodeType) -> dict | None:
    """Locals of the ``parse_model`` frame (by code object) in a traceback, or None if it is not there."""
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return tb.tb_frame.f_locals
        tb = tb.tb_next
    return None


def known_module_names(namespace: dict) -> list[str]:
    """Names a YAML row can use without a prefix: the ``nn.Module`` classes visible to ``parse_model``."""
    return sorted(k for k, v in namespace.items() if isinstance(v, type) and issubclass(v, nn.Module))


def layer_error(exc: Exception, code: CodeType, namespace: dict) -> ModelYamlError | None:
    """Turn an exception raised while ``parse_model`` built a layer into a ``ModelYamlError`` with that layer's context.

    Returns None when the exception did not come from a layer (the caller then re-raises it unchanged).
    """
    frame = _parse_frame_locals(exc.__traceback__, code)
    if frame is None or "i" not in frame or "m" not in frame:
        return None
    i, m, args = frame["i"], frame["m"], frame.get("args")
    if isinstance(m, str):  # the name did not resolve: parse_model failed looking it up
        name = m.removeprefix("nn.")
        pool = dir(nn) if m.startswith("nn.") else known_module_names(namespace)
        close = difflib.get_close_matches(name, pool, n=4, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return ModelYamlError(
            f"model YAML layer {i}: unknown module '{m}'.{hint} Names resolve to torch.nn ('nn.X'), Ultralytics' "
            "modules, or registered plugin modules (`yolo-fasternet modules` lists them)."
        )
    name = getattr(m, "__name__", repr(m))
    return ModelYamlError(f"model YAML layer {i} ({name}) with arguments {args}: {exc}")
