"""Register the plugin modules into an unmodified, installed Ultralytics (idempotent, all-or-nothing).

What ``register()`` changes in ``ultralytics.nn.tasks`` (and in every already-imported Ultralytics module that
imported the same functions by name):

- the plugin classes become YAML names (``globals()[name]`` is how ``parse_model`` resolves a row);
- ``parse_model`` is Ultralytics' own function, recompiled so each plugin scales like its built-in counterpart
  (see ``parse_model_patch``), wrapped to apply ``fasternet_act`` and to report bad rows by layer;
- ``BaseModel.fuse`` (what prediction, validation of a checkpoint and export call) also selects the plugin
  modules' inference form (see ``inference_form``);
- ``yaml_model_load`` also finds the bundled ``cfg/`` YAMLs by bare name and lists where it looked when it fails;
- the plugin classes are allow-listed for ``ULTRALYTICS_SAFE_LOAD=1`` checkpoint loading.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch

from .activation import model_activation
from .inference_form import select_inference_form
from .layer_errors import ModelYamlError, layer_error
from .model_yamls import bundled_yaml, cfg_dir, check_min_ultralytics
from .parse_model_patch import RegistrationError, patched_parse_model
from .registry import CHECKPOINT_CLASSES, PLUGIN_MODULES

_MARK = "__yolo_fasternet__"
_CONFIG_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def is_registered() -> bool:
    """Whether ``ultralytics.nn.tasks.parse_model`` is already the plugin-aware one."""
    tasks = sys.modules.get("ultralytics.nn.tasks")
    return tasks is not None and getattr(tasks.parse_model, _MARK, False)


def _parse_model_with_context(scaled_parse_model, namespace: dict, version: str):
    """Wrap the recompiled parse_model: minimum version, per-scale FasterNet activation, errors naming the bad layer."""

    @functools.wraps(scaled_parse_model)
    def parse_model(d, ch, verbose=True):
        check_min_ultralytics(d, version)
        with model_activation(d):
            try:
                return scaled_parse_model(d, ch, verbose)
            except _CONFIG_ERRORS as e:
                if isinstance(e, ModelYamlError):
                    raise
                err = layer_error(e, scaled_parse_model.__code__, namespace)
                if err is None:
                    raise
                raise err from e

    setattr(parse_model, _MARK, True)
    return parse_model


def _yaml_model_load_with_bundled(original, guess_model_scale, ultralytics_root: Path):
    """Wrap yaml_model_load: bundled YAMLs by bare name (scale letter kept for the scale), clear not-found errors."""

    @functools.wraps(original)
    def yaml_model_load(path):
        bundled = bundled_yaml(path)
        if bundled is None:
            try:
                return original(path)
            except FileNotFoundError as e:
                where = [Path.cwd() / str(path), ultralytics_root / "**", ultralytics_root.parent, cfg_dir()]
                raise FileNotFoundError(
                    f"model YAML '{path}' not found. Looked in: " + ", ".join(str(w) for w in where)
                ) from e
        d = original(bundled)
        d["scale"] = guess_model_scale(path)  # from the name the user gave: yolov8n-fasternet.yaml -> 'n'
        d["yaml_file"] = str(path)
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


def register() -> None:
    """Make the plugin modules usable from model YAMLs in this process. Safe to call any number of times."""
    if is_registered():
        return
    import ultralytics
    from ultralytics.nn import tasks

    version = ultralytics.__version__
    namespace = tasks.__dict__
    for entry in PLUGIN_MODULES:
        existing = namespace.get(entry.cls.__name__)
        if existing is not None and existing is not entry.cls:
            raise RegistrationError(
                f"Ultralytics {version} already defines '{entry.cls.__name__}' ({existing!r}); "
                "yolo-fasternet will not shadow it"
            )
        if not isinstance(namespace.get(entry.like), type):
            raise RegistrationError(f"Ultralytics {version} has no '{entry.like}' in ultralytics.nn.tasks")
    plugins_by_like: dict[str, list[str]] = {}
    for entry in PLUGIN_MODULES:
        plugins_by_like.setdefault(entry.like, []).append(entry.cls.__name__)

    # Build everything first, then switch: a failure above or here leaves Ultralytics exactly as it was.
    scaled = patched_parse_model(tasks.parse_model, tasks, plugins_by_like, version)
    parse_model = _parse_model_with_context(scaled, namespace, version)
    fuse = _fuse_selecting_inference_form(tasks.BaseModel.fuse)
    yaml_model_load = _yaml_model_load_with_bundled(
        tasks.yaml_model_load, tasks.guess_model_scale, Path(ultralytics.__file__).parent
    )

    for entry in PLUGIN_MODULES:
        namespace[entry.cls.__name__] = entry.cls
    _rebind_everywhere(tasks.yaml_model_load, yaml_model_load)
    _rebind_everywhere(tasks.parse_model, parse_model)
    tasks.BaseModel.fuse = fuse
    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals(list(CHECKPOINT_CLASSES))
