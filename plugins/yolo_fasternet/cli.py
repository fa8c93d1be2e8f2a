"""``yolo-fasternet``: one console command for everything the package does besides plugging into ``yolo``.

    yolo-fasternet train [--model M] [--data D] [key=value ...]   # train (default: synthetic shapes demo)
    yolo-fasternet detect --weights best.pt --source 0            # real-time detection
    yolo-fasternet ablate --models a.yaml b.yaml --seeds 0 1      # fair backbone comparisons
    yolo-fasternet zoo --scales n                                 # model table against stock
    yolo-fasternet weights list                                   # pretrained FasterNet checkpoints
    yolo-fasternet data --n-train 256                             # write the synthetic shapes dataset
    yolo-fasternet modules                                        # registered YAML modules (plugins too)
    yolo-fasternet graft yolo11n.yaml C3k2=C3k2_Faster -o my.yaml  # substitute modules in a model YAML
    yolo-fasternet quantize --weights best.pt                     # INT8 OpenVINO model and its mAP change
    yolo-fasternet prune --weights best.pt --ratio 0.3            # structured pruning, before/after measured

Every command takes ``--key value`` and Ultralytics-style ``key=value`` alike, and ``--help``. Each command's module
is imported only when that command runs.
"""

from __future__ import annotations

import difflib
import importlib
import sys

from .apps.command_errors import command

# command -> (module with main(argv), one line of help)
COMMANDS = {
    "train": ("yolo_fasternet.apps.train", "train a YOLO model (default: yolov8n-fasternet on synthetic shapes)"),
    "detect": ("yolo_fasternet.apps.detect", "real-time detection on a webcam, stream, video, image or folder"),
    "ablate": ("yolo_fasternet.apps.ablate", "train and compare models under identical settings, with a report"),
    "zoo": ("yolo_fasternet.apps.zoo", "parameters, GFLOPs and CPU latency of the bundled YAMLs against stock"),
    "weights": ("yolo_fasternet.apps.weights", "list, inspect, dry-run load and convert FasterNet checkpoints"),
    "data": ("yolo_fasternet.apps.synthetic_data", "write the deterministic synthetic shapes dataset"),
    "modules": ("yolo_fasternet.apps.modules", "every registered YAML module: like, origin, YAML arguments"),
    "graft": ("yolo_fasternet.apps.graft", "derive a model YAML from a stock or user YAML by substituting modules"),
    "quantize": ("yolo_fasternet.apps.quantize", "INT8 OpenVINO/ONNX model of a checkpoint, with its mAP change"),
    "prune": ("yolo_fasternet.apps.prune", "structurally pruned checkpoint (ratio or speed-up), before/after measured"),
}
PROG = "yolo-fasternet"


def usage() -> str:
    """The top-level help text."""
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return (
        f"usage: {PROG} <command> [options]   ({PROG} <command> --help for a command's options)\n\n"
        f"commands:\n{rows}\n\nOptions take --key value, --key=value or key=value; --verbose shows tracebacks."
    )


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command's ``main``; an unknown command exits with status 2 and close matches.

    Each command fails the same way (see ``apps.command_errors``): one line on stderr, status 1 for failed work,
    2 for a bad argument, 130 for Ctrl-C; ``--verbose`` anywhere adds the traceback.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else f"; one of: {', '.join(COMMANDS)}"
        print(f"{PROG}: error: unknown command '{name}'{hint}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    program, sys.argv[0] = sys.argv[0], f"{PROG} {name}"  # argparse names the program after sys.argv[0]
    try:
        return module.main(rest)
    finally:
        sys.argv[0] = program


if __name__ == "__main__":
    raise SystemExit(main())
