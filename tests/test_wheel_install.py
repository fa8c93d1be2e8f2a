"""A regular (non-editable) wheel install: cfg/ YAMLs, the autoloader and its .pth ship and work from site-packages."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> Path:
    """A fresh venv with only our wheel installed; torch/ultralytics come from this venv by a plain path entry."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = root.glob("yolo_fasternet-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    site = Path(
        sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}, scheme="venv")
        if "venv" in sysconfig.get_scheme_names()
        else next(env_dir.glob("lib/python*/site-packages"))
    )
    # A path line is not processed as a site dir: this venv's own .pth files (our editable install) stay inactive.
    (site / "zz_base_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    return env_dir / "bin" / "python"


@pytest.mark.slow
def test_wheel_ships_yamls_and_autoloader(wheel_env, tmp_path):
    code = (
        "from ultralytics import YOLO; import sys, yolo_fasternet; m = YOLO('yolov8s-fasternet.yaml');"
        "print(yolo_fasternet.__file__, yolo_fasternet.cfg_dir(), m.model.yaml['scale'])"
    )
    proc = subprocess.run([str(wheel_env), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    package_file, cfg, scale = proc.stdout.split()[-3:]
    assert str(REPO) not in package_file and str(REPO) not in cfg  # loaded from the wheel, not the checkout
    assert Path(cfg, "yolov8-fasternet.yaml").is_file() and scale == "s"


@pytest.mark.slow
def test_wheel_install_runs_the_stock_cli_entrypoint(wheel_env, tmp_path, coco8_yaml):
    cli = "import sys; from ultralytics.cfg import entrypoint; sys.argv[0] = 'yolo'; entrypoint()"
    args = ["train", "model=yolov8n-c2f-faster.yaml", f"data={coco8_yaml}", "epochs=1", "imgsz=64", "batch=4"]
    args += ["workers=0", "device=cpu", f"project={tmp_path}", "name=w", "plots=False"]
    proc = subprocess.run([str(wheel_env), "-c", cli, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (tmp_path / "w" / "weights" / "best.pt").is_file()
    assert "yolo_fasternet.nn.c2f_faster.C2f_Faster" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_wheel_ships_the_pretrained_manifest(wheel_env, tmp_path):
    """Checkpoint names (fasternet_t0, ...) resolve through weights/manifest.yaml, which must ship in the wheel."""
    proc = subprocess.run(
        [str(wheel_env), "-m", "yolo_fasternet", "weights", "list"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fasternet_t0" in proc.stdout and "fasternet_t0-epoch.281-val_acc1.71.9180.pth" in proc.stdout


@pytest.mark.slow
def test_wheel_installs_the_console_command(wheel_env, tmp_path):
    """The wheel declares `yolo-fasternet` (pip makes the script from it) and the command runs from site-packages."""
    site = next(wheel_env.parents[1].glob("lib/python*/site-packages"))
    (entry_points,) = site.glob("yolo_fasternet-*.dist-info/entry_points.txt")
    assert "yolo-fasternet = yolo_fasternet.cli:main" in entry_points.read_text()
    proc = subprocess.run(
        [str(wheel_env), "-m", "yolo_fasternet", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "weights" in proc.stdout, proc.stderr[-3000:]


def test_editable_install_puts_only_the_startup_hook_into_site_packages(tmp_path):
    """`pip install -e .` leaves no site-packages/yolo_fasternet/ folder (it would import as an empty package)."""
    site = tmp_path / "site"
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", "--target", str(site)]
    subprocess.run([*argv, "-e", str(REPO)], check=True, capture_output=True, cwd=tmp_path)
    assert not (site / "yolo_fasternet").exists()
    assert (site / "yolo_fasternet.pth").read_text().strip() == "import yolo_fasternet_autoload"
    assert (site / "yolo_fasternet_autoload.py").read_bytes() == (
        REPO / "plugins" / "yolo_fasternet_autoload.py"
    ).read_bytes()
    assert (site / "_yolo_fasternet.pth").read_text().strip() == str(REPO / "plugins")  # the package, from the checkout


README_WHEEL_LINES = ("python -m pip wheel", "pip install dist/")


def _readme_wheel_commands() -> list[str]:
    """The README install block's wheel commands, as written (comments dropped)."""
    from test_docs import code_blocks

    block = next(b for b in code_blocks((REPO / "README.md").read_text()) if any("pip wheel" in x for x in b.body))
    lines = [line.split("#", 1)[0].strip() for line in block.body]
    commands = [line for line in lines if line.startswith(README_WHEEL_LINES)]
    assert len(commands) == 2, commands
    return commands


@pytest.mark.slow
def test_readme_wheel_commands_build_the_wheel_they_name_and_it_installs(tmp_path):
    """The README's two wheel lines, run in a copy of the project's sources: the build writes the file the install
    line names (its version included), and that file installs. Two differences from a user's machine, both because
    the suite runs offline: pip builds with this venv's hatchling (``PIP_NO_BUILD_ISOLATION=0``, which pip reads as
    "no isolation") instead of downloading it, and the install is ``--no-deps --target`` a scratch folder, so that
    nothing is resolved from the registry and this venv is left as it is."""
    import os
    import shlex
    import shutil

    build, install = _readme_wheel_commands()
    sources = tmp_path / "src"
    sources.mkdir()
    for name in ("pyproject.toml", "hatch_build.py", "README.md", "plugins", "cfg", "weights"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, sources / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, sources / name)
    env = {**os.environ, "PIP_NO_BUILD_ISOLATION": "0"}
    argv = shlex.split(build)
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    subprocess.run(argv, cwd=sources, env=env, check=True, capture_output=True, timeout=300)
    wheel = shlex.split(install)[-1]
    assert (sources / wheel).is_file(), (
        f"the README installs {wheel}; the build wrote {sorted(os.listdir(sources / 'dist'))}"
    )
    site = tmp_path / "site"
    argv = [sys.executable, "-m", *shlex.split(install), "--no-deps", "--target", str(site), "-q"]
    subprocess.run(argv, cwd=sources, check=True, capture_output=True, timeout=300)
    assert (site / "yolo_fasternet" / "__init__.py").is_file() and (site / "yolo_fasternet.pth").is_file()
    assert (site / "yolo_fasternet" / "cfg" / "yolov8-fasternet.yaml").is_file()
