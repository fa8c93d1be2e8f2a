"""Network modules: FasterNet's operator, block, stem and merging layers, the CSP blocks built on them, and SAConv.

Each class states its YAML arguments in its docstring; ``integration.registry`` lists which built-in Ultralytics
module each one scales like.
"""

from .activation import make_activation
from .c2f_faster import C2f_Faster
from .c3k2_faster import C3k2_Faster, C3k_Faster
from .fasternet_block import DropPath, FasterNetBlock
from .inference_layout import ChannelsLastInference
from .patch_layers import PatchEmbed, PatchMerging
from .pconv import PConv
from .saconv import SAConv
from .timm_backbone import FeatureIndex, TimmBackbone

__all__ = [
    "C2f_Faster",
    "C3k2_Faster",
    "C3k_Faster",
    "ChannelsLastInference",
    "DropPath",
    "FasterNetBlock",
    "FeatureIndex",
    "PConv",
    "PatchEmbed",
    "PatchMerging",
    "SAConv",
    "TimmBackbone",
    "make_activation",
]
