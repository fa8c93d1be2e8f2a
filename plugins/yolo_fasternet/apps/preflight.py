"""Cheap checks before expensive work: argument ranges, device, output folders, the model (built once), the dataset.

Each check raises a ``CommandError`` (``UsageError`` for an argument) whose one-line message names the culprit, so a
bad input fails in a second, before a dataset is cached, a model warmed up or a training started.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import zipfile
from pathlib import Path

from ..error_text import first_line
from ..integration.missing_plugin import explain_missing_module, recorded_distributions
from ..pretrained.checkpoint_files import offline_flag
from .command_errors import CommandError, UsageError, message_of

# Ultralytics keys whose values it passes on without a range check (check_cfg checks types and fractions only):
# key -> (is the value meaningful, what it must be). ``imgsz=-5`` would otherwise train silently at 32 pixels.
RANGES = {
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "imgsz": (lambda v: all(s >= 1 for s in (v if isinstance(v, (list, tuple)) else [v])), "a positive size"),
    "batch": (lambda v: v == -1 or v >= 1 or 0 < v < 1, "-1 (auto), a size >= 1 or a GPU memory fraction in (0, 1)"),
    "seed": (lambda v: v >= 0, "an integer >= 0"),
    "workers": (lambda v: v >= 0, "an integer >= 0"),
    "patience": (lambda v: v >= 0, "an integer >= 0"),
    "conf": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "iou": (lambda v: 0 <= v <= 1, "between 0 and 1"),
}
EXPORTED_SUFFIXES = {".onnx", ".torchscript", ".engine", ".mlpackage", ".tflite", ".xml", ".mnn"}  # exported files
MODEL_FOLDERS = ("_openvino_model", "_ncnn_model")  # exported models that are folders (OpenVINO, NCNN)
NCNN_MAGIC = "7767517"  # the first line of every NCNN .param file
_DEVICE_LIST = re.compile(r"^(cuda:)?\d+(,\d+)*$")  # 0, cuda:1, 0,1 (Ultralytics' other forms are left to it)


def check_ranges(values: dict) -> None:
    """Refuse values that Ultralytics would accept silently but that mean nothing (``imgsz=-5``, ``epochs=0``)."""
    for key, (ok, wanted) in RANGES.items():
        value = values.get(key)
        if value is None:
            continue
        try:
            good = bool(ok(value))
        except TypeError:  # a string where a number belongs: check_cfg reports most of these first
            good = False
        if not good:
            raise UsageError(f"{key}={value!r}: must be {wanted}")


def check_device(device) -> None:
    """Refuse a CUDA index this machine does not have, or MPS where there is none, before anything is loaded."""
    import torch

    text = str(device).strip().lower().replace(" ", "") if device is not None else ""
    if text in {"", "none", "cpu"}:
        return
    if text == "mps":
        if not torch.backends.mps.is_available():
            raise CommandError("device 'mps': Apple MPS is not available here; use --device cpu")
        return
    if not _DEVICE_LIST.match(text):
        return  # -1 (idle GPU), npu, ...: Ultralytics knows these forms better
    wanted = [int(i) for i in text.removeprefix("cuda:").split(",")]
    count = torch.cuda.device_count()
    missing = [i for i in wanted if i >= count]
    if missing:
        have = f"CUDA devices 0-{count - 1}" if count else "no CUDA device"
        raise CommandError(f"device {device!r}: this machine has {have}; use --device cpu or a valid index")


def check_output_folder(path, option: str) -> None:
    """Refuse an output folder that cannot be created: a file in the way, or a parent without write permission.

    Creates nothing: a command that then fails for another reason leaves no empty folder behind.
    """
    target = Path(path).expanduser().absolute()
    for folder in (target, *target.parents):
        if not folder.exists():
            continue
        if not folder.is_dir():
            where = "is a file" if folder == target else f"cannot be created: {folder} is a file"
            raise CommandError(f"{option} {path}: {where}, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CommandError(f"{option} {path}: no permission to write in {folder}")
        return


def load_model(name: str):
    """Build a model YAML or load a checkpoint once, turning every failure into one line naming the file.

    Returns the ``YOLO`` model. A model YAML is built here completely (every layer), so a bad row fails before any
    data is loaded.
    """
    from ultralytics import YOLO
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    path = Path(name)
    if path.is_dir() and not path.name.endswith(MODEL_FOLDERS):
        raise CommandError(f"model {name}: is a folder; give a model YAML, a .pt checkpoint or an exported model")
    if path.is_dir() and path.name.endswith("_openvino_model") and not any(path.glob("*.xml")):
        raise CommandError(f"model {name}: OpenVINO folder without a .xml model file")
    # Ultralytics would first ask GitHub whether a missing .pt is one of its release assets (warnings when offline)
    if path.suffix == ".pt" and not path.exists() and path.name not in GITHUB_ASSETS_NAMES:
        raise CommandError(f"model {name}: no such file")
    if path.suffix in EXPORTED_SUFFIXES and not path.exists():
        raise CommandError(f"model {name}: no such file")
    _check_plugins_installed(path)
    check_exported_model(path)
    try:
        if path.suffix in {".yaml", ".yml"}:
            _check_model_yaml(name)
        return YOLO(name)
    except CommandError:
        raise
    except ModuleNotFoundError as e:  # a plugin package the checkpoint was trained with is not installed here
        raise CommandError(explain_missing_module(e, name)) from e
    except Exception as e:  # a bad layer, a YAML syntax error, a truncated checkpoint: the message says which
        text = message_of(e).splitlines()[0].removeprefix("ERROR ❌️ ").strip()
        raise CommandError(text if name in text else f"model {name}: {text}") from e


def check_exported_model(path: Path) -> None:
    """Refuse an exported model that is not what its name says, or is incomplete, in one line naming the file.

    Checked from the files alone, cheaply: an ``.onnx`` must parse as an ONNX graph, a ``.torchscript`` must be a zip
    archive (TorchScript's container; a truncated one has lost its directory at the end), and an OpenVINO model must
    have its ``.xml`` (which must parse) and a ``.bin`` long enough for every constant the ``.xml`` places in it.
    Without these checks the runtimes fail later with messages like ``Exception from src/inference/src/cpp/core.cpp``.
    """
    if path.suffix == ".onnx" and path.is_file():
        _check_onnx(path)
    elif path.suffix == ".torchscript" and path.is_file() and not zipfile.is_zipfile(path):
        raise CommandError(f"model {path}: not a TorchScript file (no zip archive: empty, truncated or another format)")
    elif path.suffix == ".xml" and path.is_file():
        _check_openvino_xml(path, path)
    elif path.is_dir() and path.name.endswith("_openvino_model"):
        for xml in path.glob("*.xml"):
            _check_openvino_xml(xml, path)
    elif path.is_dir() and path.name.endswith("_ncnn_model"):
        _check_ncnn(path)
    elif path.suffix in {".mnn", ".tflite"} and path.is_file():
        _check_flatbuffer(path)


def _check_ncnn(folder: Path) -> None:
    """An NCNN model folder: ``model.ncnn.param`` with NCNN's magic line, and a ``model.ncnn.bin`` that ncnn loads.

    A ``.param`` that lists layers ncnn does not have, or a ``.bin`` shorter than its weights, loads as an empty
    network in ncnn (which then fails with ``IndexError: list index out of range`` in Ultralytics), and a longer
    ``.bin`` (another model's) loads silently with the wrong weights, so both are loaded here where ncnn is
    installed, counting the bytes of the ``.bin`` that the ``.param`` reads.
    """
    param, weights = folder / "model.ncnn.param", folder / "model.ncnn.bin"
    for file in (param, weights):
        if not file.is_file():
            raise CommandError(f"model {folder}: NCNN file {file.name} is missing")
    with open(param, errors="replace") as f:
        if f.readline().strip() != NCNN_MAGIC:
            raise CommandError(f"model {folder}: {param.name} is not an NCNN .param file (no magic {NCNN_MAGIC})")
    if importlib.util.find_spec("ncnn") is None:
        return  # the runtime's own error will have to do
    import ncnn

    net = ncnn.Net()
    with _native_output_silenced():
        param_status = net.load_param(str(param))
    if param_status != 0:
        raise CommandError(f"model {folder}: ncnn cannot read {param.name} (a layer ncnn does not have, or damaged)")
    data = weights.read_bytes()
    reader = _counting_reader(ncnn, data)
    with _native_output_silenced():
        weights_status = net.load_model(reader)
    if weights_status != 0 or reader.position != len(data):
        raise CommandError(f"model {folder}: {weights.name} is truncated or from another model ({param.name})")


def _counting_reader(ncnn, data: bytes):
    """An ncnn ``DataReader`` over ``data`` that counts the bytes ncnn reads: the weights a ``.param`` needs are
    exactly its own ``.bin``, so a ``.bin`` read only in part (another, larger model's) is told from the model's own."""
    import ctypes

    pointer_of = ctypes.pythonapi.PyCapsule_GetPointer
    pointer_of.restype, pointer_of.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    name_of = ctypes.pythonapi.PyCapsule_GetName
    name_of.restype, name_of.argtypes = ctypes.c_char_p, [ctypes.py_object]

    class CountingReader(ncnn.DataReader):
        def __init__(self):
            super().__init__()
            self.position = 0

        def scan(self, format, p):  # text parameters: never used for a binary .bin
            return 0

        def read(self, buffer, size):
            chunk = data[self.position : self.position + size]
            ctypes.memmove(pointer_of(buffer, name_of(buffer)), chunk, len(chunk))
            self.position += len(chunk)
            return len(chunk)

    return CountingReader()


def _check_flatbuffer(path: Path) -> None:
    """An MNN or LiteRT file: a flatbuffer (a 4-byte offset to its root inside the file), that its runtime loads.

    MNN and LiteRT read a truncated file, or one from another format, with C++ messages on stdout and stderr and a
    ``SystemError``/``ValueError`` later; the load here is silenced and its failure is one line naming the file.
    """
    kind = "an MNN" if path.suffix == ".mnn" else "a LiteRT"
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
    root = int.from_bytes(head[:4], "little") if len(head) >= 4 else 0
    bad = size < 8 or not 4 <= root < size or (path.suffix == ".tflite" and head[4:8] != b"TFL3")
    if not bad:
        try:
            with _native_output_silenced():
                _load_flatbuffer(path)
        except Exception:  # MNN: SystemError; LiteRT: ValueError or RuntimeError
            bad = True
    if bad:
        raise CommandError(f"model {path}: not {kind} model (empty, truncated or another format)")


def _load_flatbuffer(path: Path) -> None:
    """Load an MNN or LiteRT model in its runtime, where that runtime is installed (else nothing is checked)."""
    if path.suffix == ".mnn" and importlib.util.find_spec("MNN") is not None:
        import MNN

        MNN.nn.load_module_from_file(str(path), [], [])
    elif path.suffix == ".tflite" and importlib.util.find_spec("ai_edge_litert") is not None:
        from ai_edge_litert.interpreter import Interpreter

        Interpreter(model_path=str(path)).allocate_tensors()


@contextlib.contextmanager
def _native_output_silenced():
    """Send file descriptors 1 and 2 to /dev/null for a native library's load (its messages are not the error)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _check_onnx(path: Path) -> None:
    """An ``.onnx`` file must parse and hold a graph with nodes (random bytes can parse as an empty protobuf)."""
    if importlib.util.find_spec("onnx") is None:
        return  # the runtime's own error will have to do
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as e:  # DecodeError, and whatever else a broken protobuf raises
        reason = first_line(e)
        raise CommandError(f"model {path}: not an ONNX model (empty, truncated or another format: {reason})") from e
    if not graph.node:
        raise CommandError(f"model {path}: not an ONNX model (no graph nodes: empty, truncated or another format)")


def _check_openvino_xml(xml: Path, model: Path) -> None:
    """An OpenVINO IR: the ``.xml`` parses and its ``.bin`` holds every constant it refers to."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.parse(xml).getroot()
    except (ElementTree.ParseError, OSError) as e:
        raise CommandError(f"model {model}: {xml.name} is not an OpenVINO model file ({first_line(e)})") from e
    if root.tag != "net":
        raise CommandError(f"model {model}: {xml.name} is not an OpenVINO model file (no <net> element)")
    needed = max(
        (int(d.get("offset", 0)) + int(d.get("size", 0)) for d in root.iter("data") if d.get("offset") is not None),
        default=0,
    )
    weights = xml.with_suffix(".bin")
    if needed and not weights.is_file():
        raise CommandError(f"model {model}: OpenVINO weights file {weights.name} is missing")
    if needed and weights.stat().st_size < needed:
        have = weights.stat().st_size
        raise CommandError(f"model {model}: {weights.name} is truncated ({have} bytes; {xml.name} needs {needed})")


def _check_plugins_installed(path: Path) -> None:
    """Refuse a checkpoint whose recorded plugin packages are not importable, naming the distribution to install.

    Read from the file without unpickling, before Ultralytics would warn and try to pip-install the import name.
    """
    if path.suffix != ".pt" or not path.is_file():
        return
    for package in recorded_distributions(path):
        if importlib.util.find_spec(package) is None:
            missing = ModuleNotFoundError(f"No module named '{package}'", name=package)
            raise CommandError(explain_missing_module(missing, path))


def _check_model_yaml(name: str) -> None:
    """Refuse a model YAML without ``backbone:`` and ``head:`` lists (Ultralytics: a bare ``KeyError``)."""
    from ultralytics.nn.tasks import yaml_model_load  # finds bundled YAMLs by bare name once the plugin registered

    model_yaml = yaml_model_load(name)
    for section in ("backbone", "head"):
        if not isinstance(model_yaml.get(section), list) or not model_yaml[section]:
            what = "is empty" if not set(model_yaml) - {"yaml_file", "scale"} else f"has no '{section}:' list of layers"
            raise CommandError(f"model YAML {name}: {what}")


def check_dataset(data: str, task: str) -> None:
    """Read and check a dataset the way training will, without downloading when offline (``YOLO_OFFLINE=1``)."""
    from ultralytics.data.utils import check_cls_dataset, check_det_dataset

    offline = offline_flag()
    try:
        if task == "classify":
            if offline and not Path(data).exists():
                raise CommandError(f"dataset {data}: no such folder (and downloads are off: {offline})")
            if Path(data).exists():
                check_cls_dataset(data)
        else:
            check_det_dataset(data, autodownload=not offline)
    except CommandError:
        raise
    except Exception as e:  # FileNotFoundError, SyntaxError, ValueError, TypeError from Ultralytics' checks
        text = message_of(e).splitlines()[0].replace("❌", "").replace(" ⚠️", "").strip()
        raise CommandError(text if "dataset" in text.lower() else f"dataset {data}: {text}") from e
