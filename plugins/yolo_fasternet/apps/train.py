"""Train a YOLO model with the stock Ultralytics API; by default yolov8n-fasternet on a synthetic shapes dataset.

    python train_yolo.py                                   # a few minutes on a laptop CPU, no download
    python train_yolo.py --model yolov8s-fasternet.yaml --data coco8.yaml --epochs 50 --imgsz 640
    python train_yolo.py --lr0 0.02 mosaic=0.5 --cos_lr    # any other Ultralytics training argument
    python train_yolo.py --backbone-weights fasternet_t0 --freeze-backbone 5   # ImageNet backbone, frozen 5 epochs

Every key of Ultralytics' default config passes through as ``--key value``, ``--key=value`` or ``key=value``, with
values converted the way the ``yolo`` command converts them; a bare ``--flag`` sets a boolean to True.
"""

from __future__ import annotations

import argparse
import difflib
import time
from pathlib import Path

from ultralytics.cfg import check_cfg, smart_value
from ultralytics.utils import DEFAULT_CFG_DICT

from ..pretrained.fine_tuning import add_fine_tuning_callbacks
from .command_errors import CommandParser, UsageError, command
from .compression.teacher import DISTILLATION_KEYS, check_teacher, check_teacher_classes, missing_distillation
from .preflight import check_dataset, check_device, check_output_folder, check_ranges, load_model
from .synthetic_data import make_synthetic_dataset

# Ultralytics arguments where this script's default differs from Ultralytics' own: small enough that the default
# run (yolov8n-fasternet from scratch on 256 synthetic images) finishes in about 4 minutes on a 2-core CPU.
DEFAULTS = {"model": "yolov8n-fasternet.yaml", "epochs": 25, "imgsz": 160, "batch": 8}
# Only for the synthetic dataset (no --data), and any of them can be overridden. Measured on 2 CPU cores, 25 epochs
# from scratch: mAP50 0.25 with Ultralytics' own settings, 0.73 with these (and nbs=batch, see synthetic_recipe).
SYNTHETIC_RECIPE = {
    "optimizer": "AdamW",  # 'auto' would pick AdamW too, but ignore lr0
    "lr0": 0.004,  # measured at 30 epochs: mAP50 0.44 with 0.0014 ('auto'), 0.65 with 0.004, 0.51 with 0.008
    "mosaic": 0.0,  # mosaic shrinks the shapes and slows a short run down (mAP50 0.23 vs 0.30, other settings equal)
}
VERBATIM_KEYS = {"name", "project"}  # like the yolo command: run names such as "1e-3" stay strings


def build_parser() -> argparse.ArgumentParser:
    """The parser for this script's own options; an option whose dest is an Ultralytics key goes to ``train()``."""
    parser = CommandParser(
        description=__doc__.split("\n")[0],
        epilog="Other Ultralytics training arguments pass through: --lr0 0.02, --cos_lr, mosaic=0.5, ... "
        "(see https://docs.ultralytics.com/modes/train/#train-settings).",
        allow_abbrev=False,  # an abbreviation such as --e would shadow pass-through keys
    )
    add = parser.add_argument
    add("--model", default=DEFAULTS["model"], help="model YAML or .pt checkpoint (default: %(default)s)")
    synthetic = ", ".join(f"{k}={v}" for k, v in SYNTHETIC_RECIPE.items())
    add(
        "--data",
        help=f"dataset YAML (default: the synthetic shapes dataset, cached, trained with {synthetic}, nbs=batch)",
    )
    add("--epochs", type=int, default=DEFAULTS["epochs"], help="training epochs (default: %(default)s)")
    add("--imgsz", type=int, default=DEFAULTS["imgsz"], help="training image size (default: %(default)s)")
    # smart_value: Ultralytics also takes -1 (auto batch) and 0.7 (fraction of GPU memory)
    add("--batch", type=smart_value, default=DEFAULTS["batch"], help="batch size (default: %(default)s)")
    add("--device", help="cpu, 0, 0,1, mps, ... (default: GPU 0 if there is one, else cpu)")
    add("--project", help="parent folder of the run folder (default: Ultralytics' runs directory)")
    add("--name", help="run folder name (default: train, train2, ...)")
    # Not Ultralytics keys (train_kwargs leaves them out): main() registers trainer callbacks for them
    add(
        "--backbone-weights",
        metavar="FILE_OR_VARIANT",
        help="load FasterNet ImageNet weights into the model's FasterNet backbone before training: a checkpoint "
        "(official or timm layout), a file in weights/, or a name such as fasternet_t0 (see weights/README.md)",
    )
    add(
        "--freeze-backbone",
        type=int,
        default=0,
        metavar="N",
        help="freeze the FasterNet backbone for the first N epochs, then train it too (default: 0; Ultralytics' "
        "freeze=8 freezes the yolov8-fasternet backbone, layers 0-7, for the whole run)",
    )
    return parser


def _fail(parser: argparse.ArgumentParser, message: str):
    """Exit with status 2 and a one-line error, as argparse does but without the usage block."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def parse_overrides(tokens: list[str], parser: argparse.ArgumentParser) -> dict:
    """Turn pass-through tokens (``--key value``, ``--key=value``, ``key=value``, ``--flag``) into a dict."""
    overrides = {}
    tokens = list(tokens)
    while tokens:
        token = tokens.pop(0)
        key, eq, value = (token[2:] if token.startswith("--") else token).partition("=")
        key = key.replace("-", "_")  # --save-period reads as save_period
        if key not in DEFAULT_CFG_DICT and key in DISTILLATION_KEYS:
            _fail(parser, missing_distillation(key))
        if key not in DEFAULT_CFG_DICT:
            close = difflib.get_close_matches(key, DEFAULT_CFG_DICT, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see --help"
            _fail(parser, f"unknown argument '{key}'{hint}")
        if not eq:
            if isinstance(DEFAULT_CFG_DICT[key], bool):  # a bare flag means True; a value may follow: --cache ram
                bare = not tokens or tokens[0].startswith("-") or "=" in tokens[0] or tokens[0] in DEFAULT_CFG_DICT
                value = "True" if bare else tokens.pop(0)
            elif token.startswith("--") and tokens and not tokens[0].startswith("--"):
                value = tokens.pop(0)
            else:
                _fail(parser, f"argument '{key}' needs a value: --{key} VALUE, --{key}=VALUE or {key}=VALUE")
        value = value.strip()
        if not value:
            _fail(parser, f"argument '{key}' has an empty value")
        overrides[key] = value if key in VERBATIM_KEYS and value.lower() != "none" else smart_value(value)
    return overrides


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; Ultralytics keys without an option of their own end up in ``args.overrides``.

    ``key=value`` for a key that does have an option (``epochs=5``) sets that option. Types and ranges are checked
    with Ultralytics' own ``check_cfg`` and ``preflight.check_ranges`` (which Ultralytics leaves unchecked, such as
    ``imgsz=-5``), so a bad value fails here, with status 2, not deep inside training.
    """
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest, parser)
    for key in [k for k in overrides if hasattr(args, k)]:
        setattr(args, key, overrides.pop(key))
    args.overrides = overrides
    if args.freeze_backbone < 0:
        _fail(parser, f"--freeze-backbone must be >= 0, got {args.freeze_backbone}")
    try:
        check_cfg(train_kwargs(args))
        check_ranges(train_kwargs(args))
    except (TypeError, ValueError, UsageError) as e:
        _fail(parser, str(e).split("\n")[0])
    return args


def train_kwargs(args: argparse.Namespace) -> dict:
    """The keyword arguments for ``YOLO.train()``: the options that are Ultralytics keys, then the overrides."""
    named = {k: v for k, v in vars(args).items() if k in DEFAULT_CFG_DICT and k != "model" and v is not None}
    return {**named, **args.overrides}


def synthetic_recipe(batch) -> dict:
    """The training settings for the synthetic dataset, for a given batch size."""
    recipe = dict(SYNTHETIC_RECIPE)
    if isinstance(batch, int) and batch > 0:
        # Ultralytics accumulates gradients up to nbs=64 images per optimizer step: 4 steps an epoch here, too few
        recipe["nbs"] = batch
    return recipe


def default_device() -> str:
    """GPU 0 when CUDA is available, else the CPU."""
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


@command("yolo-fasternet train")
def main(argv: list[str] | None = None) -> int:
    """Train, then print where the results went and the final validation metrics of best.pt.

    Everything cheap is checked before the training starts, each failure one line naming its culprit: arguments,
    device, output folder, the model (built once), the backbone weights, then the dataset.
    """
    args = parse_args(argv)
    kwargs = train_kwargs(args)
    kwargs.setdefault("device", default_device())
    check_device(kwargs["device"])
    if str(kwargs["device"]).lower() == "cpu":
        # On 2-4 cores, loader workers would compete with the model for the same cores (Ultralytics agrees: its
        # trainer also sets workers=0 on CPU); setting it here keeps the printed arguments truthful.
        kwargs.setdefault("workers", 0)
    if args.project and Path(args.project).is_absolute():  # a relative one goes under Ultralytics' runs folder
        check_output_folder(args.project, "--project")

    start = time.perf_counter()
    model = load_model(args.model)
    if args.backbone_weights or args.freeze_backbone:
        # reads and checks the weights against the model now, so a bad file fails before any training setup
        report = add_fine_tuning_callbacks(model, args.backbone_weights, args.freeze_backbone)
        if report is not None:
            print(report.summary())
    teacher = check_teacher(kwargs["distill_model"], model.task) if kwargs.get("distill_model") else None
    if "data" in kwargs:
        check_dataset(kwargs["data"], model.task)
    else:
        kwargs = {"data": str(make_synthetic_dataset()), **synthetic_recipe(kwargs["batch"]), **kwargs}
    if teacher is not None and model.task == "detect":
        check_teacher_classes(teacher, str(kwargs["distill_model"]), kwargs["data"])
    results = model.train(**kwargs)
    elapsed = time.perf_counter() - start

    trainer = model.trainer
    metrics = getattr(results, "results_dict", results) or {}  # a dict instead when DDP trained in a subprocess
    print(f"\nTraining finished in {elapsed:.0f} s")
    print(f"  save_dir   {Path(trainer.save_dir).resolve()}")
    print(f"  best.pt    {Path(trainer.best).resolve() if Path(trainer.best).exists() else 'not saved'}")
    for key in ("precision", "recall", "mAP50", "mAP50-95"):
        value = metrics.get(f"metrics/{key}(B)")  # (B): box metrics, which every detection-based task reports
        print(f"  {key:<10} {'n/a' if value is None else f'{value:.4f}'}")
    if Path(trainer.best).exists():
        print(next_steps(Path(trainer.best).resolve(), trainer.data, kwargs["data"], kwargs.get("imgsz")))
    return 0


def next_steps(best: Path, data: dict, data_yaml: str, imgsz) -> str:
    """The commands to try next with the trained model: predict on an image, detect on a video, validate."""
    image = "IMAGE.jpg"
    val = data.get("val") if isinstance(data, dict) else None
    folder = Path(val[0] if isinstance(val, list) else val) if val else None
    if folder is not None and folder.is_dir():
        image = str(next((f for f in sorted(folder.iterdir()) if f.suffix.lower() in (".jpg", ".png")), image))
    size = f" imgsz={imgsz}" if imgsz else ""
    return (
        "\nNext, try:\n"
        f"  yolo predict model={best} source={image}{size}\n"
        f"  python detect_yolo.py --weights {best} --source VIDEO.mp4{' --imgsz ' + str(imgsz) if imgsz else ''}"
        "   # or --source 0 for a webcam\n"
        f"  yolo val model={best} data={data_yaml}{size}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
