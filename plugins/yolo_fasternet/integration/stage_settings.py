"""Per-scale settings of a backbone's stage blocks, read from top-level model-YAML keys while the model is built.

A backbone family's variants differ in more than width and depth multiples: PartialNet-T2 has depths 2-2-6-4 where
T0/T1 have 1-2-8-2, only T1 ends its MLPs with PAT_sp, and the official configs raise stochastic depth per variant.
Three keys, each a single value or a mapping from scale letter to value (like ``fasternet_act``), express that:

- ``stage_depths``: the repeats of the backbone's stage-block rows (``FasterNetBlock``, ``PartialNetBlock``), in
  row order, replacing the rows' own repeats before Ultralytics' depth multiple applies (as for any row);
- ``drop_path_rate``: stochastic depth rising linearly from 0 to this rate over every block of those rows, in order
  (``torch.linspace(0, rate, total)``, as FasterNet's and PartialNet's reference code); a row that gives
  ``drop_path`` itself keeps its value (its blocks still count in the schedule);
- ``spatial_mlp``: whether ``PartialNetBlock`` rows that leave ``spatial_mlp`` out end their MLP with PAT_sp.

A key left out changes nothing. Bad values are one-line ``ModelYamlError``s (a ``ValueError``) naming the key
and the scale.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from ..nn.fasternet_block import FasterNetBlock
from ..nn.partialnet_block import PartialNetBlock, spatial_mlp_default
from .layer_errors import ModelYamlError

STAGE_BLOCKS = (FasterNetBlock, PartialNetBlock)
STAGE_BLOCK_NAMES = tuple(cls.__name__ for cls in STAGE_BLOCKS)


def _scale(model_yaml: dict) -> str | None:
    """The scale the model is built at, as ``parse_model`` picks it (the first scale when none is given)."""
    return model_yaml.get("scale") or next(iter(model_yaml.get("scales") or {}), None)


def per_scale(model_yaml: dict, key: str):
    """The value of ``key`` for the model's scale: the key itself, or its entry for the scale; None if absent."""
    spec = model_yaml.get(key)
    if not isinstance(spec, dict):
        return spec
    scale = _scale(model_yaml)
    if scale not in spec:
        raise ModelYamlError(f"model YAML key {key} has no entry for scale {scale!r}; it lists {sorted(spec)}")
    return spec[scale]


def _stage_rows(model_yaml: dict) -> list[list]:
    """The backbone rows that build stage blocks, in order."""
    return [row for row in model_yaml.get("backbone") or [] if len(row) > 2 and row[2] in STAGE_BLOCK_NAMES]


def with_stage_depths(model_yaml: dict) -> dict:
    """``model_yaml`` with its stage rows' repeats set from ``stage_depths`` (a copy; the input is not changed)."""
    depths = per_scale(model_yaml, "stage_depths")
    if depths is None:
        return model_yaml
    rows = _stage_rows(model_yaml)
    if not isinstance(depths, (list, tuple)) or not all(isinstance(n, int) and n > 0 for n in depths):
        raise ModelYamlError(f"model YAML key stage_depths must list positive integers, got {depths!r}")
    if len(depths) != len(rows):
        raise ModelYamlError(
            f"model YAML key stage_depths lists {len(depths)} depths for scale {_scale(model_yaml)!r}, but the "
            f"backbone has {len(rows)} {'/'.join(STAGE_BLOCK_NAMES)} rows"
        )
    model_yaml = copy.deepcopy(model_yaml)
    for row, n in zip(_stage_rows(model_yaml), depths):
        row[1] = n
    return model_yaml


def apply_drop_path_rate(model_yaml: dict, layers: nn.Module) -> None:
    """Give the built backbone's stage blocks the linear ``drop_path_rate`` schedule (blocks without their own)."""
    rate = per_scale(model_yaml, "drop_path_rate")
    if rate is None:
        return
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ModelYamlError(f"model YAML key drop_path_rate must be a number in [0, 1), got {rate!r}")
    blocks = [
        block
        for layer in list(layers)[: len(model_yaml.get("backbone") or [])]
        for block in (layer if isinstance(layer, nn.Sequential) else [layer])
        if isinstance(block, STAGE_BLOCKS)
    ]
    for block, p in zip(blocks, torch.linspace(0, rate, len(blocks)).tolist()):
        if not getattr(block, "drop_path_given", False):
            block.drop_path.p = p


@contextlib.contextmanager
def stage_settings(model_yaml: dict):
    """While building: yields the YAML with ``stage_depths`` applied, with the ``spatial_mlp`` default set."""
    spatial = per_scale(model_yaml, "spatial_mlp")
    if spatial is not None and not isinstance(spatial, bool):
        raise ModelYamlError(f"model YAML key spatial_mlp must be true or false, got {spatial!r}")
    model_yaml = with_stage_depths(model_yaml)
    with spatial_mlp_default(bool(spatial)) if spatial is not None else contextlib.nullcontext():
        yield model_yaml
