"""The model zoo table: every bundled YAML at every scale next to its stock Ultralytics counterpart.

    yolo-fasternet zoo                      # all YAMLs, all scales, 640 px, CPU latency
    yolo-fasternet zoo --scales n --runs 20
    yolo-fasternet zoo --no-latency         # sizes only (exact, fast)
    yolo-fasternet zoo --models yolov8n-timm-resnet18.yaml yolov8n-timm-efficientnet_b0.yaml   # named models

Latency is the median wall time of a batch-1 forward pass of the fused model in eval mode, timed on this machine's
CPU, the plugin model and its stock counterpart alternating run by run so both see the same machine state.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
from dataclasses import dataclass

import torch
from ultralytics import YOLO
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import model_info

from ..integration.yaml_lookup import cfg_dir
from ..nn.rpe_attention import attention_gflops
from ..nn.saconv import saconv_gflops
from .arguments import key_value_to_options
from .command_errors import CommandParser, command
from .preflight import load_model

# What each plugin YAML stands in for: the stock YAML name is the plugin name with its plugin part removed.
_PLUGIN_PART = re.compile(
    r"-(fasternet|partialnet|spconv|c2f-faster|c3k2-faster|saconv|timm-[^-/]+?(-pretrained)?(?=\.ya?ml$))"
)


def scaled_name(yaml_name: str, scale: str) -> str:
    """``yolov8-fasternet-seg.yaml`` at scale ``n`` -> ``yolov8n-fasternet-seg.yaml`` (Ultralytics' naming)."""
    return re.sub(r"^(yolo(?:v)?\d+)", rf"\g<1>{scale}", yaml_name, count=1)


# Ultralytics ships the semantic and depth tasks for YOLO26 only, so YOLOv8/YOLO11 variants compare with YOLO26's.
_YOLO26_ONLY_TASK = re.compile(r"-(sem|depth)\.ya?ml$")


def stock_counterpart(yaml_name: str, scale: str) -> str:
    """The stock Ultralytics YAML of the same family, task and scale: ``yolov8n-fasternet-seg`` -> ``yolov8n-seg``.

    Semantic and depth exist in Ultralytics for YOLO26 only: ``yolov8-fasternet-sem`` -> ``yolo26n-sem``.
    """
    return scaled_name(_stock_name(yaml_name), scale)


def _stock_name(yaml_name: str) -> str:
    """``yaml_name`` with its plugin part removed (a scale letter in it stays), YOLO26 for the YOLO26-only tasks."""
    stock = _PLUGIN_PART.sub("", yaml_name)
    if _YOLO26_ONLY_TASK.search(stock):
        stock = re.sub(r"^yolo(?:v)?\d+", "yolo26", stock, count=1)
    return stock


@dataclass
class Row:
    """One measured model."""

    name: str
    layers: int
    params: int
    gflops: float
    latency_ms: float | None = None


def build(name: str, imgsz: int) -> tuple[torch.nn.Module, Row]:
    """Build a model from a YAML name (bundled or stock) and measure its size; returns the fused eval model too."""
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # classification models log a summary line even with verbose=False
    try:
        model = YOLO(name, verbose=False).model
        # layers, parameters and GFLOPs exactly as the installed Ultralytics prints them in its model summary
        # (8.4.x counts leaf modules, 8.3.x every module)
        layers, params, _, gflops = model_info(model, verbose=True, imgsz=imgsz)
    finally:
        LOGGER.setLevel(level)
    # THOP misses SAConv's functional convolutions and PartialNet's attention products
    row = Row(name[:-5], layers, params, gflops + saconv_gflops(model, imgsz) + attention_gflops(model, imgsz))
    model.fuse(verbose=False).eval()
    return model, row


@torch.inference_mode()
def time_pair(a: torch.nn.Module, b: torch.nn.Module, imgsz: int, runs: int, warmup: int = 5) -> tuple[float, float]:
    """Median milliseconds of a batch-1 forward of ``a`` and ``b``, alternating run by run."""
    x = torch.rand(1, 3, imgsz, imgsz)
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(warmup + runs):
        for model, sink in ((a, times[0]), (b, times[1])):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                sink.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times[0]), statistics.median(times[1])


def _pairs(scales: str, patterns: list[str], names: list[str]):
    """(model, stock model) names: the given names (scale in the name), else bundled YAMLs matching any pattern."""
    if names:
        yield from ((name, _stock_name(name)) for name in names)
        return
    for path in sorted(cfg_dir().glob("*.yaml")):
        if any(p in path.name for p in patterns or [""]):
            yield from ((scaled_name(path.name, s), stock_counterpart(path.name, s)) for s in scales)


def zoo_rows(scales: str, imgsz: int, runs: int, latency: bool, patterns=(), names=()):
    """Yield (ours, stock) row pairs, or (yaml name, reason) where a model cannot be built here."""
    for name, stock_name in _pairs(scales, list(patterns), list(names)):
        try:
            ours, ours_row = build(name, imgsz)
            stock, stock_row = build(stock_name, imgsz)
        except RuntimeError as e:  # e.g. a YOLO26 head on an Ultralytics older than 8.4.0
            yield name, str(e).split(";")[0]
            continue
        if latency:
            ours_row.latency_ms, stock_row.latency_ms = time_pair(ours, stock, imgsz, runs)
        yield ours_row, stock_row


@command("yolo-fasternet zoo")
def main(argv: list[str] | None = None) -> None:
    """Print the zoo as one Markdown table."""
    parser = CommandParser(description="Build every bundled YAML at every scale; compare with stock.")
    parser.add_argument("--scales", default="nsmlx", help="scale letters to build (default: %(default)s)")
    parser.add_argument("--imgsz", type=int, default=640, help="image size for GFLOPs and latency")
    parser.add_argument("--runs", type=int, default=10, help="timed forward passes per model (median reported)")
    parser.add_argument("--no-latency", action="store_true", help="sizes only")
    parser.add_argument(
        "--models",
        nargs="+",
        default=[],
        help="YAML names to build (yolov8n-timm-resnet18.yaml: scale in the name, each against its stock model), "
        "or text: only bundled YAMLs whose name contains it",
    )
    args = parser.parse_args(key_value_to_options(argv, parser))
    if not args.scales or not set(args.scales) <= set("nsmlx"):
        parser.error(f"--scales takes letters from nsmlx, got {args.scales!r}")
    if args.imgsz < 32 or args.runs < 1:
        parser.error(f"--imgsz must be >= 32 and --runs >= 1, got --imgsz {args.imgsz} --runs {args.runs}")
    names = [m for m in args.models if m.endswith((".yaml", ".yml"))]
    for name in names:  # a named YAML that is missing or does not build: one line, before the table starts
        load_model(name)
    patterns = [m for m in args.models if m not in names]
    for pattern in patterns:
        if not any(pattern in path.name for path in cfg_dir().glob("*.yaml")):
            parser.error(f"--models {pattern!r}: no bundled YAML name contains it (see {cfg_dir()})")

    latency = not args.no_latency
    if latency:
        print(f"imgsz {args.imgsz}, batch 1, fused, {torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    else:
        print(f"imgsz {args.imgsz} (GFLOPs), sizes only")
    cols = (
        "| model | layers | params (M) | GFLOPs | stock model | stock params (M) | stock GFLOPs | params x | GFLOPs x |"
    )
    print(cols + (" latency ms | stock ms | latency x |" if latency else ""))
    print("|---" * (9 + 3 * latency) + "|")
    for result in zoo_rows(args.scales, args.imgsz, args.runs, latency, patterns, names):
        if isinstance(result[0], str):
            print(f"| {result[0][:-5]} | not built here: {result[1]} |")
            continue
        ours, stock = result
        cells = [ours.name, ours.layers, f"{ours.params / 1e6:.2f}", f"{ours.gflops:.1f}", stock.name]
        cells += [f"{stock.params / 1e6:.2f}", f"{stock.gflops:.1f}"]
        cells += [f"{ours.params / stock.params:.2f}", f"{ours.gflops / stock.gflops:.2f}"]
        if latency:
            cells += [f"{ours.latency_ms:.1f}", f"{stock.latency_ms:.1f}", f"{ours.latency_ms / stock.latency_ms:.2f}"]
        print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
