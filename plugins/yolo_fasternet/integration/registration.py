"""Register the plugin modules into an unmodified, installed Ultralytics (idempotent, all-or-nothing).

What ``register()`` changes in ``ultralytics.nn.tasks`` (and in every already-imported Ultralytics module that
imported the same functions by name):

- the plugin classes become YAML names (``globals()[name]`` is how ``parse_model`` resolves a row);
- ``parse_model`` is Ultralytics' own function, recompiled so each plugin scales like its built-in counterpart
  (see ``parse_model_patch``), wrapped to apply ``fasternet_act`` and to report bad rows by layer;
- ``BaseModel.fuse`` (what prediction, validation of a checkpoint and export call) also selects the plugin
  modules' inference form (each module's ``switch_to_deploy()``, see ``inference_form``);
- ``check_requirements`` (the exporter's package check) first names the extra that installs a missing export
  format's packages, in one line (``export_packages``);
- ``Exporter.__call__`` (once the exporter is imported), when the export fails, names the plugin layer that its
  converter refuses (``export_failures``);
- a model YAML with a ``pruned`` key (written by ``yolo-fasternet prune``) builds with the pruned widths
  (``pruned_architecture``), so the trainer's rebuild of a pruned checkpoint keeps them;
- ``yaml_model_load`` also finds the bundled ``cfg/`` YAMLs by bare name and lists where it looked when it fails;
- the plugin classes (and the other ``nn.Module`` classes of their modules) are allow-listed for
  ``ULTRALYTICS_SAFE_LOAD=1`` checkpoint loading, ours also under their pre-0.2 class paths (``legacy_paths``).

``register()`` installs yolo-fasternet's own table; ``register_modules()`` adds other packages' modules later in the
same process (``plugin_api`` is the public face), recompiling ``parse_model`` from Ultralytics' original each time.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch
from torch import nn

from yolo_fasternet_autoload import call_after_import

from ..nn.activation import model_activation
from .channel_rules import KINDS, AppliedRule, rule_for, rule_name
from .export_failures import install as wrap_exporter
from .export_packages import naming_the_extra
from .inference_form import select_inference_form
from .layer_errors import ModelYamlError, layer_error
from .legacy_paths import legacy_safe_globals
from .missing_plugin import record_plugin_distributions
from .parse_model_patch import RULES_NAME, RegistrationError, patched_parse_model, special_names
from .pruned_architecture import apply_pruned_architecture
from .registry import CHECKPOINT_CLASSES, PLUGIN_MODULES, PluginModule
from .stage_settings import apply_drop_path_rate, stage_settings
from .yaml_backbone_weights import install as install_yaml_backbone_weights
from .yaml_lookup import bundled_yaml, cfg_dir, check_min_ultralytics

_MARK = "__yolo_fasternet__"
_ORIGINAL = "__yolo_fasternet_original__"  # Ultralytics' own parse_model, kept on ours: every rewrite starts from it
# YAML name -> entry registered in this process: yolo-fasternet's table first, then other packages' modules.
_REGISTERED: dict[str, PluginModule] = {}
_CONFIG_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)
# Called before every model build; each returns whether it registered modules (the plugin API registers entry points
# that could not be read earlier).
BEFORE_BUILD: list = []


def is_registered() -> bool:
    """Whether ``ultralytics.nn.tasks.parse_model`` is already the plugin-aware one."""
    tasks = sys.modules.get("ultralytics.nn.tasks")
    return tasks is not None and getattr(tasks.parse_model, _MARK, False)


def _parse_model_with_context(scaled_parse_model, namespace: dict, version: str):
    """Wrap the recompiled parse_model: minimum version, per-scale stage settings, errors naming the bad layer."""

    @functools.wraps(scaled_parse_model)
    def parse_model(d, ch, verbose=True):
        if any([hook() for hook in BEFORE_BUILD]):  # modules were registered: the recompiled parse_model builds
            from ultralytics.nn import tasks

            return tasks.parse_model(d, ch, verbose)
        check_min_ultralytics(d, version)
        with model_activation(d), stage_settings(d) as staged:
            try:
                model, save = scaled_parse_model(staged, ch, verbose)
            except _CONFIG_ERRORS as e:
                if isinstance(e, ModelYamlError):
                    raise
                err = layer_error(e, scaled_parse_model.__code__, namespace)
                if err is None:
                    raise
                raise err from e
        apply_drop_path_rate(d, model)
        apply_pruned_architecture(d, model)  # a pruned checkpoint's YAML rebuilds the pruned widths
        record_plugin_distributions(model, registered_modules())
        return model, save

    setattr(parse_model, _MARK, True)
    return parse_model


def _yaml_model_load_with_bundled(original, guess_model_scale, ultralytics_root: Path, version: str):
    """Wrap yaml_model_load: bundled YAMLs by bare name (scale letter kept for the scale), clear not-found errors,
    and a YAML's ``min_ultralytics`` checked here too: before Ultralytics guesses the task from the head (an 8.3
    release guesses none for ``Segment26`` or ``SemanticSegment`` and fails without naming the release it needs)."""

    @functools.wraps(original)
    def yaml_model_load(path):
        bundled = bundled_yaml(path)
        if bundled is None:
            try:
                d = original(path)
            except FileNotFoundError as e:
                where = [Path.cwd() / str(path), ultralytics_root / "**", ultralytics_root.parent, cfg_dir()]
                raise FileNotFoundError(
                    f"model YAML '{path}' not found. Looked in: " + ", ".join(str(w) for w in where)
                ) from e
        else:
            d = original(bundled)
            d["scale"] = guess_model_scale(path)  # from the name the user gave: yolov8n-fasternet.yaml -> 'n'
            d["yaml_file"] = str(path)
        check_min_ultralytics(d, version)
        return d

    setattr(yaml_model_load, _MARK, True)
    return yaml_model_load


def _fuse_selecting_inference_form(original):
    """Wrap BaseModel.fuse: Ultralytics folds the BNs, then the plugin modules switch to their inference form."""

    @functools.wraps(original)
    def fuse(self, *args, **kwargs):
        fused = original(self, *args, **kwargs)
        select_inference_form(self)
        return fused

    setattr(fuse, _MARK, True)
    return fuse


def _rebind_everywhere(original, replacement) -> None:
    """Point every imported Ultralytics module that holds ``original`` (``from ... import``) at ``replacement``."""
    for name, module in list(sys.modules.items()):
        if name.startswith("ultralytics") and module is not None:
            for attr, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attr, replacement)


def registered_modules() -> tuple[PluginModule, ...]:
    """Every module registered in this process: yolo-fasternet's table first, then other packages' in order."""
    return tuple(_REGISTERED.values())


def registered_classes() -> tuple[type, ...]:
    """The classes of every module registered in this process."""
    return tuple(entry.cls for entry in _REGISTERED.values())


def supported_likes() -> frozenset[str]:
    """The built-in class names ``like`` accepts: every class the installed ``parse_model`` treats specially."""
    from ultralytics.nn import tasks

    return special_names(original_parse_model(tasks), tasks.__dict__)


def register() -> None:
    """Make yolo-fasternet's own modules usable from model YAMLs in this process. Safe to call any number of times."""
    if not is_registered():
        _install(PLUGIN_MODULES)


def register_modules(entries) -> None:
    """Add ``PluginModule`` entries to this process's registry; all or nothing, and already registered ones are kept.

    ``parse_model`` is recompiled from Ultralytics' original source with the whole table, so registering late (after
    models were built, after other plugins) never stacks one rewrite on another. A refused entry raises a one-line
    ``RegistrationError`` naming the class, its ``like`` and the reason, and leaves the registry as it was.
    """
    register()
    from ultralytics.nn import tasks

    table, likes = dict(_REGISTERED), supported_likes()
    added = False
    for entry in entries:
        reason = _refusal(entry, table, tasks.__dict__, likes)
        if reason:
            raise RegistrationError(f"cannot register {_class_path(entry.cls)} as {kind_label(entry)}: {reason}")
        known = table.get(entry.cls.__name__)
        if known is None or known.cls is not entry.cls:
            table[entry.cls.__name__] = entry
            added = True
    if added:
        _install(table.values())


def _class_path(cls) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)}"


def kind_label(entry: PluginModule) -> str:
    """How errors name the way a module is sized: ``like 'Conv'``, ``kind 'fuse'``, ``rule Block.yolo_channels``."""
    if entry.channels is not None:
        return f"rule {rule_name(entry.channels)}"
    return f"kind '{entry.like}'" if entry.like in KINDS else f"like '{entry.like}'"


def _refusal(entry: PluginModule, table: dict, namespace: dict, likes: frozenset[str]) -> str | None:
    """Why ``entry`` cannot join ``table`` (name clash, unknown like, not a module), or None if it can."""
    cls, like = entry.cls, entry.like
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return "not a torch.nn.Module subclass"
    if entry.channels is not None and not callable(entry.channels):
        return f"the channel rule {entry.channels!r:.80} is not callable"
    if entry.channels is None and like not in likes and like not in KINDS:
        return (
            f"unknown like or kind; the named kinds are {', '.join(KINDS)}; the installed Ultralytics' built-ins are: "
            f"{', '.join(sorted(likes))}"
        )
    known = table.get(cls.__name__)
    if known is not None:
        if known.cls is cls:
            same = (known.like, known.channels) == (like, entry.channels)
            return None if same else f"already registered as {kind_label(known)}"
        if _class_path(known.cls) == _class_path(cls):  # the same class defined again (a notebook cell run twice)
            return None
        return f"name clash with {_class_path(known.cls)}, registered by {known.origin}; refused, not shadowed"
    if namespace.get(cls.__name__) is not None:
        return f"name clash with Ultralytics' own '{cls.__name__}'; refused, not shadowed"
    return None


def original_parse_model(tasks):
    """Ultralytics' own parse_model, also after registration replaced it (kept on our wrapper)."""
    return getattr(tasks.parse_model, _ORIGINAL, tasks.parse_model)


def _checkpoint_classes(entries) -> list:
    """Classes a pickled model can reference: each plugin class and every nn.Module class defined in its module."""
    classes = set(CHECKPOINT_CLASSES)
    for entry in entries:
        module = sys.modules.get(entry.cls.__module__)
        classes.add(entry.cls)
        for value in vars(module).values() if module is not None else ():
            if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == module.__name__:
                classes.add(value)
    return sorted(classes, key=_class_path)


def _install(entries) -> None:
    """Switch ``ultralytics.nn.tasks`` to exactly these plugin entries; everything is built before anything changes."""
    import ultralytics
    from ultralytics.nn import tasks

    entries = list(entries)
    version = ultralytics.__version__
    namespace = tasks.__dict__
    for entry in entries:
        existing = namespace.get(entry.cls.__name__)
        if existing is not None and existing is not entry.cls and entry.cls.__name__ not in _REGISTERED:
            raise RegistrationError(
                f"Ultralytics {version} already defines '{entry.cls.__name__}' ({existing!r}); "
                "yolo-fasternet will not shadow it"
            )
        if rule_for(entry.like, entry.channels) is None and not isinstance(namespace.get(entry.like), type):
            raise RegistrationError(f"Ultralytics {version} has no '{entry.like}' in ultralytics.nn.tasks")
    plugins_by_like: dict[str, list[str]] = {}
    rules: dict[type, AppliedRule] = {}
    for entry in entries:
        rule = rule_for(entry.like, entry.channels)
        if rule is None:
            plugins_by_like.setdefault(entry.like, []).append(entry.cls.__name__)
        else:
            rules[entry.cls] = AppliedRule(entry.cls, rule)

    # Build everything first, then switch: a failure above or here leaves Ultralytics exactly as it was.
    original = original_parse_model(tasks)
    scaled = patched_parse_model(original, tasks, plugins_by_like, version, with_rules=bool(rules))
    parse_model = _parse_model_with_context(scaled, namespace, version)
    setattr(parse_model, _ORIGINAL, original)
    first_time = not is_registered()
    if first_time:
        fuse = _fuse_selecting_inference_form(tasks.BaseModel.fuse)
        yaml_model_load = _yaml_model_load_with_bundled(
            tasks.yaml_model_load, tasks.guess_model_scale, Path(ultralytics.__file__).parent, version
        )

    install_yaml_backbone_weights(tasks)  # idempotent; checks before it changes anything, so it goes first
    namespace[RULES_NAME] = rules
    for entry in entries:
        namespace[entry.cls.__name__] = entry.cls
    if first_time:
        _rebind_everywhere(tasks.yaml_model_load, yaml_model_load)
        tasks.BaseModel.fuse = fuse
        from ultralytics.utils import checks

        _rebind_everywhere(checks.check_requirements, naming_the_extra(checks.check_requirements))
        # The exporter is imported later (Model.export imports it), and must not be while ultralytics.nn.tasks is.
        call_after_import("ultralytics.engine.exporter", lambda module: wrap_exporter(module, registered_classes))
    _rebind_everywhere(tasks.parse_model, parse_model)
    _REGISTERED.clear()
    _REGISTERED.update((entry.cls.__name__, entry) for entry in entries)
    if hasattr(torch.serialization, "add_safe_globals"):
        classes = _checkpoint_classes(entries)
        torch.serialization.add_safe_globals([*classes, *legacy_safe_globals(classes)])
