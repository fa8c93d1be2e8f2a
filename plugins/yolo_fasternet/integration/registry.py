"""The table of plugin modules: each one, the Ultralytics built-in whose YAML scaling rules it follows.

These are the first entries of the process's module registry; modules of other packages join it at run time through
``yolo_fasternet.register_module`` or the ``yolo_fasternet.modules`` entry points (``integration.plugin_api``).
``like`` names a class in ``ultralytics.nn.tasks``: wherever ``parse_model`` lists that class in a scaling set
(``base_modules``, ``repeat_modules``) or tests ``m is <like>``, the plugin class is treated the same way, so
width/depth scaling at every scale is identical to the built-in's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..nn.c2f_faster import C2f_Faster
from ..nn.c2f_spconv import C2f_SPConv
from ..nn.c3k2_faster import C3k2_Faster, C3k_Faster
from ..nn.c3k2_spconv import C3k2_SPConv, C3k_SPConv
from ..nn.fasternet_block import DropPath, FasterNetBlock
from ..nn.partialnet_block import PartialNetBlock
from ..nn.patch_layers import PatchEmbed, PatchMerging
from ..nn.patconv import PATConv
from ..nn.pconv import PConv
from ..nn.rpe_attention import LayerNorm2d, RPEAttention
from ..nn.saconv import SAConv
from ..nn.spconv import SPConv
from ..nn.timm_backbone import FeatureIndex, TimmBackbone

# Ultralytics releases this table was checked against (the test suite runs on both ends of the range).
SUPPORTED_ULTRALYTICS = ">=8.3.0,<8.5"
CHECKED_ULTRALYTICS = ("8.3.0", "8.4.190")


@dataclass(frozen=True)
class PluginModule:
    """One YAML-visible module, how parse_model sizes it, and the distribution that ships it.

    ``like`` is a built-in class name (the module rides that class's branch of ``parse_model``) or a named kind
    (``channel_rules.KINDS``); ``channels``, when given, is the module's own channel rule and ``like`` is ''.
    """

    cls: type[nn.Module]
    like: str
    origin: str = "yolo-fasternet"
    channels: Callable | None = None


PLUGIN_MODULES = (
    PluginModule(PConv, like="Conv"),
    PluginModule(FasterNetBlock, like="Conv"),
    PluginModule(PatchEmbed, like="Conv"),
    PluginModule(PatchMerging, like="Conv"),
    PluginModule(C2f_Faster, like="C2f"),
    PluginModule(C3k2_Faster, like="C3k2"),
    PluginModule(C3k_Faster, like="C3"),
    PluginModule(SAConv, like="Conv"),
    PluginModule(SPConv, like="Conv"),
    PluginModule(C2f_SPConv, like="C2f"),
    PluginModule(C3k2_SPConv, like="C3k2"),
    PluginModule(C3k_SPConv, like="C3"),
    PluginModule(PATConv, like="Conv"),
    PluginModule(PartialNetBlock, like="Conv"),
    # HGStem's rule (c2 = 2nd YAML arg, unscaled; args (c1, arg0, arg1, ...)) is the TorchVision/Index bookkeeping,
    # and unlike TorchVision it exists in 8.3.0 too
    PluginModule(TimmBackbone, like="HGStem"),
    PluginModule(FeatureIndex, like="HGStem"),
)

# Every class a pickled plugin model can reference; allow-listed for ULTRALYTICS_SAFE_LOAD=1 loading.
CHECKPOINT_CLASSES = tuple(entry.cls for entry in PLUGIN_MODULES) + (DropPath, RPEAttention, LayerNorm2d)
