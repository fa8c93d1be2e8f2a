"""``yolo-fasternet prune``: a structurally pruned copy of a trained detection checkpoint, smaller and faster.

    yolo-fasternet prune --weights best.pt --ratio 0.3            # remove 30% of every prunable channel group
    yolo-fasternet prune --weights best.pt --speed-up 1.5         # prune until GFLOPs fall 1.5x
    yolo-fasternet prune --weights best.pt --latency-speed-up 1.3 # prune until measured CPU latency falls 1.3x
    yolo train model=best-pruned.pt data=my.yaml epochs=30        # fine-tune it with the stock CLI

Channels are removed with Torch-Pruning's DepGraph and ranked by group norm (data-free: the checkpoint alone is
enough); the head's outputs are never pruned and each module's own rule is honoured (see ``docs/compressing.md``).
The command prints what changed per layer and the measured before/after: parameters, GFLOPs and CPU latency (median
of batch-1 runs of both fused models, alternating in this one process); a latency target is checked the same way
after every pruning step. The output (default ``<name>-pruned.pt``
next to the input) is written to a temporary file and renamed, so an interrupted prune leaves nothing half-written;
its ``model.yaml`` records the pruned widths, so ``yolo train/val/predict/export model=<it>`` use the pruned model.
Needs ``pip install 'yolo-fasternet[prune]'`` (torch-pruning).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path

from .arguments import key_value_to_options, plain_description
from .command_errors import CommandError, CommandParser, UsageError, command


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = CommandParser(description=plain_description(__doc__), allow_abbrev=False)
    add = parser.add_argument
    add("--weights", required=True, help="trained detection checkpoint (.pt)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--ratio", type=float, help="share of each prunable channel group to remove, in (0, 1)")
    target.add_argument("--speed-up", type=float, help="prune until the GFLOPs fall by this factor (> 1)")
    target.add_argument(
        "--latency-speed-up", type=float, help="prune until the measured CPU latency falls by this factor (> 1)"
    )
    add("--output", help="pruned checkpoint to write (default: <weights name>-pruned.pt next to it)")
    add("--imgsz", type=int, default=640, help="image size of the GFLOPs and latency figures (default: %(default)s)")
    add(
        "--runs",
        type=int,
        default=10,
        help="timed forward passes per model, for the table and each latency step (median; default %(default)s)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; a bad value exits with status 2 and a one-line error."""
    parser = build_parser()
    args = parser.parse_args(key_value_to_options(argv, parser))
    if args.ratio is not None and not 0 < args.ratio < 1:  # also refuses nan
        parser.exit(2, f"{parser.prog}: error: --ratio must be between 0 and 1 (exclusive), got {args.ratio}\n")
    for option, value in (("--speed-up", args.speed_up), ("--latency-speed-up", args.latency_speed_up)):
        if value is not None and not (value > 1 and math.isfinite(value)):
            parser.exit(2, f"{parser.prog}: error: {option} must be a factor above 1, got {value}\n")
    if args.imgsz < 32:
        parser.exit(2, f"{parser.prog}: error: --imgsz must be at least 32, got {args.imgsz}\n")
    if args.runs < 1:
        parser.exit(2, f"{parser.prog}: error: --runs must be at least 1, got {args.runs}\n")
    return args


def output_path(args: argparse.Namespace) -> Path:
    """Where the pruned checkpoint goes; refused if it is the input itself or its folder cannot be written."""
    out = Path(args.output) if args.output else Path(args.weights).with_name(f"{Path(args.weights).stem}-pruned.pt")
    if out.suffix != ".pt":
        raise UsageError(f"--output {out}: must end in .pt")
    if out.exists() and out.resolve() == Path(args.weights).resolve():
        raise UsageError(f"--output {out}: is the input checkpoint; give another name")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise CommandError(f"--output {out}: folder {out.parent} does not exist or is not writable")
    return out


def save_atomically(checkpoint: dict, out: Path) -> None:
    """``torch.save`` into a temporary file beside ``out``, then rename it: never a half-written ``out``."""
    import torch

    fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        torch.save(checkpoint, temporary)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def pruned_checkpoint(source: dict, model, changes: dict, weights: str, target: str) -> dict:
    """A checkpoint Ultralytics loads and fine-tunes: the pruned model (half, as Ultralytics saves), its YAML with
    the ``pruned`` entry, the source's training arguments; no optimizer or EMA state (they have the old shapes)."""
    import copy

    from ..integration.pruned_architecture import KEY

    model = copy.deepcopy(model).half()
    model.yaml = {**model.yaml, KEY: changes}
    checkpoint = {k: v for k, v in source.items() if k not in ("model", "ema", "optimizer", "updates")}
    checkpoint.update(model=model, ema=None, optimizer=None, epoch=-1, date=datetime.now().isoformat())
    checkpoint["pruned_from"] = {"weights": str(weights), "target": target}
    return checkpoint


def measure(unpruned, pruned, imgsz: int, runs: int) -> list[str]:
    """The before/after table: parameters, GFLOPs, CPU latency of both fused models timed side by side."""
    import torch

    from .compression.channel_pruning import fused_copy, gflops
    from .zoo import time_pair

    params = [sum(p.numel() for p in m.parameters()) for m in (unpruned, pruned)]
    flops = [gflops(m, imgsz) for m in (unpruned, pruned)]
    with torch.no_grad():
        latency = time_pair(fused_copy(unpruned), fused_copy(pruned), imgsz, runs)
    rows = [f"  {'':<12} {'before':>10} {'after':>10} {'after/before':>13}"]
    for name, (a, b), fmt in (
        ("params", params, "{:,}"),
        ("GFLOPs", flops, "{:.2f}"),
        (f"CPU ms @{imgsz}", latency, "{:.1f}"),
    ):
        rows.append(f"  {name:<12} {fmt.format(a):>10} {fmt.format(b):>10} {b / a if a else float('nan'):>13.3f}")
    return rows


@command("yolo-fasternet prune")
def main(argv: list[str] | None = None) -> int:
    """Check everything cheap first, prune, print the per-layer changes and the measurements, write atomically."""
    args = parse_args(argv)
    if Path(args.weights).suffix != ".pt":
        raise UsageError(f"--weights {args.weights}: give a trained .pt checkpoint")
    if not Path(args.weights).is_file():
        raise CommandError(f"--weights {args.weights}: no such file")
    out = output_path(args)
    if importlib.util.find_spec("torch_pruning") is None:
        raise CommandError("torch-pruning is not installed: pip install 'yolo-fasternet[prune]'")
    from .compression.channel_pruning import PruningError, layer_changes, prune
    from .compression.model_task import model_task
    from .preflight import load_model

    yolo = load_model(args.weights)
    task = model_task(yolo.model)
    if task != "detect" or not hasattr(yolo.model, "yaml"):
        raise CommandError(f"--weights {args.weights}: a {task} model; prune handles detection checkpoints")
    latency = args.latency_speed_up is not None
    speed_up = args.latency_speed_up if latency else args.speed_up
    target = f"ratio {args.ratio}" if args.ratio is not None else f"{'latency ' * latency}speed-up {speed_up}"
    print(f"Pruning {args.weights} ({target}; group-norm importance, head outputs kept)", flush=True)
    try:
        result = prune(yolo.model, args.imgsz, args.ratio, speed_up, latency=latency, runs=args.runs)
    except PruningError as e:
        raise CommandError(str(e)) from e
    if latency:
        print(f"Target met at per-group ratio {result.ratio:.3f}: CPU latency {result.speed_up:.2f}x lower (measured)")
    for line in result.notices:
        print(f"  notice: {line}")
    changes = layer_changes(yolo.model, result.model)
    print(f"{len(changes)} layers changed (channels before -> after):")
    for line in changes:
        print(f"  {line}")
    print(*measure(yolo.model, result.model, args.imgsz, args.runs), sep="\n")
    save_atomically(pruned_checkpoint(yolo.ckpt or {}, result.model, result.changes, args.weights, target), out)
    print(f"Wrote {out} (per-group ratio {result.ratio:.3f}); fine-tune it: yolo train model={out} data=...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
