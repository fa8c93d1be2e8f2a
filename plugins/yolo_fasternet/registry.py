"""The table of plugin modules: each one, the Ultralytics built-in whose YAML scaling rules it follows.

Registration reads only this table. ``like`` names a class in ``ultralytics.nn.tasks``: wherever ``parse_model``
lists that class in a scaling set (``base_modules``, ``repeat_modules``) or tests ``m is <like>``, the plugin class
is treated the same way, so width/depth scaling at every scale is identical to the built-in's.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .c2f_faster import C2f_Faster
from .c3k2_faster import C3k2_Faster, C3k_Faster
from .fasternet_block import DropPath, FasterNetBlock
from .patch_layers import PatchEmbed, PatchMerging
from .pconv import PConv
from .saconv import SAConv

# Ultralytics releases this table was checked against (the test suite runs on both ends of the range).
SUPPORTED_ULTRALYTICS = ">=8.3.0,<8.5"
CHECKED_ULTRALYTICS = ("8.3.0", "8.4.190")


@dataclass(frozen=True)
class PluginModule:
    """One YAML-visible module and the built-in Ultralytics class it scales like."""

    cls: type[nn.Module]
    like: str


PLUGIN_MODULES = (
    PluginModule(PConv, like="Conv"),
    PluginModule(FasterNetBlock, like="Conv"),
    PluginModule(PatchEmbed, like="Conv"),
    PluginModule(PatchMerging, like="Conv"),
    PluginModule(C2f_Faster, like="C2f"),
    PluginModule(C3k2_Faster, like="C3k2"),
    PluginModule(C3k_Faster, like="C3"),
    PluginModule(SAConv, like="Conv"),
)

# Every class a pickled plugin model can reference; allow-listed for ULTRALYTICS_SAFE_LOAD=1 loading.
CHECKPOINT_CLASSES = tuple(entry.cls for entry in PLUGIN_MODULES) + (DropPath,)
