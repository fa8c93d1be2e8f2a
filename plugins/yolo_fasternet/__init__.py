"""yolo-fasternet: FasterNet (CVPR 2023) modules for Ultralytics YOLO model YAMLs.

Importing this package registers every module into the installed Ultralytics (see ``registration``). Installed
with pip, the package also registers itself in every Python process right after ``ultralytics.nn.tasks`` is
imported (``yolo_fasternet.pth``), so the stock ``yolo`` command, DDP workers and checkpoint loading need no
explicit import.
"""

from .c2f_faster import C2f_Faster
from .c3k2_faster import C3k2_Faster, C3k_Faster
from .fasternet_block import FasterNetBlock
from .layer_errors import ModelYamlError
from .model_yamls import bundled_yaml, cfg_dir
from .parse_model_patch import RegistrationError
from .patch_layers import PatchEmbed, PatchMerging
from .pconv import PConv
from .registration import is_registered, register
from .saconv import SAConv

__version__ = "0.1.0"
__all__ = [
    "C2f_Faster",
    "C3k2_Faster",
    "C3k_Faster",
    "FasterNetBlock",
    "ModelYamlError",
    "PConv",
    "PatchEmbed",
    "PatchMerging",
    "RegistrationError",
    "SAConv",
    "bundled_yaml",
    "cfg_dir",
    "is_registered",
    "register",
]

register()
