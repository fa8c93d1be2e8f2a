"""Build hook: an editable install gets only the start-up hook in site-packages, not a copy of cfg/ and weights/.

The wheel's ``force-include`` (pyproject.toml) puts ``cfg/`` and ``weights/manifest.yaml`` inside the installed
package. Hatchling applies the same table to editable installs, where it would leave a ``site-packages/yolo_fasternet/``
folder of data files without ``__init__.py``: a directory that imports as an empty namespace package wherever the
checkout's ``plugins/`` is not on the path. Editable installs use the checkout's ``cfg/`` (``yaml_lookup``), so they
need only the two start-up files.
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

STARTUP_FILES = {
    "plugins/yolo_fasternet_autoload.py": "yolo_fasternet_autoload.py",
    "plugins/yolo_fasternet.pth": "yolo_fasternet.pth",
}


class EditableStartupFilesOnly(BuildHookInterface):
    """For ``pip install -e .``: force-include the start-up hook and nothing else."""

    def initialize(self, version: str, build_data: dict) -> None:
        if version == "editable":
            build_data["force_include_editable"] = dict(STARTUP_FILES)
