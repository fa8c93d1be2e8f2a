"""The supported range of Python, torch, torchvision and Ultralytics, and the check importing yolo_fasternet runs first.

The range is what CI tests: the oldest leg (``.ci/legs/oldest.txt``) pins the lower end of each, the newest leg
(``.ci/legs/newest.txt``) the upper end; pyproject.toml states the same bounds (tests/test_supported_range.py checks
that they agree). ``check_environment()`` reads the installed versions from the package metadata, before torch or
Ultralytics is imported, and raises one ``UnsupportedEnvironmentError`` line naming what is installed, what is
supported and how to fix it. ``YOLO_FASTERNET_IGNORE_VERSIONS=1`` skips the check (to try an untested release).

Kept importable by any Python 3 (no newer syntax): it has to run before anything that an old interpreter rejects.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys

PYTHON = ((3, 9), (3, 13))  # the oldest and the newest minor release tested
TORCH_MIN = "2.0"  # and no upper bound: pyproject.toml states none (torch 1.10 fails: docs/development.md)
TORCHVISION_MIN = "0.15"
ULTRALYTICS_MIN, ULTRALYTICS_BELOW = "8.3.0", "8.5"
IGNORE_ENV = "YOLO_FASTERNET_IGNORE_VERSIONS"
SCRIPTS = ("train_yolo.py", "detect_yolo.py", "ablate_yolo.py")  # beside plugins/ in a clone

# distribution -> (lowest supported, first unsupported or None): what pyproject.toml's dependencies say
REQUIREMENTS = {
    "torch": (TORCH_MIN, None),
    "torchvision": (TORCHVISION_MIN, None),
    "ultralytics": (ULTRALYTICS_MIN, ULTRALYTICS_BELOW),
}


class UnsupportedEnvironmentError(ImportError):
    """The installed Python, torch, torchvision or Ultralytics is outside the supported range (one line)."""


def release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: ``'2.15.0+cu130'`` -> ``(2, 15, 0)``."""
    match = re.match(r"\d+(\.\d+)*", version.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def specifier(low: str, below: str | None) -> str:
    """The pip specifier of a range: ``'>=8.3.0,<8.5'``."""
    return f">={low}" + (f",<{below}" if below else "")


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None if it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def problems(python: tuple[int, ...], versions: dict) -> list[tuple[str, str]]:
    """``(what is wrong, how to fix it)`` for each of ``python`` and ``versions`` (distribution -> version or None)."""
    found = []
    (low, high) = PYTHON
    if not low <= tuple(python[:2]) <= high:
        found.append(
            (
                f"Python {'.'.join(map(str, python[:3]))} (supported: {low[0]}.{low[1]} to {high[0]}.{high[1]})",
                f"use a Python {low[0]}.{low[1]} to {high[0]}.{high[1]} environment",
            )
        )
    for name, (lowest, below) in REQUIREMENTS.items():
        version, wanted = versions.get(name), specifier(lowest, below)
        if version is None:
            found.append((f"{name} is not installed (supported: {wanted})", f"pip install '{name}{wanted}'"))
        elif release(version) < release(lowest) or (below is not None and release(version) >= release(below)):
            found.append((f"{name} {version} (supported: {wanted})", f"pip install '{name}{wanted}'"))
    return found


def message(found: list[tuple[str, str]]) -> str:
    """One line: what is installed and unsupported, then the fixes."""
    what = "; ".join(w for w, _ in found)
    fixes = "; ".join(dict.fromkeys(f for _, f in found))  # in order, once each
    return f"yolo-fasternet does not support the installed {what}. Fix: {fixes} (or set {IGNORE_ENV}=1 to try anyway)"


def our_program() -> str | None:
    """The program name if this process is one of our commands, else None (then nothing may exit the process)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "yolo-fasternet":
        return "yolo-fasternet"
    clone = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.basename(argv0) in SCRIPTS and os.path.dirname(os.path.abspath(argv0)) == clone:
        return os.path.basename(argv0)
    orig = getattr(sys, "orig_argv", [])  # Python 3.10+; while `python -m yolo_fasternet` starts, argv[0] is "-m"
    if argv0 == "-m" and "-m" in orig and orig[orig.index("-m") + 1 :][:1] == ["yolo_fasternet"]:
        return "yolo-fasternet"
    return None


def check_environment() -> None:
    """Refuse this Python or an installed requirement outside the range: ``UnsupportedEnvironmentError``.

    In our own commands (``yolo-fasternet``, ``python -m yolo_fasternet``, the top-level scripts) the refusal is the
    error contract's ``<program>: error: ...`` line and exit status 1 instead of a traceback.
    """
    if os.environ.get(IGNORE_ENV, "0") not in ("", "0"):
        return
    found = problems(tuple(sys.version_info), {name: installed_version(name) for name in REQUIREMENTS})
    if not found:
        return
    program = our_program()
    if program:
        print(f"{program}: error: {message(found)}", file=sys.stderr)
        raise SystemExit(1)
    raise UnsupportedEnvironmentError(message(found))
