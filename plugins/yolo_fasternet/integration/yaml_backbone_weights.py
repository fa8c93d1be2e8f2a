"""``backbone_weights:`` in a model YAML: FasterNet ImageNet weights, loaded whenever Ultralytics builds that YAML.

    backbone_weights: fasternet_t0                  # a known name (weights/manifest.yaml: file there, else timm's hub)
    backbone_weights: weights/my-fasternet.pth      # a file; a relative path is read next to the YAML first
    backbone_weights: { n: fasternet_t0, s: fasternet_t1, m: fasternet_t2 }   # per scale; other scales: none

So ``yolo train model=<that YAML>`` with the stock CLI trains from ImageNet weights, in every process that builds
the model: the CLI itself, a YAML-rebuilding DDP worker (Ultralytics 8.3.0-8.4.135), and the trainer whose built model
is pickled to the DDP workers (8.4.140+). Trainer.get_model builds from the YAML, then loads ``weights=``/
``pretrained=`` if given: the ImageNet weights come first and the user's weights override them.

Where it hooks: Ultralytics' detection-family constructors run ``parse_model``, a stride probe, then
``initialize_weights(self)``, which sets every BatchNorm's eps to 1e-3, while the loaded FasterNet BatchNorms need
1e-5 (``load_backbone_weights`` sets it). So ``install(tasks)`` rebinds the name ``initialize_weights`` in
``ultralytics.nn.tasks`` to Ultralytics' own function followed by the load; classification models never call it, so
``ClassificationModel._from_yaml`` is followed by the load the same way. Unpickling a checkpoint constructs nothing:
a trained ``best.pt`` never reloads ImageNet weights. (Fine-tuning from it with ``yolo train model=best.pt`` rebuilds
from its stored YAML, so the ImageNet file is read again and then overwritten by the checkpoint's weights.)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from ..pretrained import BackboneWeightsError, load_backbone_weights, read_backbone_checkpoint, weights_dir
from .parse_model_patch import RegistrationError

KEY = "backbone_weights"
_MARK = "__yolo_fasternet_backbone_weights__"


def _yaml_name(d: dict) -> str:
    return str(d.get("yaml_file") or "model YAML")


def weights_for_scale(d: dict) -> str | None:
    """The weights a model YAML names for the scale being built, or None (no key, or a scale the mapping leaves out).

    The scale is the one ``parse_model`` builds: ``d["scale"]`` (from the model name), else the first of ``scales``.

    Raises:
        BackboneWeightsError: If the value is neither a name/path nor a mapping of scales to names/paths, or the
            mapping names a scale the YAML's ``scales:`` does not define.
    """
    value = d.get(KEY)
    if isinstance(value, Mapping):
        scales = list(d.get("scales") or {})
        unknown = [key for key in value if key not in scales]
        if unknown:  # a typo ({q: ...}) would otherwise train from random weights without a word
            raise BackboneWeightsError(
                f"{_yaml_name(d)}: {KEY}: {unknown[0]!r} is not a scale of this YAML "
                f"(its scales: {', '.join(map(str, scales)) or 'none'})"
            )
        scale = d.get("scale") or next(iter(scales), None)
        if scale not in value or value[scale] is None:
            from ultralytics.utils import LOGGER

            LOGGER.warning(f"{_yaml_name(d)}: {KEY} names no weights for scale '{scale}'; the backbone starts random")
            return None
        value = value[scale]
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise BackboneWeightsError(
            f"{_yaml_name(d)}: {KEY}: {value!r} is not a checkpoint name, a file, or a mapping of scales to them"
        )
    return str(value).strip()


def _next_to_yaml(source: str, d: dict) -> str:
    """A relative path as the file next to the YAML when that exists; anything else unchanged."""
    yaml_file = d.get("yaml_file")
    if yaml_file and not Path(source).is_absolute():
        beside = Path(yaml_file).expanduser().parent / source
        if beside.is_file():
            return str(beside)
    return source


def load_yaml_backbone_weights(model) -> None:
    """Load the weights ``model.yaml`` names into ``model`` (all or nothing); nothing to do without the key.

    Raises:
        BackboneWeightsError: A one-line message naming the YAML, then the file at fault and, for a missing file,
            where to place it (``BackboneWeightsNotFoundError``).
    """
    d = getattr(model, "yaml", None)
    if not isinstance(d, dict) or d.get(KEY) is None:
        return
    source = weights_for_scale(d)
    if source is None:
        return
    try:
        report = load_backbone_weights(model, read_backbone_checkpoint(_next_to_yaml(source, d)))
    except BackboneWeightsError as e:
        where = f" (a relative path is read next to the YAML, then from the working directory and {weights_dir()})"
        hint = where if isinstance(e, FileNotFoundError) and Path(source).suffix else ""
        raise type(e)(f"{_yaml_name(d)}: {KEY}: {e}{hint}") from None
    from ultralytics.utils import LOGGER

    LOGGER.info(f"{_yaml_name(d)}: {report.summary()}")


def _then_load(original, model_of):
    """``original`` followed by loading the YAML's backbone weights into ``model_of(*args)``."""

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        load_yaml_backbone_weights(model_of(*args))
        return result

    setattr(wrapper, _MARK, True)
    return wrapper


def install(tasks) -> None:
    """Make every model construction in ``ultralytics.nn.tasks`` honour the ``backbone_weights:`` key. Idempotent.

    Raises:
        RegistrationError: If this Ultralytics has no ``initialize_weights`` in ``tasks`` or no
            ``ClassificationModel._from_yaml`` (checked before anything changes).
    """
    init, from_yaml = getattr(tasks, "initialize_weights", None), getattr(tasks.ClassificationModel, "_from_yaml", None)
    if not callable(init) or not callable(from_yaml):
        raise RegistrationError(
            "this Ultralytics builds models without tasks.initialize_weights or ClassificationModel._from_yaml; "
            f"the '{KEY}:' YAML key cannot be honoured"
        )
    if not getattr(init, _MARK, False):
        tasks.initialize_weights = _then_load(init, lambda model: model)
    if not getattr(from_yaml, _MARK, False):
        tasks.ClassificationModel._from_yaml = _then_load(from_yaml, lambda self, *_: self)
