"""yolo-fasternet: FasterNet (CVPR 2023) modules for Ultralytics YOLO model YAMLs.

Importing this package registers every module into the installed Ultralytics (see ``integration.registration``), then
every module other installed packages declare under the entry-point group ``yolo_fasternet.modules``; any package's
own block joins with ``register_module(cls, like="C2f")``, a named kind (``like="attention"``) or its own channel rule
(``channels=rule``; see ``integration.plugin_api`` and ``integration.channel_rules``).
Installed with pip, the package also registers itself in every Python process right after ``ultralytics.nn.tasks``
is imported (``yolo_fasternet.pth``), so the stock ``yolo`` command, DDP workers and checkpoint loading need no
explicit import.

Layout, by concern:

- ``nn/``: the network modules (PConv, FasterNet block, patch layers, C2f/C3k2-Faster, SAConv), each with its YAML
  arguments in its docstring and its inference form as ``switch_to_deploy()``;
- ``integration/``: how they plug into Ultralytics (module table, registration, ``parse_model`` patch, YAML lookup,
  errors by layer, the ``fuse()`` hook, old checkpoint class paths);
- ``pretrained/``: FasterNet ImageNet checkpoints (variants, key layouts, files, loading, fine-tuning callbacks);
- ``apps/``: the commands (train; detect, with its machinery in ``detection/``: runtimes, export cache, sources, live
  capture; ablate, with ``ablation/``; zoo, weights, synthetic data), behind one console command, ``yolo-fasternet``
  (``cli.py``).

Importing it first checks the installed Python, torch, torchvision and Ultralytics against the supported range
(``supported``) and refuses an unsupported one in one line, before anything else is imported.
"""

from .supported import check_environment

check_environment()

from .integration.channel_rules import KINDS, LayerInputs
from .integration.export_failures import ExportFormError
from .integration.layer_errors import ModelYamlError
from .integration.legacy_paths import install_legacy_module_aliases
from .integration.parse_model_patch import RegistrationError
from .integration.plugin_api import register_entry_point_modules, register_module
from .integration.registration import is_registered, register, registered_modules, supported_likes
from .integration.yaml_lookup import bundled_yaml, cfg_dir
from .nn import C2f_Faster, C3k2_Faster, C3k_Faster, FasterNetBlock, PatchEmbed, PatchMerging, PConv, SAConv
from .nn.inference_layout import is_exporting

__version__ = "0.2.0"
__all__ = [
    "C2f_Faster",
    "C3k2_Faster",
    "C3k_Faster",
    "ExportFormError",
    "FasterNetBlock",
    "KINDS",
    "LayerInputs",
    "ModelYamlError",
    "PConv",
    "PatchEmbed",
    "PatchMerging",
    "RegistrationError",
    "SAConv",
    "bundled_yaml",
    "cfg_dir",
    "is_exporting",
    "is_registered",
    "register",
    "register_module",
    "registered_modules",
    "supported_likes",
]

install_legacy_module_aliases()
register()
register_entry_point_modules()  # other packages' modules (entry-point group yolo_fasternet.modules)
