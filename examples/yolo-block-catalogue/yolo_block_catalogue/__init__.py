"""Example yolo-fasternet plugin modules, one per kind; yolo-fasternet finds them through their entry points."""

from .attention import CBAM, SE
from .bifpn import BiFPNAdd, BiFPNConcat
from .gsconv import GSConv, VoVGSCSP
from .head import LiteDetect
from .simam import SimAM
from .spdconv import SPDConv
from .upsample import LearnedUpsample

__all__ = [
    "CBAM",
    "SE",
    "BiFPNAdd",
    "BiFPNConcat",
    "GSConv",
    "LearnedUpsample",
    "LiteDetect",
    "SPDConv",
    "SimAM",
    "VoVGSCSP",
]
