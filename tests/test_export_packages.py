"""A format whose packages are missing is named with its extra, in one line, before Ultralytics' own install attempt."""

from __future__ import annotations

import importlib.util
import logging
from importlib import metadata

import pytest

from yolo_fasternet.integration import export_packages


@pytest.fixture
def without(monkeypatch):
    """Make the named distributions and modules look uninstalled; every extra may be announced again."""
    monkeypatch.setattr(export_packages, "_ANNOUNCED", set())

    def hide(*names: str) -> None:
        hidden = {n.lower() for n in names}
        real_version, real_find = metadata.version, importlib.util.find_spec

        def version(name):
            if name.lower() in hidden:
                raise metadata.PackageNotFoundError(name)
            return real_version(name)

        def find_spec(name, *args):
            return None if name.lower() in hidden else real_find(name, *args)

        monkeypatch.setattr(export_packages.metadata, "version", version)
        monkeypatch.setattr(export_packages.importlib.util, "find_spec", find_spec)

    return hide


@pytest.mark.parametrize(
    ("requirements", "hidden", "words"),
    [
        ("ncnn", ("ncnn", "pnnx"), ["NCNN export needs ncnn and pnnx", "yolo-fasternet[ncnn]"]),
        ("MNN>=2.9.6", ("mnn",), ["MNN export needs MNN>=2.9.6", "yolo-fasternet[mnn]"]),
        (("litert-torch>=0.10.0", "ai-edge-litert>=2.3.0"), ("litert-torch",), ["litert-torch>=0.10.0", "[litert]"]),
        (["coremltools>=9.0", "numpy>=1.14.5,<=2.3.5"], ("coremltools",), ["coremltools>=9.0", "[coreml]"]),
    ],
)
def test_missing_format_packages_name_the_extra(requirements, hidden, words, without):
    without(*hidden)
    hint = export_packages.extra_hint(requirements)
    assert hint is not None and "\n" not in hint
    assert all(w in hint for w in words), hint


def test_coreml_with_a_too_new_numpy_names_the_coreml_extra(without, monkeypatch):
    without()
    real = export_packages.metadata.version
    monkeypatch.setattr(export_packages.metadata, "version", lambda n: "2.4.6" if n == "numpy" else real(n))
    hint = export_packages.extra_hint(["coremltools>=9.0", "numpy>=1.14.5,<=2.3.5"])
    assert hint is not None and "numpy>=1.14.5,<=2.3.5" in hint and "[coreml]" in hint


def test_other_checks_and_met_requirements_pass_without_a_line(without):
    without()
    assert export_packages.extra_hint("ultralytics") is None  # not an export format's package
    assert export_packages.extra_hint("torch>=1.8") is None
    assert export_packages.extra_hint(None) is None  # the requirements.txt default
    assert export_packages.extra_hint(["onnx>=1.12.0"]) is None  # installed by [test]
    without("ncnn", "pnnx")
    assert export_packages.extra_hint("ncnn") is not None
    assert export_packages.extra_hint("pnnx==20260526") is None  # one line per extra, not one per check


def test_the_stock_exporter_check_says_the_line_before_its_own(without, caplog):
    """Registration wrapped Ultralytics' check_requirements: our line comes first, then Ultralytics' own check."""
    from ultralytics.utils import checks

    assert getattr(checks.check_requirements, "__yolo_fasternet__", False)
    without("mnn")
    with caplog.at_level(logging.INFO, logger="ultralytics"):
        checks.check_requirements("MNN>=2.9.6", install=False)
    lines = [r.getMessage() for r in caplog.records]
    assert "yolo-fasternet[mnn]" in lines[0], lines


def test_missing_line_for_detect(without):
    without("ncnn")
    assert export_packages.missing_line("ncnn") == (
        "NCNN export needs ncnn (not installed): pip install 'yolo-fasternet[ncnn]'"
    )
    assert export_packages.missing_line("nosuchformat") is None
