"""Every runtime per model: export through the stock exporter, load in the runtime, compare with PyTorch, time it.

For each model (a bundled family at a scale, or a stock Ultralytics YAML for the side-by-side baseline) and each
format, in this one process: ``YOLO(model).export(format=..., imgsz=...)`` (random weights, randomized BatchNorm
statistics, as the tests build them), then Ultralytics' ``AutoBackend`` loads the file on the CPU, runs a fixed input,
and its raw output is compared with the fused PyTorch model's part by part (``integration.output_parts``: boxes,
class scores; the largest difference over that part's own magnitude);
then the models of one format are timed alternately, side by side in this process (each round calls every model
once), and the median of ``--runs`` rounds at batch 1 is each one's latency (``AutoBackend.forward``: the network in
its runtime, without pre- and post-processing); ``x stock`` is that latency over the stock YAML of the same version
and scale (``yolov8s-fasternet.yaml`` over ``yolov8s.yaml``) where both are among ``--models``. CoreML has no
runtime on Linux: it converts and its spec loads (no difference, no time). ``torch`` is the fused model in eager
PyTorch (what ``yolo predict`` runs a ``.pt`` with). Each runtime runs at ``AutoBackend``'s defaults, as ``yolo
predict`` runs it: OpenVINO at its CPU default precision (bf16 on CPUs with AMX or AVX512-BF16, hence its larger
difference there).

    python benchmarks/deploy.py --matrix --write-docs           # docs/deploying.md's matrix (every family, 64 px)
    python benchmarks/deploy.py --models yolov8n-fasternet.yaml yolov8n.yaml yolov8s-fasternet.yaml yolov8s.yaml \
        --imgsz 640 320 --formats torch onnx openvino ncnn mnn --write-docs   # docs/deploying.md's benchmark
    python benchmarks/deploy.py --models yolov8s-fasternet.yaml yolov8s.yaml --formats torch ncnn mnn --runs 50
    python benchmarks/deploy.py --models yolov8n-fasternet.yaml yolov8n.yaml --formats onnx openvino mnn litert \
        coreml --int8 --imgsz 64 --runs 10 --write-docs                    # docs/deploying.md's INT8 section

On an ARM board the same command measures that board (NCNN and MNN then run fp16 where the CPU has it: the
difference column shows it). The models have random weights: the network costs what a trained one costs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

FORMATS = ("torch", "torchscript", "onnx", "openvino", "ncnn", "mnn", "litert", "coreml")
MATRIX_MODELS = (
    "yolov8n-fasternet.yaml",
    "yolo11n-fasternet.yaml",
    "yolo26n-fasternet.yaml",
    "yolo26n-c3k2-faster.yaml",
    "yolo26n-spconv.yaml",
    "yolo26n-partialnet.yaml",
    "yolov8n-c2f-faster.yaml",
    "yolo11n-c3k2-faster.yaml",
    "yolov8n-saconv.yaml",
    "yolov8n-spconv.yaml",
    "yolo11n-spconv.yaml",
    "yolov8n-partialnet.yaml",
    "yolo11n-partialnet.yaml",
    "yolov8n-timm-mobilenetv3_small_100.yaml",
    "yolov8n.yaml",
)
# The formats Ultralytics exports at INT8 on a Linux CPU (its exporter's INT8 set, less the GPU/NPU-only ones).
INT8_FORMATS = ("onnx", "openvino", "mnn", "litert", "coreml")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "deploying.md"
COCO8 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco8" / "coco8.yaml"
# The sections of docs/deploying.md that --write-docs replaces: the matrix (--matrix) or the side-by-side benchmark.
MARKERS = {
    "matrix": (
        "<!-- deploy-matrix:begin (benchmarks/deploy.py --matrix --write-docs) -->",
        "<!-- deploy-matrix:end -->",
    ),
    "benchmark": (
        "<!-- deploy-benchmark:begin (benchmarks/deploy.py --write-docs) -->",
        "<!-- deploy-benchmark:end -->",
    ),
    "int8": ("<!-- deploy-int8:begin (benchmarks/deploy.py --int8 --write-docs) -->", "<!-- deploy-int8:end -->"),
}


def nontrivial(model: torch.nn.Module) -> None:
    """Random BN statistics (fusing and folding really exercised) and class-score biases at 0 (scores mid-range).

    Ultralytics starts the class biases at about -11, so an untrained model's scores are ~1e-4 and a runtime's
    rounding of 1e-7 reads as 1e-3 of their magnitude; the tests do the same (``conftest.nontrivial_outputs``).
    """
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    head = model.model[-1]
    for branches in (getattr(head, "cv3", None), getattr(head, "one2one_cv3", None)):
        for branch in branches or ():
            last = branch[-1] if isinstance(branch, torch.nn.Sequential) else branch
            if getattr(last, "bias", None) is not None:
                last.bias.data.zero_()


def fused_reference(yolo) -> torch.nn.Module:
    """The fused eager model; an end-to-end (YOLO26) head as the exporter's default exports it (one-to-many)."""
    model = copy.deepcopy(yolo.model).eval()
    if getattr(model, "end2end", False):
        model.end2end = False
    return model.fuse(verbose=False)


def first_output(out) -> torch.Tensor:
    out = out[0] if isinstance(out, (list, tuple)) else out
    return torch.as_tensor(out)


def alternate_medians(calls: list, runs: int) -> list[float]:
    """Median wall time of each call over ``runs`` rounds, in ms; each round calls every one once, in turn.

    Two warm-up rounds first. Alternating within one process means a change in the machine's load (a shared VM)
    falls on every model alike, so the ratios between them hold even when the absolute times drift.
    """
    for _ in range(2):
        for call in calls:
            call()
    times = [[] for _ in calls]
    for _ in range(runs):
        for call, taken in zip(calls, times):
            start = time.perf_counter()
            call()
            taken.append((time.perf_counter() - start) * 1000)
    return [statistics.median(taken) for taken in times]


@contextlib.contextmanager
def quiet():
    """The exporter's and runtimes' progress output, off (errors are reported in the table)."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        LOGGER.setLevel(level)


def export_arguments(fmt: str, imgsz: int, data: str) -> dict:
    """``YOLO.export`` arguments of a cell; ``"onnx int8"`` asks this Ultralytics for INT8, calibrated on ``data``."""
    base, _, precision = fmt.partition(" ")
    kwargs = {"format": base, "imgsz": imgsz, "batch": 1, "device": "cpu"}
    if precision == "int8":
        from ultralytics.engine.exporter import export_formats

        from yolo_fasternet.apps.quantize import int8_arguments

        kwargs.update(int8_arguments(base))
        table = export_formats()  # which formats calibrate (take data): Ultralytics refuses data= for the others
        accepted = table["Arguments"][table["Argument"].index(base)] if "Arguments" in table else ["data"]
        if "data" in accepted:
            kwargs["data"] = data
    return kwargs


def prepare(name: str, fmt: str, imgsz: int, folder: Path, data: str = "") -> tuple[dict, object]:
    """One cell: exported?, runs?, max difference over magnitude; and the call to time (None where it cannot run)."""
    from ultralytics import YOLO
    from ultralytics.nn.autobackend import AutoBackend

    from yolo_fasternet.integration.output_parts import compare_outputs, layout_of

    torch.manual_seed(0)
    yolo = YOLO(name, verbose=False)
    nontrivial(yolo.model)
    reference = fused_reference(yolo)
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = first_output(reference(x))
    row = {"model": name, "format": fmt, "exports": "-", "runs": "-", "diff": "", "ms": "", "ratio": ""}
    if fmt == "torch":
        row.update(exports="n/a", runs="yes", diff="0")
        return row, lambda: torch_call(reference, x)
    os.chdir(folder)
    threads = torch.get_num_threads()
    try:
        with quiet():
            path = Path(yolo.export(**export_arguments(fmt, imgsz, data)))
        row["exports"] = "yes"
        if fmt.startswith("coreml"):
            import coremltools

            coremltools.models.MLModel(str(path), skip_model_load=True).get_spec()
            row["runs"] = "spec loads (no runtime on Linux)"
            return row, None
        with quiet():
            backend = AutoBackend(str(path), device=torch.device("cpu"))
            actual = first_output(backend(x))
        row["runs"] = "yes"
        if actual.shape != expected.shape:
            row["diff"] = f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
            return row, None
        parts = compare_outputs(actual, expected, layout_of(yolo.model))  # boxes, scores: each on its own magnitude
        row["diff"] = ", ".join(f"{d.name} {d.diff / max(d.magnitude, 1e-12):.1e}" for d in parts)
        return row, lambda: backend(x)
    except Exception as e:  # a failed export or load is a cell of the matrix, not the end of the run
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        row["runs" if row["exports"] == "yes" else "exports"] = f"no: {type(e).__name__}: {text[:80]}"
        return row, None
    finally:
        torch.set_num_threads(threads)  # the exporter leaves torch on cores - 1 threads


def torch_call(model: torch.nn.Module, x: torch.Tensor):
    with torch.no_grad():
        return model(x)


def stock_baseline(name: str) -> str:
    """The stock Ultralytics YAML of the same version and scale: ``yolov8s-fasternet.yaml`` -> ``yolov8s.yaml``."""
    match = re.match(r"(yolov?\d+[nsmlx])\b", Path(name).stem)
    return f"{match.group(1)}.yaml" if match else ""


def add_ratios(rows: list[dict]) -> None:
    """Each row's time over its stock baseline's time in the same format (where both ran in this run)."""
    ms = {(r["model"], r["format"]): float(r["ms"]) for r in rows if r["ms"]}
    for r in rows:
        baseline = ms.get((stock_baseline(r["model"]), r["format"]))
        if r["ms"] and baseline and stock_baseline(r["model"]) != r["model"]:
            r["ratio"] = f"{float(r['ms']) / baseline:.2f}"


def measure_size(models: list[str], formats: list[str], imgsz: int, runs: int, tmp: Path, data: str = "") -> list:
    """Every model in every format at one image size; the models of one format timed alternately, side by side."""
    rows = []
    for fmt in formats:
        cells = []
        for name in models:
            folder = tmp / f"{Path(name).stem}-{fmt.replace(' ', '-')}-{imgsz}"
            folder.mkdir()
            cells.append(prepare(name, fmt, imgsz, folder, data))
            print("|".join(str(v) for v in cells[-1][0].values()), file=sys.stderr, flush=True)
        timed = [(row, call) for row, call in cells if call is not None]
        with quiet():
            medians = alternate_medians([call for _, call in timed], runs) if timed else []
        for (row, _), median in zip(timed, medians):
            row["ms"] = f"{median:.1f}"
        rows += [row for row, _ in cells]
    add_ratios(rows)
    return rows


def table(rows: list[dict], imgsz: int) -> str:
    lines = [
        f"| model | format | exports | runs | max diff / magnitude, per part | ms at {imgsz} px, batch 1 | x stock |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['format']} | {r['exports']} | {r['runs']} | {r['diff']} | {r['ms']} | {r['ratio']} |"
        for r in rows
    ]
    return "\n".join(lines)


def header(argv: list[str]) -> str:
    from importlib import metadata

    def version(name):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
        return "-"

    names = ("ultralytics", "torch", "onnxruntime", "openvino", "ncnn", "pnnx", "mnn", "litert-torch", "coremltools")
    versions = ", ".join(f"{n} {version(n)}" for n in names)
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        info = Path("/proc/cpuinfo").read_text()
        cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), cpu)
    command = " ".join(["python benchmarks/deploy.py", *argv])
    load = "load average {:.1f} {:.1f} {:.1f} at the start".format(*os.getloadavg())
    return (
        f"Command: `{command}`; {time.strftime('%Y-%m-%d')}; {cpu}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}, {load}; Python {platform.python_version()}; {versions}."
    )


def write_docs(text: str, section: str) -> None:
    begin, end = MARKERS[section]
    page = DOCS.read_text()
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(page):
        raise SystemExit(f"{DOCS}: no {begin} ... {end} section to replace")
    DOCS.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", page))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["yolov8n-fasternet.yaml", "yolov8n.yaml"])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--imgsz", nargs="+", type=int, default=[640])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--matrix", action="store_true", help="every bundled family and stock yolov8n, at 64 px")
    parser.add_argument(
        "--int8", action="store_true", help=f"also each of {', '.join(INT8_FORMATS)} among --formats at INT8"
    )
    parser.add_argument("--data", default=str(COCO8), help="the INT8 calibration dataset (default: shared coco8)")
    parser.add_argument("--write-docs", action="store_true", help="replace the table's section in docs/deploying.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if args.matrix:
        args.models, args.imgsz = list(MATRIX_MODELS), [64]
    import yolo_fasternet  # noqa: F401  registers the modules (the start-up hook does so where installed)

    out = [header(argv)]
    with tempfile.TemporaryDirectory(prefix="deploy-") as tmp:
        for imgsz in args.imgsz:
            formats = args.formats + [f"{f} int8" for f in args.formats if args.int8 and f in INT8_FORMATS]
            out.append(table(measure_size(args.models, formats, imgsz, args.runs, Path(tmp), args.data), imgsz))
    out.append("Load average {:.1f} {:.1f} {:.1f} at the end.".format(*os.getloadavg()))
    text = "\n\n".join(out)
    print(text)
    if args.write_docs:
        write_docs(text, "matrix" if args.matrix else "int8" if args.int8 else "benchmark")
    return 0


if __name__ == "__main__":
    sys.exit(main())
