"""Network modules: FasterNet's operator, block, stem and merging layers, the CSP blocks built on them, SAConv, SPConv
and the PartialNet modules (PATConv, PartialNet block).

Each class states its YAML arguments in its docstring; ``integration.registry`` lists which built-in Ultralytics
module each one scales like.
"""

from .activation import make_activation
from .c2f_faster import C2f_Faster
from .c2f_spconv import C2f_SPConv, SPConvBottleneck
from .c3k2_faster import C3k2_Faster, C3k_Faster
from .c3k2_spconv import C3k2_SPConv, C3k_SPConv
from .fasternet_block import DropPath, FasterNetBlock
from .inference_layout import ChannelsLastInference
from .partialnet_block import PartialNetBlock, SpatialAttentionTail
from .patch_layers import PatchEmbed, PatchMerging
from .patconv import PATConv, StyleChannelAttention
from .pconv import PConv
from .rpe_attention import LayerNorm2d, RPEAttention
from .saconv import SAConv
from .spconv import SPConv
from .timm_backbone import FeatureIndex, TimmBackbone

__all__ = [
    "C2f_Faster",
    "C2f_SPConv",
    "C3k2_Faster",
    "C3k2_SPConv",
    "C3k_Faster",
    "C3k_SPConv",
    "ChannelsLastInference",
    "DropPath",
    "FasterNetBlock",
    "FeatureIndex",
    "LayerNorm2d",
    "PATConv",
    "PConv",
    "PatchEmbed",
    "PartialNetBlock",
    "PatchMerging",
    "RPEAttention",
    "SAConv",
    "SPConv",
    "SPConvBottleneck",
    "SpatialAttentionTail",
    "StyleChannelAttention",
    "TimmBackbone",
    "make_activation",
]
