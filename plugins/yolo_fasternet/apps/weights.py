"""``yolo-fasternet weights``: list the known FasterNet checkpoints, inspect one, dry-run a load, convert layouts.

yolo-fasternet weights list                     # known checkpoints and which are present
yolo-fasternet weights info FILE_OR_NAME        # layout, variant, tensor counts
yolo-fasternet weights load FILE_OR_NAME --model yolov8n-fasternet.yaml   # dry run, prints the report
yolo-fasternet weights convert FILE OUT.pth --layout timm   # rewrite the keys in the other layout
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..pretrained import (
    LAYOUTS,
    BackboneWeightsError,
    load_backbone_weights,
    manifest,
    read_backbone_checkpoint,
    timm_to_official,
)
from .arguments import key_value_to_options, plain_description
from .command_errors import CommandParser, command
from .preflight import load_model


def _cmd_list(_args) -> None:
    for entry in manifest().values():
        state = "present" if entry.path.is_file() else "absent"
        print(f"{entry.name:<13} {entry.variant.name:<3} top-1 {entry.top1:<5} {entry.timm:<18} {state}: {entry.path}")


def _cmd_info(args) -> None:
    ckpt = read_backbone_checkpoint(args.source)
    print(f"{ckpt.source}\n  layout   {ckpt.layout}\n  variant  {ckpt.describe()}")
    print(f"  tensors  {len(ckpt.tensors)} backbone, {len(ckpt.head_keys)} classification head (ignored when loading)")


def _cmd_load(args) -> None:
    report = load_backbone_weights(load_model(args.model).model, args.source)
    print(report.summary())


def _cmd_convert(args) -> None:
    out = Path(args.output)
    if out.is_dir():
        raise BackboneWeightsError(f"{out}: is a folder; give the output file name (e.g. {out / 'fasternet.pth'})")
    if not out.parent.is_dir():  # torch.save would fail only after reading and converting the source
        problem = "is a file" if out.parent.exists() else "does not exist"
        raise BackboneWeightsError(f"{out}: its folder {out.parent} {problem}")
    ckpt = read_backbone_checkpoint(args.source)
    if out.resolve() == Path(ckpt.source).resolve():
        raise BackboneWeightsError(f"{out}: refusing to overwrite the source checkpoint")
    state = {**ckpt.tensors, **ckpt.head}  # convert renames keys and drops nothing
    state = timm_to_official(state) if args.layout == "official" else state
    torch.save(state, out)
    print(f"{out}: {len(state)} tensors, {args.layout} layout ({ckpt.describe()})")


@command("yolo-fasternet weights")
def main(argv: list[str] | None = None) -> int:
    """Command line: list known checkpoints, inspect one, dry-run a load into a model YAML, or convert layouts."""
    parser = CommandParser(description=plain_description(__doc__))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="known checkpoints (weights/manifest.yaml) and whether their files are present")
    p = sub.add_parser("info", help="layout, variant and tensor counts of a checkpoint")
    p.add_argument("source", help="checkpoint file, file name in weights/, or a known name (fasternet_t0, t0)")
    p = sub.add_parser("load", help="load into a freshly built model and print the report (writes nothing)")
    p.add_argument("source", help="checkpoint file, file name in weights/, or a known name (fasternet_t0, t0)")
    p.add_argument("--model", required=True, help="model YAML, e.g. yolov8n-fasternet.yaml")
    p = sub.add_parser("convert", help="rewrite a checkpoint's keys in the timm or the official layout")
    p.add_argument("source", help="checkpoint file, file name in weights/, or a known name (fasternet_t0, t0)")
    p.add_argument("output", help="output .pth (a plain state_dict)")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="layout of the output")
    args = parser.parse_args(key_value_to_options(argv, parser))
    commands = {"list": _cmd_list, "info": _cmd_info, "load": _cmd_load, "convert": _cmd_convert}
    commands[args.command](args)  # a BackboneWeightsError becomes one line and status 1 (see command_errors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
