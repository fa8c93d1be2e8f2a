"""detect --runtime: auto exports a trained .pt once (cached), times every runtime, runs the fastest, never worse."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from ultralytics import YOLO
from ultralytics.engine.model import Model

from yolo_fasternet.apps.detection import export_cache, runtime_choice
from yolo_fasternet.apps.detection.export_cache import ENTRY_FILE, ExportCache
from yolo_fasternet.apps.detection.inference_threads import backend_format, set_threads
from yolo_fasternet.apps.detection.runtime_choice import EXPORT_PRECISION, RuntimeChooser, outputs_agree, raw_outputs
from yolo_fasternet.apps.synthetic_data import make_synthetic_dataset
from yolo_fasternet.cli import main as cli_main
from yolo_fasternet.integration.output_parts import layout_of

from test_detect_yolo import parse_summary, write_video
from test_exported_detection import keep_torch_threads  # noqa: F401  (autouse: PyTorch's thread count is global)

IMGSZ = 64  # small: every export and timing here is a few seconds on 2 cores


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """best.pt of yolov8n-fasternet after one epoch on 16 synthetic images at 64 px (~15 s): a real training
    checkpoint (train_args, EMA weights), small enough to export in seconds."""
    folder = tmp_path_factory.mktemp("runtime")
    data = make_synthetic_dataset(root=folder / "data", n_train=16, n_val=8, imgsz=IMGSZ)
    YOLO("yolov8n-fasternet.yaml").train(
        data=str(data), epochs=1, imgsz=IMGSZ, batch=8, workers=0, device="cpu", project=str(folder / "runs"),
        name="train", plots=False, val=False, verbose=False,
    )  # fmt: skip
    return folder / "runs" / "train" / "weights" / "best.pt"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=4, fps=30)


def detect(weights: Path, clip: Path, *extra: str) -> int:
    return cli_main(["detect", "--weights", str(weights), "--source", str(clip), "--imgsz", str(IMGSZ), "--no-show",
                     *extra])  # fmt: skip


def runtime_line(out: str) -> tuple[str, dict[str, float]]:
    """The runtime the summary says was chosen, and the FPS it lists per runtime."""
    line = re.search(r"^  runtime: (\S+?)[ ,(].*$", out, re.M)
    assert line, out
    measured = re.search(r"FPS: ([^)]*)\)", line[0])
    fps = dict(re.findall(r"([\w-]+) ([\d.]+)", measured[1])) if measured else {}
    return line[1], {k: float(v) for k, v in fps.items()}


def forbid_export(monkeypatch):
    """Make any call to Ultralytics' exporter fail the test."""

    def no_export(*args, **kwargs):
        raise AssertionError("the exporter was called")

    monkeypatch.setattr(Model, "export", no_export)


@pytest.fixture(scope="module")
def auto_cache(trained, clip, tmp_path_factory) -> tuple[Path, str]:
    """One default (--runtime auto) run on the trained checkpoint: its export cache folder and stdout."""
    cache = tmp_path_factory.mktemp("cache")
    out = io.StringIO()  # module scope: capsys is per test
    with contextlib.redirect_stdout(out):
        assert detect(trained, clip, "--export-cache", str(cache)) == 0
    return cache, out.getvalue()


# --- auto: choose by measurement, cache the exports --------------------------------------------------------------


def test_auto_picks_a_measured_runtime_writes_the_cache_and_reuses_it(auto_cache, trained, clip, capsys, monkeypatch):
    cache, first = auto_cache
    chosen, fps = runtime_line(first)
    installed = [r for r in runtime_choice.EXPORTED if runtime_choice.installed(r)]  # NCNN and MNN with [test]
    assert set(fps) == {"torch", *installed}, first
    assert fps[chosen] == max(fps.values()), first  # the fastest measured runs
    assert all(f"{r}: exported in" in first for r in installed), first
    entries = sorted(p.parent.name.split("-")[0] for p in cache.rglob(ENTRY_FILE))
    assert entries == sorted(installed)
    assert parse_summary(first)["processed"] == 4

    forbid_export(monkeypatch)  # the second run must not export
    assert detect(trained, clip, "--export-cache", str(cache)) == 0
    second = capsys.readouterr().out
    assert all(f"{r}: cached export" in second for r in installed), second


def cached_export(cache: Path, runtime: str = "openvino") -> Path:
    """The ``runtime`` export folder the ``auto_cache`` run made; skipped only where the runtime is not installed
    (where it is, a missing export means the export failed, and the test fails saying so)."""
    exported = next(cache.rglob(f"*_{runtime}_model"), None)
    if exported is None:
        if runtime_choice.installed(runtime):
            pytest.fail(f"{runtime} is installed but {cache} holds no {runtime} export: detect's export to it failed")
        pytest.skip(f"{runtime} is not installed")
    return exported


def test_each_runtime_gives_pytorchs_outputs_on_the_same_frames(auto_cache, trained, clip):
    cache, _ = auto_cache
    frames = []
    capture = cv2.VideoCapture(str(clip))
    while (ok := capture.read())[0]:
        frames.append(ok[1])
    capture.release()
    reference = YOLO(str(trained))
    reference.predict(frames[0], imgsz=IMGSZ, device="cpu", verbose=False)
    for entry in cache.rglob(ENTRY_FILE):
        runtime = entry.parent.name.split("-")[0]
        path = entry.parent / json.loads(entry.read_text())["model"]
        model = YOLO(str(path), task="detect")
        model.predict(frames[0], imgsz=IMGSZ, device="cpu", verbose=False)
        if runtime == "openvino":  # the export itself, at f32 (detect checks it so; it runs at the CPU default)
            set_threads(model, 1, path, precision=EXPORT_PRECISION)
            compiled = model.predictor.model.__dict__.get("backend", model.predictor.model).ov_compiled_model
            import openvino as ov

            assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
        for frame in frames:
            # the exported models are square imgsz; feed both the same letterboxed square input
            x = model.predictor.preprocess([frame])
            assert x.shape[-2:] == (IMGSZ, IMGSZ)
            agree, detail = outputs_agree(raw_outputs(model, x), raw_outputs(reference, x), layout_of(reference))
            assert agree, f"{runtime}: {detail}"


def test_a_slow_candidate_loses_to_pytorch_and_the_summary_says_so(auto_cache, trained, clip, capsys, monkeypatch):
    cache, _ = auto_cache
    forbid_export(monkeypatch)
    measured_work = RuntimeChooser.frame_work

    def slow_exports(self, model):
        work = measured_work(self, model)
        return work if backend_format(model) == "pytorch" else lambda: (time.sleep(0.3), work())

    monkeypatch.setattr(RuntimeChooser, "frame_work", slow_exports)
    assert detect(trained, clip, "--export-cache", str(cache)) == 0
    out = capsys.readouterr().out
    chosen, fps = runtime_line(out)
    assert chosen == "torch" and len(fps) > 1 and fps["torch"] == max(fps.values()), out
    assert "torch, the fastest measured" in out


def test_auto_considers_the_int8_model_quantize_made_and_says_so(auto_cache, trained, clip, tmp_path, capsys,
                                                                  monkeypatch):  # fmt: skip
    cache, _ = auto_cache
    exported = cached_export(cache)
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(trained.read_bytes())  # same content: its exports come from the cache
    assert detect(checkpoint, clip, "--runtime", "openvino-int8") == 1  # asked for explicitly and missing
    assert "--runtime openvino-int8: no INT8 model of" in one_line(capsys.readouterr().err)
    # where quantize writes its INT8 model; an f32 OpenVINO model stands in for it (what is tested is the lookup)
    shutil.copytree(exported, tmp_path / "best_int8_openvino_model", copy_function=shutil.copy)  # newer than best.pt
    forbid_export(monkeypatch)
    assert detect(checkpoint, clip, "--export-cache", str(cache)) == 0
    out = capsys.readouterr().out
    assert "openvino-int8" in runtime_line(out)[1] and "openvino-int8: yolo-fasternet quantize's INT8 model" in out
    assert detect(checkpoint, clip, "--runtime", "openvino-int8") == 0
    assert runtime_line(capsys.readouterr().out)[0] == "openvino-int8"


def test_runtime_openvino_runs_at_the_cpu_default_precision_and_names_it(auto_cache, trained, clip, capsys,
                                                                          monkeypatch):  # fmt: skip
    if not runtime_choice.installed("openvino"):
        pytest.skip("OpenVINO is not installed")
    import openvino as ov

    default = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()  # bf16 with AMX/AVX512-BF16
    forbid_export(monkeypatch)
    assert detect(trained, clip, "--runtime", "openvino", "--export-cache", str(auto_cache[0])) == 0
    assert f"  runtime: openvino {default} (cached export, export cache " in capsys.readouterr().out


def test_runtime_torch_never_exports(trained, clip, tmp_path, capsys, monkeypatch):
    forbid_export(monkeypatch)
    assert detect(trained, clip, "--runtime", "torch", "--export-cache", str(tmp_path / "cache")) == 0
    assert runtime_line(capsys.readouterr().out)[0] == "torch"
    assert not (tmp_path / "cache").exists()


# --- never worse than PyTorch: each fallback is one line and the run completes ---------------------------------------


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "━" not in line and "frame/s" not in line]
    assert len(lines) == 1, err
    return lines[0]


def test_without_the_export_extra_auto_runs_pytorch_with_one_notice(trained, clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runtime_choice, "installed", lambda runtime: False)
    forbid_export(monkeypatch)
    assert detect(trained, clip, "--export-cache", str(tmp_path / "cache")) == 0
    captured = capsys.readouterr()
    assert "yolo-fasternet[export]" in one_line(captured.err)
    assert runtime_line(captured.out)[0] == "torch"


@pytest.mark.parametrize("runtime", ["ncnn", "mnn"])
def test_a_named_runtime_without_its_extra_is_one_line_naming_it(runtime, trained, clip, capsys, monkeypatch):
    from yolo_fasternet.integration import export_packages

    hidden = set(runtime_choice.RUNTIME_PACKAGES[runtime]) - {"onnx", "onnxslim"}
    real = export_packages.importlib.util.find_spec
    monkeypatch.setattr(runtime_choice, "installed", lambda name: name != runtime)
    monkeypatch.setattr(export_packages.importlib.util, "find_spec", lambda n, *a: None if n in hidden else real(n, *a))
    forbid_export(monkeypatch)
    assert detect(trained, clip, "--runtime", runtime) == 1
    line = one_line(capsys.readouterr().err)
    assert f"--runtime {runtime}" in line and f"pip install 'yolo-fasternet[{runtime}]'" in line, line


def test_a_failing_export_falls_back_to_pytorch_with_one_warning(trained, clip, tmp_path, capsys, monkeypatch):
    def failing_export(*args, **kwargs):
        raise RuntimeError("converter exploded\nwith a long traceback-like second line")

    monkeypatch.setattr(Model, "export", failing_export)
    assert detect(trained, clip, "--export-cache", str(tmp_path / "cache")) == 0
    captured = capsys.readouterr()
    warning = one_line(captured.err)
    assert "converter exploded" in warning and "second line" not in warning
    assert runtime_line(captured.out)[0] == "torch"
    assert not list((tmp_path / "cache").rglob(ENTRY_FILE))  # nothing half-made was kept


def test_an_export_whose_outputs_disagree_is_not_used_and_not_kept(trained, clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runtime_choice, "EXPORTED", ("onnx",))
    broken = "class scores: max abs difference 0.5 (bound 1e-06 at magnitude 0.01) = 5e+05x"
    monkeypatch.setattr(runtime_choice, "outputs_agree", lambda actual, expected, layout: (False, broken))
    assert detect(trained, clip, "--export-cache", str(tmp_path / "cache")) == 0
    captured = capsys.readouterr()
    assert f"onnx: its f32 outputs differ from PyTorch's: {broken}" in one_line(captured.err)
    assert runtime_line(captured.out)[0] == "torch"
    assert not list((tmp_path / "cache").rglob(ENTRY_FILE))  # the next run exports and checks again


def test_an_unwritable_cache_exports_into_a_temporary_folder(trained, clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runtime_choice, "EXPORTED", ("onnx",))  # one real export is enough here
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")  # unwritable even for root, unlike chmod
    assert detect(trained, clip, "--export-cache", str(blocker / "exports")) == 0
    captured = capsys.readouterr()
    assert "is not writable" in one_line(captured.err) and "(not kept)" in captured.err
    assert "onnx: exported in" in captured.out and "(temporary)" in captured.out


# --- the cache itself (a fake exporter: what is tested is the keying and the checks, not Ultralytics) -------------


class FakeModel:
    """What ExportCache needs of a YOLO model: ``.model.pt_path`` and an ``export`` writing beside it."""

    def __init__(self):
        self.model = type("Net", (), {"pt_path": "original.pt"})()
        self.exports = 0

    def export(self, format, imgsz, device):
        self.exports += 1
        path = Path(self.model.pt_path).with_suffix(".onnx")
        path.write_bytes(b"exported" * 1000)
        return str(path)


def test_cache_is_keyed_by_content_and_versions_and_rebuilds_a_truncated_entry(tmp_path, monkeypatch):
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights v1")
    model, notices = FakeModel(), []
    first = ExportCache(checkpoint, tmp_path / "cache").get(model, "onnx", 64, "f32", notices.append)
    again = ExportCache(checkpoint, tmp_path / "cache").get(model, "onnx", 64, "f32", notices.append)
    assert (first.reused, again.reused, again.path, model.exports) == (False, True, first.path, 1)
    assert model.model.pt_path == "original.pt"  # restored after the export

    first.path.write_bytes(b"exp")  # truncated (a killed copy, a full disk)
    rebuilt = ExportCache(checkpoint, tmp_path / "cache").get(model, "onnx", 64, "f32", notices.append)
    assert not rebuilt.reused and model.exports == 2 and rebuilt.path.stat().st_size == 8000
    assert len(notices) == 1 and "rebuilding" in notices[0]

    checkpoint.write_bytes(b"weights v2")  # retrained at the same path
    assert not ExportCache(checkpoint, tmp_path / "cache").get(model, "onnx", 64, "f32", notices.append).reused
    assert not ExportCache(checkpoint, tmp_path / "cache").get(model, "onnx", 96, "f32", notices.append).reused
    versions = export_cache.versions
    monkeypatch.setattr(export_cache, "versions", lambda fmt: {**versions(fmt), "ultralytics": "99.0"})
    assert not ExportCache(checkpoint, tmp_path / "cache").get(model, "onnx", 64, "f32", notices.append).reused
    assert model.exports == 5
    assert not list((tmp_path / "cache").rglob(".staging-*"))


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_or_failed_export_leaves_nothing_behind(interruption, tmp_path, monkeypatch):
    """Ctrl-C or a converter error mid-export: no entry, no staging folder, no scratch file in the working folder."""
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    model = FakeModel()

    def export_then_stop(**kwargs):
        Path(model.model.pt_path).with_suffix(".mnn").write_bytes(b"half")  # a half-written export
        Path("debug.param").write_text("scratch")  # pnnx writes these into the working folder
        raise interruption()

    monkeypatch.setattr(model, "export", export_then_stop)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(interruption):
        ExportCache(checkpoint, tmp_path / "cache").get(model, "mnn", 64, "f32", print)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert not list((tmp_path / "cache").rglob(".staging-*")) and not list(work.iterdir())
    assert Path.cwd() == work and model.model.pt_path == "original.pt"


# --- bad input: one line naming the file or the argument ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("model.onnx", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "not an ONNX model"),
        ("model.torchscript", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "not a TorchScript file"),
        ("empty_openvino_model", lambda p: p.mkdir(), "OpenVINO folder without a .xml model file"),
        ("partial_openvino_model", lambda p: (p.mkdir(), (p / "m.xml").write_text('<?xml version="1.0"?><net'))[0],
         "m.xml is not an OpenVINO model file"),
        ("nobin_openvino_model", lambda p: (p.mkdir(), (p / "m.xml").write_text(
            '<net><layers><layer type="Const"><data offset="0" size="64"/></layer></layers></net>'))[0],
         "OpenVINO weights file m.bin is missing"),
    ],
)  # fmt: skip
def test_broken_exported_models_are_one_line_errors_naming_the_file(tmp_path, clip, capsys, name, make, message):
    make(tmp_path / name)
    assert detect(tmp_path / name, clip) == 1
    line = one_line(capsys.readouterr().err)
    assert message in line and str(tmp_path / name) in line


def test_truncated_openvino_weights_name_the_file(auto_cache, tmp_path, clip, capsys):
    cache, _ = auto_cache
    source = cached_export(cache)
    folder = tmp_path / "cut_openvino_model"
    folder.mkdir()
    for file in source.iterdir():
        data = file.read_bytes()
        (folder / file.name).write_bytes(data[: len(data) // 2] if file.suffix == ".bin" else data)
    assert detect(folder, clip) == 1
    line = one_line(capsys.readouterr().err)
    assert str(folder) in line and "is truncated" in line


@pytest.mark.parametrize("weights", ["its own", "truncated", "another model's"])
def test_ncnn_weights_that_are_not_the_params_own_name_the_file(weights, auto_cache, tmp_path, clip, capsys):
    cache, _ = auto_cache
    source = cached_export(cache, "ncnn")
    folder = tmp_path / "copied_ncnn_model"
    shutil.copytree(source, folder)
    own = (source / "model.ncnn.bin").read_bytes()
    if weights == "its own":
        assert detect(folder, clip) == 0
        return
    # another model's: longer than this .param needs (a larger model's .bin), which ncnn itself loads silently
    foreign = own[: len(own) // 2] if weights == "truncated" else own + np.random.default_rng(0).bytes(4096)
    (folder / "model.ncnn.bin").write_bytes(foreign)
    assert detect(folder, clip) == 1
    line = one_line(capsys.readouterr().err)
    assert str(folder) in line and "model.ncnn.bin is truncated or from another model" in line
