"""Test settings: offline Ultralytics, a private config dir, CPU, and helpers for fresh-process checks."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Before anything imports Ultralytics: no network, no pip, settings in a throwaway directory.
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "False"
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-fasternet-cfg-"))
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


def pytest_configure(config):
    config.addinivalue_line("markers", "registration: registration and YAML tests (also run on the oldest Ultralytics)")
    config.addinivalue_line("markers", "slow: trains or exports a model (tens of seconds)")


@pytest.fixture
def coco8_yaml() -> Path:
    """The shared COCO8 subset; skipped where the checkout has no ../shared beside it."""
    path = SHARED_DATASETS / "coco8" / "coco8.yaml"
    if not path.is_file():
        pytest.skip(f"shared dataset not found: {path}")
    return path


def randomize_batchnorm(module):
    """Give every BatchNorm non-trivial statistics and affine parameters, so fusing and loading are really exercised."""
    from torch import nn

    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return module


def run_checked(argv: list[str], cwd: Path | None = None, env: dict | None = None, timeout: int = 600):
    """Run ``argv`` in a fresh process (this environment plus ``env``); return it, or raise with its output."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def run_python(code: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600):
    """Run ``code`` in a fresh interpreter (the same venv) and return the completed process; raise with its output."""
    return run_checked([sys.executable, "-c", code], cwd=cwd, env=env, timeout=timeout)
