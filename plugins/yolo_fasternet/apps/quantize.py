"""``yolo-fasternet quantize``: an INT8 model of a trained checkpoint, and what it costs in mAP on held-out images.

    yolo-fasternet quantize --weights runs/detect/train/weights/best.pt        # OpenVINO INT8 (NNCF), its own data
    yolo-fasternet quantize --weights best.pt --format onnx --data my.yaml     # ONNX Runtime static INT8
    yolo-fasternet quantize --weights best.pt --max-loss 1.0                   # exit 1 if more than 1 point is lost

Both INT8 paths are Ultralytics' own exports (``quantize=8``, ``int8=True`` before 8.4): OpenVINO through NNCF
post-training quantization, ONNX through ONNX Runtime's static quantization. Calibration reads the dataset's
``train`` split and the mAP is measured on its ``val`` split, so the images that set the quantization ranges are not
the ones the model is judged on. The FP32 model is exported in the same format and validated the same way, and the
command prints mAP50-95 and mAP50 of both and the change in points.

Data: ``--data``, else the dataset the checkpoint was trained on (its ``train_args``; an error if that file is not
here), else (a checkpoint that records none) the synthetic shapes set. Image size: ``--imgsz``, else the
checkpoint's training size. The exports land next to the checkpoint, as ``yolo export`` puts them (OpenVINO:
``best_int8_openvino_model/`` and ``best_openvino_model/``; ONNX: ``best_int8.onnx`` and ``best.onnx``); run them with
``yolo predict model=...`` or ``detect_yolo.py --weights``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..error_text import first_line
from .arguments import key_value_to_options, plain_description
from .command_errors import CommandError, CommandParser, UsageError, command
from .preflight import check_dataset, load_model

FORMATS = ("openvino", "onnx")


@dataclass(frozen=True)
class Accuracy:
    """Validation result of one exported model."""

    path: str
    map50_95: float
    map50: float
    inference_ms: float  # the val loop's inference time per image (batch 1, this machine)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = CommandParser(description=plain_description(__doc__), allow_abbrev=False)
    add = parser.add_argument
    add("--weights", required=True, help="trained checkpoint (.pt)")
    add("--format", choices=FORMATS, default="openvino", help="runtime of the INT8 model (default: %(default)s)")
    add("--data", help="dataset YAML: calibrated on its train split, judged on its val split (default: see above)")
    add("--imgsz", type=int, help="export and validation size (default: the checkpoint's training size)")
    add("--fraction", type=float, default=1.0, help="fraction of the train split used to calibrate (default: 1.0)")
    add("--max-loss", type=float, help="fail (exit 1) if INT8 loses more than this many mAP50-95 points")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; a bad value exits with status 2 and a one-line error."""
    parser = build_parser()
    args = parser.parse_args(key_value_to_options(argv, parser))
    if args.imgsz is not None and args.imgsz < 32:
        parser.exit(2, f"{parser.prog}: error: --imgsz must be at least 32, got {args.imgsz}\n")
    if not 0 < args.fraction <= 1:
        parser.exit(2, f"{parser.prog}: error: --fraction must be in (0, 1], got {args.fraction}\n")
    if args.max_loss is not None and not args.max_loss >= 0:  # also refuses nan
        parser.exit(2, f"{parser.prog}: error: --max-loss must be >= 0 mAP50-95 points, got {args.max_loss}\n")
    return args


def int8_arguments(fmt: str) -> dict:
    """The export arguments that ask this Ultralytics for INT8 (``quantize=8`` from 8.4, ``int8=True`` before)."""
    from ultralytics import __version__
    from ultralytics.utils import DEFAULT_CFG_DICT

    if "quantize" in DEFAULT_CFG_DICT:
        return {"quantize": 8}
    if fmt == "onnx":
        raise CommandError(f"--format onnx: Ultralytics {__version__} has no ONNX INT8 export; use --format openvino")
    return {"int8": True}


def check_runtime(fmt: str) -> None:
    """Refuse before exporting when the quantizer is not installed (Ultralytics would try to pip-install it)."""
    needed = {"openvino": ("openvino", "nncf"), "onnx": ("onnx", "onnxruntime")}[fmt]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise CommandError(
            f"--format {fmt}: {' and '.join(missing)} not installed: pip install 'yolo-fasternet[export]'"
        )


def resolve_data(args: argparse.Namespace, train_args: dict) -> str:
    """The dataset YAML: ``--data``, the checkpoint's own dataset where it exists, else the synthetic set."""
    if args.data:
        return args.data
    trained_on = train_args.get("data")
    if trained_on and Path(trained_on).is_file():
        return str(trained_on)
    if trained_on:  # calibrating on other images than the model's own would be a silent wrong result
        raise CommandError(f"--weights {args.weights} was trained on {trained_on}, which is not here; give --data")
    from .synthetic_data import make_synthetic_dataset

    return str(make_synthetic_dataset())


def check_held_out(data: str) -> None:
    """Refuse a dataset whose val split is its train split: the mAP would be measured on calibration images."""
    from ultralytics.data.utils import check_det_dataset

    splits = check_det_dataset(data, autodownload=False)
    if Path(str(splits["train"])).resolve() == Path(str(splits["val"])).resolve():
        raise CommandError(f"dataset {data}: its val split is its train split; INT8 needs held-out val images")


def export(model, fmt: str, imgsz: int, data: str, fraction: float, int8: bool) -> str:
    """Export the loaded ``model`` (FP32, or INT8 calibrated on the train split); return the exported path.

    The exporter works on a copy, so one loaded model serves both exports; they land next to its checkpoint.
    """
    kwargs = {"format": fmt, "imgsz": imgsz, "device": "cpu"}
    if int8:
        kwargs.update(int8_arguments(fmt), data=data, split="train", fraction=fraction)
    try:
        return str(model.export(**kwargs))
    except Exception as e:  # a failed conversion or calibration: one line naming the model and the step
        precision = "INT8" if int8 else "FP32"
        raise CommandError(f"{precision} {fmt} export of {model.ckpt_path} failed: {first_line(e)}") from e


def validate(path: str, data: str, imgsz: int) -> Accuracy:
    """mAP of an exported model on the dataset's val split, batch 1 on the CPU."""
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory() as project, contextlib.redirect_stdout(io.StringIO()):
        metrics = YOLO(path, task="detect").val(
            data=data, split="val", imgsz=imgsz, batch=1, device="cpu", plots=False, project=project, verbose=False
        )
    return Accuracy(path, float(metrics.box.map), float(metrics.box.map50), float(metrics.speed["inference"]))


def report(fp32: Accuracy, int8: Accuracy) -> str:
    """The console table: both models, and the INT8 change in points."""
    rows = [
        f"  {'model':<6} {'mAP50-95':>9} {'mAP50':>7} {'val ms/img':>10}  path",
        *(
            f"  {name:<6} {a.map50_95:>9.4f} {a.map50:>7.4f} {a.inference_ms:>10.1f}  {a.path}"
            for name, a in (("FP32", fp32), ("INT8", int8))
        ),
        f"  INT8 change: mAP50-95 {100 * (int8.map50_95 - fp32.map50_95):+.2f} points, "
        f"mAP50 {100 * (int8.map50 - fp32.map50):+.2f} points",
    ]
    return "\n".join(rows)


@command("yolo-fasternet quantize")
def main(argv: list[str] | None = None) -> int:
    """Export INT8 and FP32 models of a checkpoint, validate both on held-out images, print the comparison."""
    args = parse_args(argv)
    if Path(args.weights).suffix != ".pt":
        raise UsageError(
            f"--weights {args.weights}: give a trained .pt checkpoint (INT8 of random weights means nothing)"
        )
    check_runtime(args.format)
    int8_arguments(args.format)  # refuses ONNX INT8 on an Ultralytics without it, before anything is exported
    model = load_model(args.weights)
    train_args = (getattr(model, "ckpt", None) or {}).get("train_args") or {}
    if model.task != "detect":
        raise CommandError(f"--weights {args.weights}: a {model.task} model; quantize measures detection mAP")
    imgsz = args.imgsz or int(train_args.get("imgsz") or 640)
    data = resolve_data(args, train_args)
    check_dataset(data, "detect")
    check_held_out(data)
    print(f"Quantizing {args.weights} to INT8 {args.format} at imgsz {imgsz}: calibration on the train split of {data}")
    int8_path = export(model, args.format, imgsz, data, args.fraction, int8=True)
    fp32_path = export(model, args.format, imgsz, data, args.fraction, int8=False)
    print(f"Validating both on the val split of {data} (held out from calibration)", flush=True)
    fp32, int8 = validate(fp32_path, data, imgsz), validate(int8_path, data, imgsz)
    print(report(fp32, int8))
    loss = 100 * (fp32.map50_95 - int8.map50_95)
    if args.max_loss is not None and loss > args.max_loss:
        print(
            f"yolo-fasternet quantize: error: INT8 lost {loss:.2f} mAP50-95 points (--max-loss {args.max_loss})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
