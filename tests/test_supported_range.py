"""The supported range: one source (yolo_fasternet.supported) that pyproject, the CI legs and the import check share."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from yolo_fasternet import supported
from yolo_fasternet.supported import problems

from conftest import REPO, run_python

pytestmark = pytest.mark.range
OK = {"torch": "2.15.0+cu132", "torchvision": "0.29.2", "ultralytics": "8.4.190"}
# sitecustomize of a fresh process: its package metadata reports these versions (distribution -> version)
FAKE = """
import importlib.metadata as m
real = m.version
m.version = lambda name: {fake!r}.get(name) or real(name)
"""


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def pins(leg: str) -> dict:
    lines = (REPO / ".ci" / "legs" / f"{leg}.txt").read_text().splitlines()
    pinned = (line.split("#")[0].strip() for line in lines)
    return dict(line.split("==") for line in pinned if "==" in line)


@pytest.mark.parametrize(
    "python, versions, words",
    [
        ((3, 8, 18), OK, ["Python 3.8.18 (supported: 3.9 to 3.13)", "use a Python 3.9 to 3.13 environment"]),
        ((3, 14, 0), OK, ["Python 3.14.0 (supported: 3.9 to 3.13)"]),
        (
            (3, 11, 7),
            {**OK, "torch": "1.13.1+cu117"},
            ["torch 1.13.1+cu117 (supported: >=2.0)", "pip install 'torch>=2.0'"],
        ),
        ((3, 11, 7), {**OK, "torchvision": "0.14.1"}, ["torchvision 0.14.1 (supported: >=0.15)"]),
        ((3, 11, 7), {**OK, "ultralytics": "8.2.103"}, ["ultralytics 8.2.103 (supported: >=8.3.0,<8.5)"]),
        ((3, 11, 7), {**OK, "ultralytics": "8.5.0"}, ["ultralytics 8.5.0", "pip install 'ultralytics>=8.3.0,<8.5'"]),
        ((3, 11, 7), {**OK, "torch": None}, ["torch is not installed (supported: >=2.0)"]),
    ],
)
def test_each_out_of_range_version_is_named_with_the_range_and_the_fix(python, versions, words):
    line = supported.message(problems(python, versions))
    assert "\n" not in line and supported.IGNORE_ENV in line
    for w in words:
        assert w in line, line


@pytest.mark.parametrize("python", [(3, 9, 0), (3, 13, 9)])
@pytest.mark.parametrize("ultralytics", ["8.3.0", "8.4.999"])
def test_both_ends_of_the_range_are_accepted(python, ultralytics):
    assert problems(python, {**OK, "torch": "2.0.0", "torchvision": "0.15.1", "ultralytics": ultralytics}) == []


@pytest.fixture
def faked(tmp_path):
    """Environment for a fresh process whose package metadata reports the given versions (a sitecustomize)."""

    def env(**versions) -> dict:
        (tmp_path / "sitecustomize.py").write_text(FAKE.format(fake=versions))
        return {"PYTHONPATH": os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])}

    return env


def run(argv: list, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=600)


def test_importing_with_an_unsupported_ultralytics_is_one_error_line_before_torch_loads(faked):
    code = "import sys\ntry:\n    import yolo_fasternet\nexcept ImportError as e:\n    print(type(e).__name__, 'torch' in sys.modules, e)"  # noqa: E501
    out = run([sys.executable, "-c", code], faked(ultralytics="8.2.103")).stdout.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("UnsupportedEnvironmentError False "), out
    assert "installed ultralytics 8.2.103 (supported: >=8.3.0,<8.5)" in out[0]


def test_an_unsupported_python_is_refused_at_import():
    code = "import sys; sys.version_info = (3, 8, 18, 'final', 0)\ntry:\n    import yolo_fasternet\nexcept ImportError as e:\n    print(e)"  # noqa: E501
    assert "installed Python 3.8.18 (supported: 3.9 to 3.13)" in run_python(code).stdout


def test_the_startup_hook_warns_in_one_line_and_stock_ultralytics_keeps_working(faked):
    code = "import sys; from ultralytics.nn import tasks; m = tasks.DetectionModel('yolov8n.yaml', verbose=False); print('built', type(m).__name__, 'yolo_fasternet' in sys.modules)"  # noqa: E501
    proc = run([sys.executable, "-c", code], faked(torch="1.13.1"))
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "built DetectionModel False", proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "yolo-fasternet" in line]
    assert len(warnings) == 1 and "installed torch 1.13.1 (supported: >=2.0)" in warnings[0], proc.stderr[-2000:]


CONSOLE = Path(sys.executable).with_name("yolo-fasternet")
COMMANDS = {
    "console": [str(CONSOLE), "modules"],
    "python -m": [sys.executable, "-m", "yolo_fasternet", "modules"],
    "train_yolo.py": [sys.executable, str(REPO / "train_yolo.py"), "--help"],
}


@pytest.mark.parametrize("entry", list(COMMANDS))
def test_our_commands_refuse_with_the_error_contract_line(faked, entry):
    if entry == "console" and not CONSOLE.is_file():
        pytest.skip(f"no console script beside {sys.executable}")
    proc = run(COMMANDS[entry], faked(ultralytics="8.5.1"))
    wanted = "yolo-fasternet does not support the installed ultralytics 8.5.1 (supported: >=8.3.0,<8.5)"
    assert proc.returncode == 1 and wanted in proc.stderr, proc.stderr[-2000:]
    if entry == "python -m" and sys.version_info < (3, 10):  # no sys.orig_argv to tell it is our command
        assert proc.stderr.strip().splitlines()[-1].startswith("yolo_fasternet.supported.UnsupportedEnvironmentError: ")
        return
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(("yolo-fasternet: error: ", "train_yolo.py: error: ")), proc.stderr


def test_a_script_of_the_same_name_elsewhere_gets_the_import_error(faked, tmp_path):
    script = tmp_path / "train_yolo.py"  # a user's own script: not ours, so the check must not exit it
    script.write_text(
        "try:\n    import yolo_fasternet\nexcept ImportError as e:\n    print('caught', type(e).__name__)"
    )
    proc = run([sys.executable, str(script)], faked(ultralytics="8.5.1"))
    assert proc.returncode == 0 and proc.stdout.strip() == "caught UnsupportedEnvironmentError", proc.stderr


def test_the_ignore_variable_lets_an_untested_release_import(faked):
    proc = run(
        [sys.executable, "-c", "import yolo_fasternet; print('imported')"],
        {**faked(ultralytics="8.5.1"), supported.IGNORE_ENV: "1"},
    )
    assert proc.stdout.strip().endswith("imported"), proc.stderr[-2000:]


def test_pyproject_states_the_same_range():
    project = pyproject()["project"]
    (low, high) = supported.PYTHON
    assert project["requires-python"] == f">={low[0]}.{low[1]}"
    listed = [c.rsplit(" :: ", 1)[-1] for c in project["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    assert listed == [f"3.{minor}" for minor in range(low[1], high[1] + 1)]
    dependencies = {re.match(r"[\w-]+", d).group(0): d for d in project["dependencies"]}
    for name, (lowest, below) in supported.REQUIREMENTS.items():
        assert dependencies[name].split(";")[0].strip() == name + supported.specifier(lowest, below)
    assert pyproject()["tool"]["ruff"]["target-version"] == f"py{low[0]}{low[1]}"


def test_the_ci_legs_pin_the_ends_of_the_range():
    oldest, newest = pins("oldest"), pins("newest")
    for requirement in pyproject()["project"]["dependencies"]:  # each lower bound is the oldest leg's pin
        name, lowest = re.match(r"([\w-]+)>=([\d.]+)", requirement).groups()
        bound = supported.release(lowest)
        assert supported.release(oldest[name])[: len(bound)] == bound, (requirement, oldest[name])
    newest_ultralytics = supported.release(newest["ultralytics"])
    assert (
        supported.release(supported.ULTRALYTICS_MIN)
        <= newest_ultralytics
        < supported.release(supported.ULTRALYTICS_BELOW)
    )
    legs = (REPO / "Makefile").read_text()
    (low, high) = supported.PYTHON
    assert re.search(rf"^PYTHON_OLDEST \?= {low[0]}\.{low[1]}\.\d+$", legs, re.M)
    assert re.search(rf"^PYTHON_NEWEST \?= {high[0]}\.{high[1]}\.\d+$", legs, re.M)
