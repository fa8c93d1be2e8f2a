"""Mutation testing of the package (``make mutation``): mutmut's mutants of each package, killed or not by its tests.

mutmut names a mutant by its file's path below ``src/`` and puts ``mutants/src`` first on the path, so each run
happens in a scratch copy laid out that way (``build/mutation/<package>/``: ``src/yolo_fasternet`` with ``cfg/`` and
the weights manifest inside it, as in the wheel, and ``tests/``). Only tests that run in pytest's own process can
kill a mutant (a test that starts a fresh interpreter imports the package unmutated), so each package is paired
with the in-process test files that exercise it (``PACKAGES``).

Usage: ``python scripts/mutation.py [PACKAGE ...]`` (default: all of ``PACKAGES``); prints each package's score
(killed / mutants) and writes the surviving mutants' names to ``build/mutation/<package>/survivors.txt``
(``mutmut show NAME`` in that folder prints one's diff).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "mutation"
PACKAGES = {  # package (files under src/yolo_fasternet) -> the in-process tests that exercise it
    "output_parts": (["integration/output_parts.py"], ["tests/test_output_parts.py"]),
    "nn": (
        ["nn/pconv.py", "nn/fasternet_block.py", "nn/c2f_faster.py", "nn/c3k2_faster.py", "nn/conv_bn_folding.py"],
        ["tests/test_modules.py", "tests/test_inference_form.py"],
    ),
    "integration": (
        ["integration/channel_rules.py", "integration/stage_settings.py", "integration/yaml_lookup.py"],
        ["tests/test_registration.py", "tests/test_plugin_api.py", "tests/test_module_kinds.py"],
    ),
    "ablation": (
        ["apps/ablation/stats.py", "apps/ablation/bootstrap.py", "apps/ablation/verdicts.py"],
        ["tests/test_ablation_stats.py", "tests/test_ablation_bootstrap.py", "tests/test_ablation_report_only.py"],
    ),
}
COPIED = ["tests", "docs", "examples", "benchmarks", "README.md", "mkdocs.yml", "pyproject.toml"]
COPIED += ["train_yolo.py", "detect_yolo.py", "ablate_yolo.py"]


def toml_list(items) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def workspace(package: str) -> Path:
    """A fresh scratch copy of the project in mutmut's layout, configured for ``package``."""
    files, tests = PACKAGES[package]
    root = WORK / package
    shutil.rmtree(root, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    shutil.copytree(REPO / "plugins" / "yolo_fasternet", root / "src" / "yolo_fasternet", ignore=ignore)
    shutil.copytree(REPO / "cfg", root / "src" / "yolo_fasternet" / "cfg")
    (root / "src" / "yolo_fasternet" / "weights").mkdir()
    shutil.copy2(REPO / "weights" / "manifest.yaml", root / "src" / "yolo_fasternet" / "weights")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy2(source, root / name)
    with (root / "pyproject.toml").open("a") as config:
        config.write(
            "\n[tool.mutmut]\n"
            'source_paths = ["src/"]\n'
            f"only_mutate = {toml_list('src/yolo_fasternet/' + f for f in files)}\n"
            f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
            'pytest_add_cli_args = ["-p", "no:randomly", "-q", "-m", "not slow"]\n'
            'process_isolation = "forkserver"\n'  # torch is not fork-safe once its thread pools have started
            "timeout_multiplier = 30.0\n"  # a shared 2-core machine: slow is not a hang
        )
    return root


def score(root: Path) -> tuple[int, int, list[str]]:
    """(killed, mutants, surviving names) from ``mutmut results --all true``."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=root, capture_output=True, text=True
    ).stdout
    status = dict(re.findall(r"^\s*(\S+): (\w[\w ]*)$", out, re.M))
    survivors = sorted(name for name, s in status.items() if s == "survived")
    killed = sum(s == "killed" for s in status.values())
    return killed, len(status), survivors


def main(argv: list[str]) -> int:
    packages = argv or list(PACKAGES)
    unknown = [p for p in packages if p not in PACKAGES]
    if unknown:
        print(f"mutation: unknown package {unknown[0]!r}; choose from {', '.join(PACKAGES)}", file=sys.stderr)
        return 2
    for package in packages:
        root = workspace(package)
        subprocess.run([sys.executable, "-m", "mutmut", "run"], cwd=root, capture_output=True)
        killed, total, survivors = score(root)
        (root / "survivors.txt").write_text("".join(f"{name}\n" for name in survivors))
        rate = f"{100 * killed / total:.0f}%" if total else "-"
        print(f"{package}: {killed} of {total} mutants killed ({rate}); survivors: {root / 'survivors.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
