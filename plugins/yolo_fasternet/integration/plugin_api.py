"""The open plugin API: any package's ``nn.Module`` becomes a YAML module of stock Ultralytics, sized like a built-in.

In code (a call or a class decorator; idempotent)::

    from yolo_fasternet import register_module

    @register_module(like="C2f")  # YAML args after c1: [c2, shortcut, ...]; n is passed as the third argument
    class C2fGhost(C2f): ...

    @register_module(like="attention")  # a named kind: c2 = c1, called with (c1, *YAML args)
    class SE(nn.Module): ...

    @register_module(channels=lambda layer: (layer.scaled(layer.args[0]), [layer.c1, *layer.args]))
    class MyBlock(nn.Module): ...  # its own channel rule (channel_rules.LayerInputs -> (c2, args))

In every process (the stock ``yolo`` command, DDP workers, a fresh checkpoint load), by an entry point in the
plugin's ``pyproject.toml``; the class says how it is sized with a class attribute, ``yolo_like = "C2f"`` (a built-in
or a named kind), or a classmethod ``yolo_channels(cls, layer)``::

    [project.entry-points."yolo_fasternet.modules"]
    C2fGhost = "yolo_example_block.blocks:C2fGhost"   # name = the class name = the YAML name

``yolo_fasternet`` registers every declared module when it is imported, which its start-up hook does right after
``ultralytics.nn.tasks`` loads (a plugin package imported before Ultralytics is registered before the next model is
built). A declared module that cannot be registered (its import fails, its name clashes with a built-in or another
plugin's, its ``like`` is unknown) is skipped with one warning line naming its distribution and the reason;
Ultralytics and every other plugin keep working. Clashes are refused, never shadowed: with two distributions
declaring one name, the first in name order keeps it.

A registered module also states how ``yolo-fasternet prune`` may prune it, with optional class members
(``yolo_pruning = False`` / ``True``, ``yolo_pruning_kept_inputs()``, ``yolo_pruning_kept_outputs()``,
``yolo_pruned(in_channels)``, ``yolo_pruning_attributes``; see ``pruning_rules``); without them it is left unpruned.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import sys
from collections.abc import Callable, Iterator

from ..error_text import first_line
from .channel_rules import KINDS, YOLO_CHANNELS
from .parse_model_patch import RegistrationError
from .registration import BEFORE_BUILD, register_modules, registered_modules
from .registry import PluginModule

ENTRY_POINT_GROUP = "yolo_fasternet.modules"
LIKE_ATTRIBUTE = "yolo_like"
# Distribution whose entry point is being loaded: a register_module() call made while its module imports is its.
_LOADING: list[str] = []
# One line per declared module that was skipped in this process (the `yolo-fasternet modules` listing repeats them).
REFUSED: list[str] = []


def register_module(
    cls=None, *, like: str | type | None = None, channels: Callable | None = None, origin: str | None = None
):
    """Register ``cls`` as a YAML module, sized by a built-in's rules, a named kind, or its own channel rule.

    - ``like="C2f"`` (any class ``parse_model`` treats specially, see ``supported_likes()``): scaled exactly as that
      built-in, at every scale;
    - ``like="attention" | "parameter_free" | "concat" | "fuse"``: a named kind (``channel_rules``);
    - ``channels=rule``: ``rule(layer: LayerInputs) -> (c2, args)`` computes the output width and the constructor's
      arguments from the input width(s), the YAML arguments, ``width`` and ``max_channels``.

    Usable as ``register_module(MyBlock, like="C2f")`` and as ``@register_module(like="attention")``; without
    either keyword the class declares it itself: the attribute ``yolo_like = "C2f"`` or the classmethod
    ``yolo_channels(cls, layer)``. ``origin`` is the distribution shown by ``yolo-fasternet modules`` and recorded in
    checkpoints (default: the distribution that installed the class's package). Registering the same class again is
    a no-op; a clash, an unknown like or kind, or a non-module raises a one-line ``RegistrationError`` and changes
    nothing. Returns ``cls``.
    """

    def apply(target):
        name = getattr(target, "__qualname__", target)
        if like is not None and channels is not None:
            raise RegistrationError(f"cannot register {name!s}: give like= or channels=, not both")
        chosen, rule = like, channels
        if chosen is None and rule is None:
            chosen, rule = getattr(target, LIKE_ATTRIBUTE, None), getattr(target, YOLO_CHANNELS, None)
            if chosen is not None and rule is not None:
                raise RegistrationError(
                    f"cannot register {name!s}: it declares both {LIKE_ATTRIBUTE} and {YOLO_CHANNELS}; keep one "
                    "(a subclass sets the other to None)"
                )
        if chosen is None and rule is None:
            raise RegistrationError(
                f"cannot register {name!s}: no like, kind or channel rule given; use register_module(cls, like='C2f'), "
                f"like='attention' (or another kind: {', '.join(KINDS)}), channels=rule, the class attribute "
                f"{LIKE_ATTRIBUTE} = 'C2f' or a classmethod {YOLO_CHANNELS}(cls, layer)"
            )
        chosen = "" if chosen is None else chosen.__name__ if isinstance(chosen, type) else str(chosen)
        source = origin if origin is not None else _distribution_of(target)
        register_modules([PluginModule(target, like=chosen, origin=source, channels=rule)])
        return target

    return apply if cls is None else apply(cls)


def _distribution_of(cls) -> str:
    """The distribution that ships ``cls``'s top-level package; '' for code that is not installed (a script)."""
    if _LOADING:
        return _LOADING[-1]
    top = getattr(cls, "__module__", "").split(".")[0]
    names = _packages_distributions(tuple(sys.path)).get(top, []) if top not in ("", "__main__") else []
    return names[0] if names else ""


@functools.lru_cache(maxsize=4)
def _packages_distributions(search_path: tuple[str, ...]) -> dict[str, list[str]]:
    """``importlib.metadata.packages_distributions()`` for this ``sys.path`` (it reads every installed file list:
    seconds in a large environment, so once per path, not once per registered class)."""
    find = getattr(importlib.metadata, "packages_distributions", None)  # Python 3.10+
    return find() if find else {}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_modules() -> Iterator[tuple[str, importlib.metadata.EntryPoint]]:
    """``(distribution, entry point)`` for every ``yolo_fasternet.modules`` entry point, by distribution name.

    A distribution found twice on ``sys.path`` counts once (the first, as imports would find it).
    """
    found: dict[str, tuple[str, list]] = {}
    for dist in importlib.metadata.distributions():
        declared = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        if declared:
            name = dist.metadata["Name"] or "?"
            found.setdefault(_normalized(name), (name, declared))
    for key in sorted(found):
        name, declared = found[key]
        for ep in sorted(declared, key=lambda e: e.name):
            yield name, ep


# Entry points whose module was still being imported when they were read (a plugin package imported before
# Ultralytics: its own `import ultralytics` is what registered us); retried before the next model is built.
_DEFERRED: list[tuple[str, importlib.metadata.EntryPoint]] = []


def _being_imported(module: str) -> bool:
    """Whether ``module`` or a package above it is in the middle of its own import (partially initialised)."""
    parts = module.split(".")
    for n in range(1, len(parts) + 1):
        spec = getattr(sys.modules.get(".".join(parts[:n])), "__spec__", None)
        if getattr(spec, "_initializing", False):
            return True
    return False


def register_entry_point_modules(entries=None) -> None:
    """Register every declared module that can be; each one that cannot gives one warning line and is skipped."""
    for distribution, ep in declared_modules() if entries is None else entries:
        if _being_imported(ep.value.split(":")[0]):
            _DEFERRED.append((distribution, ep))
            continue
        reason = _register_entry_point(distribution, ep)
        if reason:
            line = f"plugin distribution '{distribution}' ({ep.name} = {ep.value}) not registered: {reason}"
            REFUSED.append(line)
            print(f"WARNING yolo-fasternet: {line}", file=sys.stderr)


def register_deferred_entry_points() -> bool:
    """Register the entry points deferred because their package was mid-import (see ``_DEFERRED``); whether any."""
    if not _DEFERRED:
        return False
    pending = list(_DEFERRED)
    _DEFERRED.clear()
    register_entry_point_modules(pending)
    return True


BEFORE_BUILD.append(register_deferred_entry_points)


def _register_entry_point(distribution: str, ep) -> str | None:
    """Load and register one entry point; the reason it was skipped, or None."""
    _LOADING.append(distribution)
    try:
        cls = ep.load()
    except Exception as e:  # any failure of a third-party import must leave this process working
        return f"import failed: {type(e).__name__}: {first_line(e)}"
    finally:
        _LOADING.pop()
    if not isinstance(cls, type):
        return f"the entry point names {type(cls).__name__} '{ep.value}', not a class"
    if ep.name != cls.__name__:
        return f"the entry point's name must be the class name '{cls.__name__}' (the name YAML rows use)"
    known = next((entry for entry in registered_modules() if entry.cls is cls), None)
    declared = getattr(cls, LIKE_ATTRIBUTE, None) is not None or getattr(cls, YOLO_CHANNELS, None) is not None
    if not declared and known is None:
        return (
            f"the class has no '{LIKE_ATTRIBUTE}' attribute (the built-in it scales like, e.g. 'C2f', or a kind: "
            f"{', '.join(KINDS)}) and no '{YOLO_CHANNELS}' classmethod (its own channel rule)"
        )
    try:
        if declared:
            register_module(cls, origin=known.origin if known else distribution)
        else:  # registered in code by its own import (register_module) before the entry point was read
            register_module(cls, like=known.like or None, channels=known.channels, origin=known.origin)
    except RegistrationError as e:
        return first_line(e)
    return None
