"""FasterNet against stock YOLO, from one operator to a training step, measured side by side in one run.

    python benchmarks/performance.py                          # everything, about 10 minutes on 2 CPU cores
    python benchmarks/performance.py --sections scales        # the per-scale headline only
    python benchmarks/performance.py --sections operator,block --runs 50
    python benchmarks/performance.py --sections model --batches 1 --no-train

Sections (each prints a Markdown table):

- ``machine``: CPU, threads, the theoretical fp32 peak (cores x clock x SIMD lanes x 2 for the FMA) and a measured
  ceiling (a large matrix multiply).
- ``operator``: PConv forms (split_cat, slicing, preallocated, and PConv folded into the following 1x1 conv) against
  a depthwise 3x3 and a full 3x3 conv, at the FasterNet-T0 stage shapes of a 640 px input, NCHW and channels-last,
  fp32 CPU; every form is checked equal to split_cat before it is timed.
- ``block``: a FasterNet block and C2f_Faster (stock C2f as reference): unfused, fused NCHW, and the fused form
  ``model.fuse()`` selects (channels-last on CPU).
- ``model``: the FasterNet detectors against yolov8n / yolo11n: PyTorch eager fp32 (fused, as Ultralytics runs them)
  and ONNX Runtime, batch 1 and 8, 640 px; on a GPU, when there is one, fp32 and fp16 at batch 1 and 32; the train
  step (forward, loss, backward, optimizer step). Stock models are also timed channels-last, as a reference that
  separates the memory-layout effect from the architecture.
- ``profile``: per-layer milliseconds and GFLOP/s of yolov8n-fasternet and yolov8n: where the time goes.
- ``scales``: yolov8{n,s,m,l,x}-fasternet against yolov8{n,s,m,l,x}, batch 1, 640 px: GFLOPs, PyTorch eager and ONNX
  Runtime latency, the ratio to stock per scale (the headline: FasterNet pays off from s upward) and the targets.
  ``--scales n,s`` limits it; m, l and x take fewer repetitions (an x-scale inference takes seconds).
- ``partialnet``: yolov8{n,s,m}-partialnet against yolov8{n,s,m} and yolov8{n,s,m}-fasternet, batch 1, 640 px:
  GFLOPs, PyTorch eager and ONNX Runtime latency and both ratios, three models alternating run by run; the target
  (PartialNet-T0 exists for it) is yolov8n-partialnet at most 0.85x yolov8n in PyTorch. ``--scales`` limits it too.
- ``onnx_pconv``: the n/s/m FasterNet detectors exported with each candidate ONNX form of PConv (``split_cat``;
  ``grouped``: one grouped 3x3 conv with identity kernels on the untouched groups; ``residual_convs``: a selecting
  1x1, the 3x3 minus identity and an embedding 1x1 added to the input, no Split/Concat), each checked against
  PyTorch, then timed in ONNX Runtime.

The GPU rows are written but have not run yet: no GPU was available where this script was developed.

Every timing is a median over ``--runs`` repetitions after ``--warmup`` ones, the compared variants alternating run by
run (in a rotating order) so all see the same machine state.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))  # a checkout works without installing

from ultralytics import YOLO  # noqa: E402
from ultralytics.cfg import get_cfg  # noqa: E402
from ultralytics.nn.modules import C2f  # noqa: E402
from ultralytics.utils import LOGGER  # noqa: E402
from ultralytics.utils.torch_utils import get_flops  # noqa: E402

import yolo_fasternet  # noqa: E402,F401 - registers the plugin modules
from yolo_fasternet import C2f_Faster, FasterNetBlock, PConv  # noqa: E402
from yolo_fasternet.integration.inference_form import fused_copy  # noqa: E402
from yolo_fasternet.nn.rpe_attention import attention_gflops  # noqa: E402

CL = torch.channels_last
MODELS = {  # model -> its stock counterpart (None: is stock)
    "yolov8n-fasternet": "yolov8n",
    "yolov8n-c2f-faster": "yolov8n",
    "yolo11n-fasternet": "yolo11n",
    "yolov8n": None,
    "yolo11n": None,
}
TARGETS = {"yolov8n-fasternet": 0.70, "yolov8n-c2f-faster": 0.80}  # latency x stock, CPU, batch 1, fused
T0_STAGES = ((40, 160), (80, 80), (160, 40), (320, 20))  # (channels, feature size) of FasterNet-T0 at 640 px
C2F_FASTER_LAYERS = ((32, 160, 1), (64, 80, 2), (128, 40, 2), (256, 20, 1))  # yolov8n-c2f-faster: (c, size, n)


def timed(fns: dict[str, Callable[[], object]], runs: int, warmup: int, sync: Callable[[], None] = lambda: None):
    """Median milliseconds of each callable, all of them alternating run by run, the order rotating every run."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for i in range(warmup + runs):
        shift = i % len(names)  # no callable always runs first (after the others' cache and allocator traffic)
        for name in names[shift:] + names[:shift]:
            fn = fns[name]
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(s) for name, s in samples.items()}


def table(header: list[str], rows: list[list]) -> None:
    """Print a Markdown table."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in row) + " |")
    print(flush=True)


def gflops_per_s(flops: float, ms: float) -> float:
    return flops / ms / 1e6


# ----------------------------------------------------------------------------------------------------- machine
def cpu_facts() -> dict:
    """CPU model, nominal clock and SIMD width from /proc/cpuinfo (Linux); empty values elsewhere."""
    facts = {"model": platform.processor() or "unknown", "mhz": 0.0, "lanes": 4}
    with contextlib.suppress(OSError):
        info = Path("/proc/cpuinfo").read_text()
        for line in info.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                facts["model"] = value.strip()
            elif key.strip() == "cpu MHz" and not facts["mhz"]:
                facts["mhz"] = float(value)
            elif key.strip() == "flags":
                flags = value.split()
                facts["lanes"] = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    return facts


def section_machine(args) -> None:
    facts = cpu_facts()
    cores = os.cpu_count() or 1
    peak = cores * facts["mhz"] / 1e3 * facts["lanes"] * 2
    n = 2048
    a, b = torch.rand(n, n), torch.rand(n, n)
    ms = timed({"gemm": lambda: a @ b}, args.runs, args.warmup)["gemm"]
    print("## Machine\n")
    table(
        ["CPU", "cores", "torch threads", "nominal clock GHz", "fp32 lanes", "peak GFLOP/s", "measured GEMM GFLOP/s"],
        [
            [
                facts["model"],
                cores,
                torch.get_num_threads(),
                f"{facts['mhz'] / 1e3:.2f}",
                facts["lanes"],
                f"{peak:.0f}",
                f"{gflops_per_s(2 * n**3, ms):.0f}",
            ]
        ],
    )
    print(
        "Peak = cores x nominal clock x fp32 SIMD lanes x 2 (one FMA per cycle). A measured GEMM above it means the\n"
        "cores run above the nominal clock or issue more than one FMA per cycle.\n"
        f"torch {torch.__version__}, Python {platform.python_version()}\n"
    )


# ---------------------------------------------------------------------------------------------------- operator
class FoldedPConvExpand(nn.Module):
    """PConv folded into the following 1x1 conv: ``W @ cat(K * x1, x2) = (W1 o K) * x1 + W2 @ x2``, no concat."""

    def __init__(self, pconv: PConv, expand: nn.Conv2d):
        super().__init__()
        c = pconv.dim_conv
        w1, w2 = expand.weight[:, :c, 0, 0], expand.weight[:, c:]
        self.dim_conv = c
        self.w3x3 = nn.Parameter(torch.einsum("oc,cikl->oikl", w1, pconv.conv.weight).detach())
        self.w1x1 = nn.Parameter(w2.detach().clone())

    def forward(self, x):
        x1, x2 = x[:, : self.dim_conv], x[:, self.dim_conv :]
        return torch.conv2d(x1, self.w3x3, padding=1) + torch.conv2d(x2, self.w1x1)


def operator_calls(pconv, expand, folded, dw, full, x) -> dict[str, Callable[[], torch.Tensor]]:
    """The operators compared at one shape and layout."""
    return {
        "PConv split_cat": lambda: pconv.forward_split_cat(x),
        "PConv slicing": lambda: pconv.forward_slicing(x),
        "PConv preallocated": lambda: pconv.forward_preallocated(x),
        "DWConv 3x3": lambda: dw(x),
        "Conv 3x3": lambda: full(x),
        "Conv 1x1 c->2c": lambda: expand(x),
        "PConv -> 1x1": lambda: expand(pconv.forward_split_cat(x)),
        "PConv folded into 1x1": lambda: folded(x),
    }


def operator_ratios(op: str, ms: dict[str, float]) -> list[str]:
    """The operator's time against DWConv and a full 3x3 conv (the folded PConv: against PConv -> 1x1)."""
    if op == "PConv folded into 1x1":
        return [f"{ms[op] / ms['PConv -> 1x1']:.2f} (x unfolded)", ""]
    if "1x1" in op:
        return ["", ""]
    return [f"{ms[op] / ms['DWConv 3x3']:.2f}", f"{ms[op] / ms['Conv 3x3']:.2f}"]


def section_operator(args) -> None:
    print("## Operators: PConv forms against DWConv and a full 3x3 conv (fp32 CPU, batch 1)\n")
    rows = []
    for c, size in T0_STAGES:
        hw = size * size
        pconv = PConv(c).eval()
        expand = nn.Conv2d(c, 2 * c, 1, bias=False).eval()
        folded = FoldedPConvExpand(pconv, expand).eval()
        dw = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False).eval()
        full = nn.Conv2d(c, c, 3, 1, 1, bias=False).eval()
        cp = pconv.dim_conv
        flops = {
            "PConv split_cat": 2 * 9 * cp * cp * hw,
            "PConv slicing": 2 * 9 * cp * cp * hw,
            "PConv preallocated": 2 * 9 * cp * cp * hw,
            "DWConv 3x3": 2 * 9 * c * hw,
            "Conv 3x3": 2 * 9 * c * c * hw,
            "Conv 1x1 c->2c": 2 * c * 2 * c * hw,
            "PConv -> 1x1": 2 * (9 * cp * cp + c * 2 * c) * hw,
            "PConv folded into 1x1": 2 * (9 * cp * 2 * c + (c - cp) * 2 * c) * hw,
        }
        nchw_ms: dict[str, float] = {}
        for layout in ("NCHW", "channels-last"):
            x = torch.rand(1, c, size, size)
            x = x.contiguous(memory_format=CL) if layout == "channels-last" else x
            fns = operator_calls(pconv, expand, folded, dw, full, x)
            with torch.inference_mode():
                reference = pconv.forward_split_cat(x)
                for form in (pconv.forward_slicing(x), pconv.forward_preallocated(x)):
                    torch.testing.assert_close(form, reference, atol=0, rtol=0)
                torch.testing.assert_close(folded(x), expand(reference), atol=1e-4, rtol=1e-4)
                ms = timed(fns, args.runs, args.warmup)
            nchw_ms = nchw_ms or ms
            for op, t in ms.items():
                rows.append(
                    [f"{c}x{size}x{size}", layout, op, f"{t:.3f}", f"{gflops_per_s(flops[op], t):.1f}"]
                    + operator_ratios(op, ms)
                    + [f"{t / nchw_ms[op]:.2f}"]
                )
    header = ["input CxHxW", "layout", "operator", "ms", "GFLOP/s", "ms x DWConv", "ms x Conv 3x3", "ms x NCHW"]
    table(header, rows)
    print(
        "PConv convolves c/4 of the channels: 1/16 of a full 3x3 conv's FLOPs and c/16 times DWConv's. The folded\n"
        "form computes 'PConv -> 1x1' (same function, more FLOPs, no copies); its 'x DWConv' cell compares it with\n"
        "'PConv -> 1x1' instead. 'ms x NCHW': the same operator on channels-last input against NCHW input.\n"
    )


# ------------------------------------------------------------------------------------------------------- block
def section_block(args) -> None:
    print("## Blocks: unfused vs fused (fp32 CPU, batch 1)\n")
    rows = []
    cases = [(f"FasterNetBlock {c}", lambda c=c: FasterNetBlock(c, c, act="gelu"), c, s) for c, s in T0_STAGES]
    cases += [
        (f"C2f_Faster {c} n={n}", lambda c=c, n=n: C2f_Faster(c, c, n, True), c, s) for c, s, n in C2F_FASTER_LAYERS
    ]
    cases += [(f"C2f (stock) {c} n={n}", lambda c=c, n=n: C2f(c, c, n, True), c, s) for c, s, n in C2F_FASTER_LAYERS]
    for name, build, c, size in cases:
        torch.manual_seed(0)
        unfused = build().eval()
        x = torch.rand(1, c, size, size)
        x_cl = x.contiguous(memory_format=CL)
        variants = {
            "unfused": (unfused, x),
            "fused NCHW": (fused_copy(unfused, channels_last=False), x),
            "fused channels-last": (fused_copy(unfused), x_cl),
        }
        with torch.inference_mode():
            reference = unfused(x)
            for module, inp in variants.values():
                torch.testing.assert_close(module(inp), reference, atol=1e-4, rtol=1e-4)
            ms = timed({k: (lambda m=m, inp=inp: m(inp)) for k, (m, inp) in variants.items()}, args.runs, args.warmup)
        rows.append(
            [name, f"{c}x{size}x{size}"]
            + [f"{ms[k]:.3f}" for k in variants]
            + [f"{ms['fused channels-last'] / ms['unfused']:.2f}"]
        )
    table(["block", "input", "unfused ms", "fused NCHW ms", "fused channels-last ms", "selected x unfused"], rows)
    print(
        "'fused channels-last' is the form model.fuse() selects on CPU: in a fused model the first plugin layer\n"
        "switches the activations to channels-last and every later layer receives them so, as the blocks do here.\n"
        "The stock C2f rows get the same input, for reference: Ultralytics itself runs them NCHW.\n"
    )


# ------------------------------------------------------------------------------------------------------- model
def build_model(name: str) -> nn.Module:
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        return YOLO(f"{name}.yaml", verbose=False).model
    finally:
        LOGGER.setLevel(level)


def inference_model(name: str, device: str = "cpu", half: bool = False) -> nn.Module:
    model = build_model(name).to(device)
    model = model.fuse(verbose=False).eval()
    return model.half() if half else model


def export_onnx(name: str, batch: int, imgsz: int, workdir: Path) -> Path:
    """Export through Ultralytics' own exporter (fuse, then ONNX), as ``yolo export format=onnx`` does.

    The exporter leaves torch at one CPU thread; the caller's thread count is restored, or every later measurement
    (PyTorch and ONNX Runtime sessions sized from it) would run single-threaded.
    """
    threads = torch.get_num_threads()
    model = YOLO(f"{name}.yaml", verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):
        level = LOGGER.level
        LOGGER.setLevel(logging.ERROR)
        try:
            cwd = os.getcwd()
            os.chdir(workdir)
            path = Path(model.export(format="onnx", imgsz=imgsz, batch=batch, simplify=True, device="cpu")).resolve()
        finally:
            os.chdir(cwd)
            LOGGER.setLevel(level)
            torch.set_num_threads(threads)
    target = workdir / f"{name}-b{batch}.onnx"
    path.replace(target)
    return target


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle sessions must not steal cores
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ratio_rows(ms: dict[str, float], label: str, extra: dict[str, float] | None = None) -> list[list]:
    rows = []
    for name, stock in MODELS.items():
        if name not in ms:
            continue
        ratio = f"{ms[name] / ms[stock]:.2f}" if stock else ""
        target = TARGETS.get(name)
        verdict = ""
        if target and stock and " CPU " in label and label.endswith("batch 1"):  # the targets are CPU ones
            r = ms[name] / ms[stock]
            verdict = f"target {target:.2f}: " + ("met" if r <= target else f"missed by {r - target:.2f}")
        ref = ""
        if extra and stock and f"{stock} channels-last" in extra:
            ref = f"{ms[name] / extra[f'{stock} channels-last']:.2f}"
        rows.append([label, name, f"{ms[name]:.1f}", stock or "", ratio, ref, verdict])
    if extra:
        rows += [
            [label, name, f"{t:.1f}", "", "", "", "reference, not how Ultralytics runs it"] for name, t in extra.items()
        ]
    return rows


def section_model(args, imgsz: int = 640) -> None:
    print(f"## Models: latency at {imgsz} px against stock (median ms)\n")
    header = ["backend", "model", "ms", "stock", "x stock", "x stock channels-last", "target"]
    rows: list[list] = []
    names = list(MODELS)
    flops = {}
    for batch in args.batches:
        models = {n: inference_model(n) for n in names}
        for n in names:
            if n not in flops:
                flops[n] = get_flops(build_model(n), imgsz)
        stock_cl = {f"{n} channels-last": copy.deepcopy(models[n]).to(memory_format=CL) for n in ("yolov8n", "yolo11n")}
        x = torch.rand(batch, 3, imgsz, imgsz)
        x_cl = x.contiguous(memory_format=CL)
        fns = {n: (lambda m=m, x=x: m(x)) for n, m in models.items()}
        fns.update({n: (lambda m=m, x=x_cl: m(x)) for n, m in stock_cl.items()})
        with torch.inference_mode():
            ms = timed(fns, args.runs if batch == 1 else max(3, args.runs // 3), args.warmup)
        extra = {n: ms.pop(n) for n in stock_cl}
        rows += ratio_rows(ms, f"PyTorch CPU fp32, batch {batch}", extra)
        if args.onnx:
            with tempfile.TemporaryDirectory() as tmp:
                sessions = {n: ort_session(export_onnx(n, batch, imgsz, Path(tmp))) for n in names}
                xn = x.numpy()
                fns = {n: (lambda s=s, xn=xn: s.run(None, {s.get_inputs()[0].name: xn})) for n, s in sessions.items()}
                ms = timed(fns, args.runs if batch == 1 else max(3, args.runs // 3), args.warmup)
            rows += ratio_rows(ms, f"ONNX Runtime CPU fp32, batch {batch}")
    if torch.cuda.is_available():
        for half in (False, True):
            for batch in (1, 32):
                models = {n: inference_model(n, "cuda", half) for n in names}
                x = torch.rand(batch, 3, imgsz, imgsz, device="cuda", dtype=torch.half if half else torch.float)
                with torch.inference_mode():
                    ms = timed(
                        {n: (lambda m=m, x=x: m(x)) for n, m in models.items()},
                        args.runs,
                        args.warmup,
                        torch.cuda.synchronize,
                    )
                rows += ratio_rows(
                    ms, f"PyTorch {torch.cuda.get_device_name()} {'fp16' if half else 'fp32'}, batch {batch}"
                )
    table(header, rows)
    if not torch.cuda.is_available():
        print("GPU: no CUDA device on this machine, GPU fp32/fp16 rows not measured.\n")
    print("GFLOPs at this size: " + ", ".join(f"{n} {f:.2f}" for n, f in flops.items()) + "\n")
    if args.train:
        section_train(args, imgsz)


def synthetic_batch(batch: int, imgsz: int) -> dict:
    """A detection batch in Ultralytics' trainer format: 4 boxes per image, normalized xywh."""
    g = torch.Generator().manual_seed(0)
    n = 4 * batch
    return {
        "img": torch.rand(batch, 3, imgsz, imgsz, generator=g),
        "batch_idx": torch.arange(batch).repeat_interleave(4).float(),
        "cls": torch.randint(0, 80, (n, 1), generator=g).float(),
        "bboxes": torch.cat([torch.rand(n, 2, generator=g) * 0.6 + 0.2, torch.rand(n, 2, generator=g) * 0.2 + 0.05], 1),
    }


def section_train(args, imgsz: int) -> None:
    print(f"## Train step: forward, loss, backward, SGD step (CPU fp32, batch {args.train_batch}, {imgsz} px)\n")
    batch = synthetic_batch(args.train_batch, imgsz)
    steps = {}
    for name in MODELS:
        model = build_model(name).train()
        model.args = get_cfg()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad()
            loss, _ = model.loss(batch)
            loss.sum().backward()
            optimizer.step()

        steps[name] = step
    ms = timed(steps, args.train_runs, 1)
    table(
        ["model", "ms / step", "stock", "x stock"],
        [[n, f"{ms[n]:.0f}", s or "", f"{ms[n] / ms[s]:.2f}" if s else ""] for n, s in MODELS.items()],
    )


# ------------------------------------------------------------------------------------------------------ scales

# latency x stock at batch 1, 640 px, fused, CPU (issue 16): scale -> (PyTorch eager, ONNX Runtime)
SCALE_TARGETS = {"n": (0.85, 0.95), "s": (0.58, 0.65), "m": (0.43, 0.48)}


def verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"{target:.2f}: " + ("met" if ratio <= target else f"missed by {ratio - target:.2f}")


def time_side_by_side(names: dict[str, str], x: torch.Tensor, runs: int, args, imgsz: int):
    """Median ms of each named model, fused, in PyTorch and (unless --no-onnx) ONNX Runtime, alternating run by run."""
    models = {k: inference_model(n) for k, n in names.items()}
    with torch.inference_mode():
        pt = timed({k: (lambda m=m: m(x)) for k, m in models.items()}, runs, min(args.warmup, 2))
    del models
    ort = {}
    if args.onnx:
        with tempfile.TemporaryDirectory() as tmp:
            sessions = {k: ort_session(export_onnx(n, 1, imgsz, Path(tmp))) for k, n in names.items()}
            xn = x.numpy()
            fns = {k: (lambda s=s, xn=xn: s.run(None, {s.get_inputs()[0].name: xn})) for k, s in sessions.items()}
            ort = timed(fns, runs, min(args.warmup, 2))
    return pt, ort


def section_scales(args, imgsz: int = 640) -> None:
    """yolov8{scale}-fasternet against yolov8{scale}, scale by scale: PyTorch eager and ONNX Runtime, batch 1."""
    print(f"## Scales: yolov8-fasternet against yolov8 at every scale (batch 1, {imgsz} px, fused, median ms)\n")
    header = ["scale", "GFLOPs", "x stock GFLOPs", "PyTorch ms", "stock", "x stock", "target", "ORT ms", "stock"]
    header += ["x stock", "target"]
    rows = []
    x = torch.rand(1, 3, imgsz, imgsz)
    for scale in args.scales:
        pair = {"fasternet": f"yolov8{scale}-fasternet", "stock": f"yolov8{scale}"}
        gflops = {k: get_flops(build_model(n), imgsz) for k, n in pair.items()}
        runs = args.runs if scale in "ns" else max(5, args.runs // (4 if scale == "m" else 8))
        pt, ort = time_side_by_side(pair, x, runs, args, imgsz)
        pt_target, ort_target = SCALE_TARGETS.get(scale, (None, None))
        row = [scale, f"{gflops['fasternet']:.1f}", f"{gflops['fasternet'] / gflops['stock']:.2f}"]
        row += [f"{pt['fasternet']:.1f}", f"{pt['stock']:.1f}", f"**{pt['fasternet'] / pt['stock']:.2f}**"]
        row += [verdict(pt["fasternet"] / pt["stock"], pt_target)]
        if ort:
            row += [f"{ort['fasternet']:.1f}", f"{ort['stock']:.1f}", f"**{ort['fasternet'] / ort['stock']:.2f}**"]
            row += [verdict(ort["fasternet"] / ort["stock"], ort_target)]
        else:
            row += ["", "", "", ""]
        rows.append(row)
        print(f"  {scale}: measured ({runs} runs)", file=sys.stderr, flush=True)
    table(header, rows)


# -------------------------------------------------------------------------------------------------- partialnet

# latency x stock yolov8n at batch 1, 640 px, fused, CPU, PyTorch eager: the PartialNet target (n only)
PARTIALNET_TARGETS = {"n": 0.85}


def section_partialnet(args, imgsz: int = 640) -> None:
    """yolov8{scale}-partialnet against yolov8{scale} and yolov8{scale}-fasternet, n/s/m, PyTorch and ONNX Runtime."""
    print(f"## PartialNet: yolov8-partialnet against yolov8 and yolov8-fasternet (batch 1, {imgsz} px, fused, ms)\n")
    header = ["scale", "model", "GFLOPs", "PyTorch ms", "x stock", "x fasternet", "target", "ORT ms", "x stock"]
    header += ["x fasternet"]
    rows = []
    x = torch.rand(1, 3, imgsz, imgsz)
    for scale in [c for c in args.scales if c in "nsm"]:
        names = {k: f"yolov8{scale}{k}" for k in ("", "-fasternet", "-partialnet")}
        unfused = {k: build_model(n) for k, n in names.items()}
        # THOP misses the attention products of PartialNet's last stage; attention_gflops adds them
        gflops = {k: get_flops(m, imgsz) + attention_gflops(m, imgsz) for k, m in unfused.items()}
        del unfused
        runs = args.runs if scale in "ns" else max(5, args.runs // 4)
        pt, ort = time_side_by_side(names, x, runs, args, imgsz)
        for k, name in names.items():
            row = [scale, name, f"{gflops[k]:.1f}", f"{pt[k]:.1f}", f"{pt[k] / pt['']:.2f}"]
            row += [f"{pt[k] / pt['-fasternet']:.2f}"]
            row += [verdict(pt[k] / pt[""], PARTIALNET_TARGETS.get(scale)) if k == "-partialnet" else ""]
            if ort:
                row += [f"{ort[k]:.1f}", f"{ort[k] / ort['']:.2f}", f"{ort[k] / ort['-fasternet']:.2f}"]
            else:
                row += ["", "", ""]
            rows.append(row)
        print(f"  {scale}: measured ({runs} runs)", file=sys.stderr, flush=True)
    table(header, rows)


# -------------------------------------------------------------------------------------------------- onnx_pconv


def pconv_grouped(pconv: PConv, x: torch.Tensor) -> torch.Tensor:
    """One grouped 3x3 conv (groups = c / dim_conv): PConv's kernel on the first group, identity kernels on the rest."""
    c, d = x.shape[1], pconv.dim_conv
    identity = torch.zeros(c - d, d, 3, 3, dtype=x.dtype)
    rows = torch.arange(c - d)
    identity[rows, rows % d, 1, 1] = 1.0
    return nn.functional.conv2d(x, torch.cat([pconv.conv.weight, identity]), padding=1, groups=c // d)


def pconv_residual_convs(pconv: PConv, x: torch.Tensor) -> torch.Tensor:
    """x + embed(conv3x3'(select(x))): a 1x1 selecting the first channels, the 3x3 kernel minus identity, a 1x1
    writing the result back; all three are convolutions ONNX Runtime runs in its NCHWc layout, with no Split/Concat."""
    c, d = x.shape[1], pconv.dim_conv
    select = torch.eye(d, c, dtype=x.dtype).view(d, c, 1, 1)
    kernel = pconv.conv.weight - nn.functional.pad(torch.eye(d, dtype=x.dtype).view(d, d, 1, 1), (1, 1, 1, 1))
    embed = torch.eye(c, d, dtype=x.dtype).view(c, d, 1, 1)
    conv2d = nn.functional.conv2d
    return x + conv2d(conv2d(conv2d(x, select), kernel, padding=1), embed)


ONNX_PCONV_FORMS = {"split_cat": None, "grouped": pconv_grouped, "residual_convs": pconv_residual_convs}


def section_onnx_pconv(args, imgsz: int = 640) -> None:
    """Whole FasterNet detectors exported with each candidate PConv form, timed in ONNX Runtime against split_cat."""
    import numpy as np

    print(f"## PConv export forms in ONNX Runtime (whole models, batch 1, {imgsz} px, median ms)\n")
    rows = []
    x = torch.rand(1, 3, imgsz, imgsz)
    for scale in [c for c in args.scales if c in "nsm"]:
        name = f"yolov8{scale}-fasternet"
        model = inference_model(name)
        with torch.inference_mode():
            expected = model(x)[0].numpy()
        sessions = {}
        with tempfile.TemporaryDirectory() as tmp:
            for form, forward in ONNX_PCONV_FORMS.items():
                exported = copy.deepcopy(model)
                for m in exported.modules():
                    if isinstance(m, PConv) and forward is not None:
                        m.forward_split_cat = lambda t, m=m, f=forward: f(m, t)
                path = Path(tmp) / f"{name}-{form}.onnx"
                with contextlib.redirect_stderr(io.StringIO()):
                    torch.onnx.export(exported, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"])
                sessions[form] = ort_session(path)
                error = float(np.abs(sessions[form].run(None, {"x": x.numpy()})[0] - expected).max())
                assert error <= 1e-3 * max(1.0, float(np.abs(expected).max())), f"{name} {form}: differs by {error}"
            runs = args.runs if scale == "n" else max(5, args.runs // 2)
            ms = timed({f: (lambda s=s: s.run(None, {"x": x.numpy()})) for f, s in sessions.items()}, runs, 2)
        for form in ONNX_PCONV_FORMS:
            rows.append([name, form, f"{ms[form]:.1f}", f"{ms[form] / ms['split_cat']:.2f}"])
    table(["model", "PConv form", "ORT ms", "x split_cat"], rows)
    print("A form would be selected at export only where it is faster than split_cat; see docs/performance.md.\n")


# ----------------------------------------------------------------------------------------------------- profile
def layer_profile(model: nn.Module, x: torch.Tensor, runs: int, warmup: int) -> list[tuple[int, str, float, float]]:
    """(index, type, median ms, GFLOPs) of each top-level layer; FLOPs counted from the Conv2d calls inside it."""
    times: dict[int, list[float]] = {}
    flops: dict[int, float] = {}
    hooks, starts = [], {}
    for i, layer in enumerate(model.model):
        hooks.append(layer.register_forward_pre_hook(lambda _m, _a, i=i: starts.__setitem__(i, time.perf_counter())))
        hooks.append(
            layer.register_forward_hook(
                lambda _m, _a, _o, i=i: times.setdefault(i, []).append((time.perf_counter() - starts[i]) * 1e3)
            )
        )
        for conv in layer.modules():
            if isinstance(conv, nn.Conv2d):

                def count(m, _a, out, i=i):  # per image: 2 x (inputs per output value) x output values
                    macs_per_output = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                    flops[i] = flops.get(i, 0.0) + 2 * macs_per_output * out[0].numel()

                hooks.append(conv.register_forward_hook(count))
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        times.clear()
        flops.clear()
        model(x)
        counted = dict(flops)
        for _ in range(runs):
            model(x)
    for h in hooks:
        h.remove()
    return [
        (i, type(model.model[i]).__name__, statistics.median(t), counted.get(i, 0.0) / 1e9) for i, t in times.items()
    ]


def section_profile(args, imgsz: int = 640) -> None:
    print(f"## Profile: where the time goes (PyTorch CPU fp32, fused as selected, batch 1, {imgsz} px)\n")
    x = torch.rand(1, 3, imgsz, imgsz)
    for name in ("yolov8n-fasternet", "yolov8n"):
        profile = layer_profile(inference_model(name), x, args.runs, args.warmup)
        total = sum(p[2] for p in profile)
        rows = [
            [i, t, f"{ms:.2f}", f"{100 * ms / total:.0f}%", f"{g:.3f}", f"{gflops_per_s(g * 1e9, ms):.0f}" if g else ""]
            for i, t, ms, g in profile
        ]
        print(f"### {name}: {total:.1f} ms in layers, {sum(p[3] for p in profile):.2f} conv GFLOPs\n")
        table(["layer", "type", "ms", "share", "GFLOPs", "GFLOP/s"], rows)


SECTIONS = {
    "machine": section_machine,
    "operator": section_operator,
    "block": section_block,
    "profile": section_profile,
    "model": section_model,
    "scales": section_scales,
    "partialnet": section_partialnet,
    "onnx_pconv": section_onnx_pconv,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated, from: %(default)s")
    parser.add_argument("--runs", type=int, default=20, help="timed repetitions per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed repetitions first")
    parser.add_argument("--batches", default="1,8", help="CPU model-level batch sizes")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip ONNX Runtime")
    parser.add_argument("--no-train", dest="train", action="store_false", help="skip the train-step timing")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--scales", default="n,s,m,l,x", help="scales of the 'scales' section (default: %(default)s)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        parser.error(f"--batches takes comma-separated integers, got {args.batches!r}")
    args.scales = [c.strip() for c in args.scales.split(",") if c.strip()]
    if not args.scales or any(c not in "nsmlx" or len(c) != 1 for c in args.scales):
        parser.error(f"--scales takes letters from n,s,m,l,x, got {','.join(args.scales)!r}")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    for section in sections:
        SECTIONS[section](args)
    print(f"({time.perf_counter() - started:.0f} s in total)")


if __name__ == "__main__":
    main()
