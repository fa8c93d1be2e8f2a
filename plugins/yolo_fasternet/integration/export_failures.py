"""The layer a failed export failed on: one line naming the format, the layer and its module.

When the stock exporter fails (``Exporter.__call__`` raises, typically a converter refusing an op), registration's
wrapper (``naming_the_layer``) converts each plugin layer of the model alone, fused as the exporter fuses it, with the
inputs it receives at the export's image size, through the same converter, and raises ``ExportFormError`` naming the
first layer that fails alone::

    coreml export: model layer 2 (SliceWriter) does not convert: <the converter's first line>

Only the layers built from registered modules (yolo-fasternet's and other packages') are tried, and only when the
export failed, so a working export costs nothing. If every one converts alone (the failure lies elsewhere: a stock
layer, the head, a missing package, an argument), the original exception goes on unchanged. Formats with a trial:
TorchScript, ONNX, OpenVINO, MNN, NCNN, CoreML, LiteRT. An NCNN file that converts and then loads nothing is not a
failed export (the converter does not raise): ``docs/deploying.md`` lists the cases found and their export forms.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import io
import re
import tempfile
from pathlib import Path

import torch
from torch import nn

_MARK = "__yolo_fasternet__"
# Ultralytics' format aliases -> the converter tried per layer.
_ALIASES = {"tflite": "litert", "mlmodel": "coreml", "mlpackage": "coreml"}


class ExportFormError(RuntimeError):
    """An export failed on one layer: the message names the format, the layer index and its module."""


class _ListInput(nn.Module):
    """A layer that takes a list (``Concat``-like), called with its tensors as positional arguments (as tracers do)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, *xs):
        return self.layer(list(xs))


def _onnx_bytes(module: nn.Module, inputs: tuple, opset: int | None) -> bytes:
    kwargs = {"opset_version": opset} if opset else {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript-based exporter, as Ultralytics uses it
    buffer = io.BytesIO()
    torch.onnx.export(module, inputs, buffer, **kwargs)
    return buffer.getvalue()


def _torchscript(module, inputs, folder, opset):
    torch.jit.trace(module, inputs, strict=False)


def _onnx(module, inputs, folder, opset):
    _onnx_bytes(module, inputs, opset)


def _openvino(module, inputs, folder, opset):
    import openvino

    openvino.convert_model(module, example_input=inputs)


def _mnn(module, inputs, folder, opset):
    from MNN.tools import mnnconvert

    onnx_file = Path(folder) / "layer.onnx"
    onnx_file.write_bytes(_onnx_bytes(module, inputs, opset))
    output = Path(folder) / "layer.mnn"
    mnnconvert.convert(["", "-f", "ONNX", "--modelFile", str(onnx_file), "--MNNModel", str(output)])
    if not output.is_file() or output.stat().st_size == 0:
        raise RuntimeError("MNN wrote no model")


def _ncnn(module, inputs, folder, opset):
    import ncnn
    import pnnx

    names = {"ptpath": "layer.pt", "pnnxparam": "layer.pnnx.param", "pnnxbin": "layer.pnnx.bin"}
    names.update(pnnxpy="layer_pnnx.py", pnnxonnx="layer.pnnx.onnx", ncnnparam="layer.ncnn.param")
    names.update(ncnnbin="layer.ncnn.bin", ncnnpy="layer_ncnn.py")
    files = {key: str(Path(folder) / name) for key, name in names.items()}
    with contextlib.suppress(SyntaxError, ImportError, AttributeError):
        pnnx.export(module, inputs=inputs, **files)  # it ends by importing the PyTorch module it wrote: not NCNN's
    param = Path(files["ncnnparam"])
    if not param.is_file():
        raise RuntimeError("pnnx wrote no NCNN model")
    unknown = ops_without_ncnn_layer(param)
    if unknown:
        raise RuntimeError(f"op {', '.join(unknown)} has no NCNN layer (ncnn loads nothing)")
    net = ncnn.Net()
    if net.load_param(str(param)) != 0 or net.load_model(files["ncnnbin"]) != 0:
        raise RuntimeError("ncnn cannot load the converted layer")


def ops_without_ncnn_layer(param: Path) -> list[str]:
    """The layer types of an NCNN ``.param`` file that this ncnn cannot create (pnnx keeps ops it cannot map)."""
    import ncnn

    rows = [line.split() for line in Path(param).read_text().splitlines()[2:]]
    return sorted({row[0] for row in rows if row and ncnn.layer_to_index(row[0]) < 0})


def _coreml(module, inputs, folder, opset):
    import coremltools

    traced = torch.jit.trace(module, inputs, strict=False)
    coremltools.convert(
        traced, inputs=[coremltools.TensorType(shape=tuple(x.shape)) for x in inputs], convert_to="mlprogram"
    )


def _litert(module, inputs, folder, opset):
    import litert_torch

    litert_torch.convert(module, inputs)


TRIALS = {
    "torchscript": _torchscript,
    "onnx": _onnx,
    "openvino": _openvino,
    "mnn": _mnn,
    "ncnn": _ncnn,
    "coreml": _coreml,
    "litert": _litert,
}


def plugin_layers(model: nn.Module, classes: tuple[type, ...]) -> list[tuple[int, nn.Module]]:
    """``(index, layer)`` of each top-level layer of an Ultralytics model that is, or contains, a registered module."""
    layers = getattr(model, "model", None)
    if not isinstance(layers, nn.Sequential) or not classes:
        return []
    return [(i, layer) for i, layer in enumerate(layers) if any(isinstance(m, classes) for m in layer.modules())]


def layer_inputs(model: nn.Module, layers: list[nn.Module], imgsz: tuple[int, int]) -> dict[int, tuple]:
    """What each of ``layers`` receives in one forward pass of ``model`` at ``imgsz`` (by ``id``), as a tuple."""
    seen: dict[int, tuple] = {}

    def keep(module, args):
        x = args[0]
        seen[id(module)] = tuple(x) if isinstance(x, (list, tuple)) else (x,)

    hooks = [layer.register_forward_pre_hook(keep) for layer in layers]
    try:
        with torch.no_grad():
            model(torch.rand(1, 3, *imgsz, generator=torch.Generator().manual_seed(0)))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def failing_layer(model: nn.Module, fmt: str, imgsz, classes: tuple[type, ...], opset=None) -> str | None:
    """The one line naming the first plugin layer of ``model`` that ``fmt``'s converter refuses alone, or None."""
    trial = TRIALS.get(_ALIASES.get(fmt, fmt))
    if trial is None:
        return None
    size = (int(imgsz), int(imgsz)) if isinstance(imgsz, (int, float)) else (int(imgsz[0]), int(imgsz[-1]))
    fused = copy.deepcopy(model).float().cpu().eval()
    if hasattr(fused, "fuse"):
        fused = fused.fuse(verbose=False)
    candidates = plugin_layers(fused, classes)
    inputs = layer_inputs(fused, [layer for _, layer in candidates], size)
    for i, layer in candidates:
        args = inputs.get(id(layer))
        if args is None:
            continue
        single = layer if len(args) == 1 and not _takes_list(layer) else _ListInput(layer)
        with tempfile.TemporaryDirectory(prefix="yolo-fasternet-layer-") as folder:
            try:
                trial(single.eval(), args, folder, opset)
            except ImportError:  # the converter itself is not installed: nothing to say about the layers
                return None
            except Exception as e:
                return f"{fmt} export: model layer {i} ({type(layer).__name__}) does not convert: {_cause(e)}"
    return None


def _cause(e: Exception) -> str:
    """The converter's line that names the op (``aten::histc``, ``op 'histc'``), else its first line, else its type."""
    lines = [line.strip(" -") for line in str(e).splitlines() if line.strip(" -")]
    naming = [line for line in lines if re.search(r"aten[:.]|\bop\b|operator", line)]
    return (naming or lines or [type(e).__name__])[0]


def _takes_list(layer: nn.Module) -> bool:
    """Whether Ultralytics calls this layer with a list (its ``f`` names several inputs)."""
    return isinstance(getattr(layer, "f", -1), (list, tuple))


def naming_the_layer(original, registered_classes):
    """Wrap ``Exporter.__call__``: when it fails, raise ``ExportFormError`` naming the plugin layer that fails alone."""

    @functools.wraps(original)
    def call(self, model=None):
        fmt = str(getattr(self.args, "format", "torchscript")).lower()

        def blame():
            try:
                opset = getattr(self.args, "opset", None)
                return failing_layer(model, fmt, getattr(self.args, "imgsz", 640), registered_classes(), opset)
            except Exception:  # the diagnosis itself failed: the export's own error is the one to see
                return None

        try:
            path = original(self, model)
        except Exception as e:
            line = None if isinstance(e, ExportFormError) or not isinstance(model, nn.Module) else blame()
            if line is None:
                raise
            error = ExportFormError(line)
            error.converter_error = e  # kept for debugging; not chained, so no converter traceback is printed
            raise error from None
        param = Path(str(path)) / "model.ncnn.param" if fmt == "ncnn" and isinstance(path, (str, Path)) else None
        unknown = ops_without_ncnn_layer(param) if param is not None and param.is_file() else []
        if unknown:  # pnnx "succeeded" and ncnn will load nothing (ultralytics#15687): say so now, and where
            line = blame() or f"ncnn export: op {', '.join(unknown)} has no NCNN layer (ncnn loads nothing)"
            raise ExportFormError(f"{line}; {path} was written and cannot run")
        return path

    setattr(call, _MARK, True)
    return call


def install(exporter_module, registered_classes) -> None:
    """Wrap ``exporter_module.Exporter.__call__`` once (registration calls this when the exporter is imported)."""
    exporter = getattr(exporter_module, "Exporter", None)
    if exporter is not None and not getattr(exporter.__call__, _MARK, False):
        exporter.__call__ = naming_the_layer(exporter.__call__, registered_classes)
