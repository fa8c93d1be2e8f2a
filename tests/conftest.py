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
# ../shared/datasets beside the checkout; YOLO_FASTERNET_DATASETS names another folder of the same layout (the CI legs'
# view of it, where Ultralytics writes label caches in the leg's own numpy format: .ci/leg)
SHARED_DATASETS = Path(os.environ.get("YOLO_FASTERNET_DATASETS") or REPO.parent / "shared" / "datasets")


def pytest_configure(config):
    config.addinivalue_line("markers", "registration: registration and YAML tests (also run by both CI legs, .ci/leg)")
    config.addinivalue_line("markers", "range: stock CLI, checkpoint reload, version check (also run by both CI legs)")
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


def nontrivial_outputs(model):
    """Make every part of a model's output worth comparing: random BatchNorm statistics, and class logits centred.

    Ultralytics initialises the class-score biases to about -11 (a 1% object prior over 80 classes at 640 px), so the
    scores of an untrained model are ~1e-4 everywhere; with the biases at 0 they spread over the middle of 0..1, where
    a wrong or zeroed score row shows. A classifier's logits start with a spread of ~0.2, so its 1000 probabilities
    are all ~1e-3: its linear layer's weights are scaled up 20x (logits spread over a few units, one class stands
    out). Works on a ``YOLO``, a ``DetectionModel``-like model or a bare module.
    """
    from torch import nn

    from yolo_fasternet.integration.output_parts import head_of

    module = getattr(model, "model", model) if not isinstance(model, nn.Module) else model
    randomize_batchnorm(module)
    head = head_of(module)
    if isinstance(getattr(head, "linear", None), nn.Linear):  # Ultralytics' Classify
        head.linear.weight.data.mul_(20.0)
    for branches in (getattr(head, "cv3", None), getattr(head, "one2one_cv3", None)):
        for branch in branches or ():
            last = branch[-1] if isinstance(branch, nn.Sequential) else branch
            if getattr(last, "bias", None) is not None:
                last.bias.data.zero_()
    return model


def assert_outputs_close(actual, expected, model, atol: float = 1e-4, rel: float = 1e-5, what: str = "") -> list:
    """Assert that each part of two model outputs (boxes, class scores, masks, keypoints, angles) agrees on its scale.

    ``model`` gives the layout (its head). Each part must satisfy ``max|a - e| <= atol + rel * max|e|`` with its own
    magnitude (see ``assert_close_to_magnitude`` for why the bound scales, and ``output_parts`` for the parts), and
    each expected part must be large enough for that bound to see it (magnitude at least 100x ``atol``): a comparison
    of parts that are all ~0 proves nothing, so the test fails and asks for ``nontrivial_outputs``. Returns the
    per-part differences.
    """
    from yolo_fasternet.integration.output_parts import compare_outputs, layout_of

    differences = compare_outputs(actual, expected, layout_of(model), rel=rel, atol=atol)
    if os.environ.get("TOLERANCE_REPORT"):
        for d in differences:
            print(f"tolerance {what or '-'} {d}")
    trivial = [d for d in differences if not d.problem and d.magnitude < 100 * atol]
    assert not trivial, f"{what}: parts too small for the bound to see (use nontrivial_outputs): {trivial[0]}"
    failed = [str(d) for d in differences if not d.ok]
    assert not failed, f"{what}: " + "; ".join(failed)
    return differences


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


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released): a connection there is refused at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_close_to_magnitude(actual, expected, atol: float = 1e-4, rel: float = 1e-5, what: str = "") -> float:
    """Assert ``max|actual - expected| <= atol + rel * max|expected|``; return the difference (torch or numpy).

    Why the bound scales: float32 rounding error grows with the size of the values (a sum of k products of size v is
    off by about k * 1e-7 * v), and CPUs differ in summation order (AVX-512 or AMX kernels; oneDNN, MLAS or OpenVINO),
    so an absolute 1e-4 that holds for O(1) outputs fails on some machines for detection outputs of size ~50 (box
    coordinates in pixels). ``atol`` covers O(1) values; ``rel`` times the largest magnitude covers the rest. The
    defaults (1e-4, 1e-5) are for one network run two ways (fused or not, exported or not). Measured on a 2-core AMD
    EPYC VM (``TOLERANCE_REPORT=1`` prints each comparison): the largest difference was 4.5e-7 of
    the magnitude (and 1.2e-4 on a fused detector's outputs of size 487, which failed the former absolute 1e-4), so the
    default leaves a 20x margin for other kernels. A real fault (a missing BatchNorm fold, a wrong channel split, a
    swapped branch) changes outputs by a sizeable fraction of their magnitude, orders of magnitude above the bound.
    Tighter ``atol``/``rel`` are passed where the same arithmetic is only restated (no fold, no other runtime).
    """
    import numpy as np

    a = np.asarray(actual.detach().cpu() if hasattr(actual, "detach") else actual, dtype=np.float64)
    e = np.asarray(expected.detach().cpu() if hasattr(expected, "detach") else expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    diff = float(np.abs(a - e).max()) if e.size else 0.0
    magnitude = float(np.abs(e).max()) if e.size else 0.0
    bound = atol + rel * magnitude
    if os.environ.get("TOLERANCE_REPORT"):  # for reviewing the bounds: how close each comparison came
        print(f"tolerance {what or '-'}: diff {diff:.3g} magnitude {magnitude:.3g} bound {bound:.3g}")
    assert diff <= bound, (
        f"{what}: max abs difference {diff:.3g} > {bound:.3g} (atol {atol:g} + rel {rel:g} x {magnitude:.3g})"
    )
    return diff
