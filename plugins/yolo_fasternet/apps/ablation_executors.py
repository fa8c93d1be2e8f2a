"""The ablation's executors now live in ``yolo_fasternet.apps.ablation.executors``; this name stays for old imports."""

from .ablation.executors import LocalExecutor, RayExecutor, RunFailedError, lock_run_folder  # noqa: F401
