"""Channel rules: how a plugin module's output width and constructor arguments follow from its inputs and YAML row.

Ultralytics' ``parse_model`` computes, for each row, the output width ``c2`` (what the next rows see as their input
width) and the arguments the class is called with. Built-in classes get that from the branch that names them; a
plugin registered ``like`` a built-in rides the same branch (``parse_model_patch``). Everything else gets a *channel
rule*: a callable ``rule(layer: LayerInputs) -> (c2, args)``, either one of the named kinds below or the module's
own (the classmethod ``yolo_channels`` or ``register_module(cls, channels=rule)``). The number of repeats ``n`` is
applied afterwards as for any module Ultralytics does not know: ``n`` copies in a ``Sequential``.

Named kinds, each replacing a line that YOLO-improvement forks add to ``parse_model``:

=================  ============================================  ==========================================
kind               the fork's line                               what the class is called with
=================  ============================================  ==========================================
``attention``      ``c2 = ch[f]; args = [c2, *args]``            ``(c1, *args)``; c2 = c1 (SE, CBAM, EMA,
                                                                 CoordAtt, DySample, CARAFE, ...)
``parameter_free`` the final ``else: c2 = ch[f]``                ``(*args)`` as written; c2 = c1 (SimAM)
``concat``         ``c2 = sum(ch[x] for x in f)``                ``([c1, ...], *args)``; c2 = sum of the
                                                                 inputs' widths (BiFPN weighted concat)
``fuse``           ``c2 = ch[f[0]]`` (inputs of one width)       ``([c1, ...], *args)``; c2 = the inputs'
                                                                 common width (weighted add, BiFPN add)
=================  ============================================  ==========================================

With a list ``from``, ``attention`` and ``parameter_free`` pass the list of input widths as ``c1`` and keep the
first input's width (the module receives the list of tensors and returns one shaped like the first); with an
int ``from``, ``concat`` and ``fuse`` pass a one-element list. A rule that raises, or returns anything but a
positive int and a list, is a one-line ``ModelYamlError`` naming the layer, the module and the rule.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

from .layer_errors import ModelYamlError

YOLO_CHANNELS = "yolo_channels"  # the classmethod a module declares its own channel rule with


@dataclass(frozen=True)
class LayerInputs:
    """What a channel rule sees for one YAML row ``[from, n, Module, args]``.

    ``c1`` is the input width for an int ``from`` and the list of input widths for a list; ``args`` are the YAML
    arguments as written (names such as ``nc`` already resolved); ``width`` and ``max_channels`` are the model
    scale's (1.0 and inf for YAMLs without ``scales``).
    """

    index: int
    c1: int | list[int]
    args: list
    width: float
    max_channels: float

    @property
    def widths(self) -> list[int]:
        """The input widths as a list (one element for an int ``from``)."""
        return list(self.c1) if isinstance(self.c1, list) else [self.c1]

    def scaled(self, c2: int) -> int:
        """A nominal width scaled as Ultralytics scales ``Conv``'s ``c2``: capped at max_channels, times width, to 8."""
        from ultralytics.utils.ops import make_divisible

        return int(make_divisible(min(c2, self.max_channels) * self.width, 8))


def attention(layer: LayerInputs) -> tuple[int, list]:
    """Channels preserved, ``c1`` passed first."""
    return layer.widths[0], [layer.c1, *layer.args]


def parameter_free(layer: LayerInputs) -> tuple[int, list]:
    """Channels preserved, arguments as written."""
    return layer.widths[0], list(layer.args)


def concat(layer: LayerInputs) -> tuple[int, list]:
    """Output width = sum of the inputs' widths; the list of input widths passed first."""
    return sum(layer.widths), [layer.widths, *layer.args]


def fuse(layer: LayerInputs) -> tuple[int, list]:
    """Output width = the inputs' common width; the list of input widths passed first."""
    if len(set(layer.widths)) > 1:
        raise ValueError(
            f"its inputs have different widths {layer.widths}; a 'fuse' module combines inputs of one width "
            "(use kind 'concat', or a channel rule, for inputs of different widths)"
        )
    return layer.widths[0], [layer.widths, *layer.args]


KINDS: dict[str, Callable[[LayerInputs], tuple[int, list]]] = {
    "attention": attention,
    "parameter_free": parameter_free,
    "concat": concat,
    "fuse": fuse,
}


def rule_for(like: str, channels: Callable | None) -> Callable | None:
    """The channel rule a registered module is sized by: its own, its named kind's, or None (it rides ``like``)."""
    return channels if channels is not None else KINDS.get(like)


def rule_name(rule: Callable) -> str:
    """How errors and the module listing name a rule: the kind, or the callable's qualified name."""
    for kind, known in KINDS.items():
        if rule is known:
            return kind
    owner = getattr(rule, "__self__", None)  # a bound classmethod: MyBlock.yolo_channels
    qualname = getattr(rule, "__qualname__", None) or type(rule).__name__
    return f"{owner.__name__}.{rule.__name__}" if isinstance(owner, type) else qualname


class AppliedRule:
    """A module's rule in the form the rewritten ``parse_model`` calls: ``(i, f, ch, args, width, max_channels)``."""

    def __init__(self, cls: type, rule: Callable):
        self.cls, self.rule = cls, rule

    def __call__(self, i: int, f, ch: list, args: list, width: float, max_channels: float) -> tuple[int, list]:
        name = rule_name(self.rule)
        label = f"kind '{name}'" if name in KINDS else f"channel rule {name}"
        where = f"model YAML layer {i} ({self.cls.__name__}, {label})"
        try:
            c1 = [ch[x] for x in f] if isinstance(f, (list, tuple)) else ch[f]
        except (IndexError, TypeError) as e:
            raise ModelYamlError(f"{where}: 'from' {f!r} does not name earlier layers ({e})") from None
        layer = LayerInputs(i, c1, list(args), width, max_channels)
        try:
            result = self.rule(layer)
        except ModelYamlError:
            raise
        except Exception as e:  # a user's rule: any failure becomes one line naming the layer and module
            message = str(e).strip().splitlines()[0] if str(e).strip() else ""
            cause = message if name in KINDS else f"{type(e).__name__}: {message}"
            raise ModelYamlError(f"{where} with inputs {c1} and arguments {args}: {cause}") from e
        return _checked(result, where)


def _checked(result, where: str) -> tuple[int, list]:
    """``(c2, args)`` from a rule's result; a ModelYamlError saying what was wrong otherwise."""
    ok = isinstance(result, (tuple, list)) and len(result) == 2
    c2, args = result if ok else (None, None)
    ok = ok and isinstance(c2, numbers.Integral) and not isinstance(c2, bool) and c2 > 0
    if not ok or not isinstance(args, (list, tuple)):
        raise ModelYamlError(
            f"{where} returned {result!r:.200}; a channel rule must return (c2, args): c2 a positive int (the output "
            "width), args a list (the constructor's arguments)"
        )
    return int(c2), list(args)
