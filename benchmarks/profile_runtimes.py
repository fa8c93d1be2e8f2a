"""Where exported YOLO models spend their time in ONNX Runtime, NCNN and MNN: per operator type and per layer.

Each model (a YAML name, random weights and BatchNorm statistics) is exported by the stock Ultralytics exporter
(``YOLO(name).export(format=...)``, which fuses the model and selects the plugin modules' export forms), loaded in
the runtime with ``--threads`` threads, checked against the fused PyTorch model (largest difference over the output's
magnitude) and then profiled:

- **ONNX Runtime**: ``SessionOptions.enable_profiling`` (the JSON trace; each node's kernel time, median over the
  runs). Nodes are attributed to the Ultralytics layer in their name (``/model.5/...``); nodes the optimizer inserts
  (NCHWc reorders) to the layer of the node whose output they read, from the optimized graph.
- **NCNN**: one extractor per run, every layer's top blob extracted in the param file's (topological) order, timed
  one layer at a time: each extraction runs exactly that layer, its inputs being already computed. Convolutions are
  attributed to Ultralytics layers by matching their weight sizes in order against the PyTorch model's convolutions;
  other layers to the latest layer among their inputs (so a parameter-free Upsample or Concat counts in the layer
  feeding it), except channel splits and fan-outs, which count in the layer that reads them.
- **MNN**: ``Interpreter.runSessionWithCallBackInfo``, each operator timed between its begin and end callbacks;
  operators named by the converter after the ONNX node, else attributed to the operator before them.

Per-layer sums include the runtime's per-layer overhead (and for NCNN the extraction call), so they exceed a plain
run a little; the plain median of the same session is printed beside them. A profile whose sum exceeds 1.5x a plain
run (another job took a core: NCNN's layer-by-layer runs then stall 10-100x) is repeated, up to 3 passes.

    python benchmarks/profile_runtimes.py --models yolov8n-fasternet.yaml yolov8n.yaml             # the profile
    python benchmarks/profile_runtimes.py --compare yolov8n-fasternet.yaml:split_cat yolov8n-fasternet.yaml \
        yolov8n.yaml --runtimes torch onnx ncnn mnn --runs 40                                  # A/B latency

``--compare`` exports every ``MODEL[:FORM]`` (FORM: a PConv export form from ``nn/pconv.py``; left out, the one
``model.fuse()`` selects) and times them alternately in one process (the order rotating every round), median of
``--runs`` rounds per runtime, each as a ratio to the last entry, with the load average before and after.
``--pconv-form FORM`` profiles with that PConv export form instead of the selected one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

RUNTIMES = ("onnx", "ncnn", "mnn")  # profiled; --compare also takes "torch" (the fused eager model)
LAYER_IN_NAME = re.compile(r"/model\.(\d+)/")


# ------------------------------------------------------------------------------------------------------ export


@contextlib.contextmanager
def quiet():
    """Exporter chatter (Ultralytics' log, pnnx's and MNN's prints from C) to stderr: stdout keeps the tables."""
    from ultralytics.utils import LOGGER

    sys.stdout.flush()
    saved_fd, saved_level = os.dup(1), LOGGER.level
    os.dup2(2, 1)
    LOGGER.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        LOGGER.setLevel(saved_level)


def random_statistics(model: torch.nn.Module) -> None:
    """Random BatchNorm statistics, so the folds the export relies on are exercised by the output check."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            for t, low, high in ((m.running_mean, -0.5, 0.5), (m.running_var, 0.5, 2.0), (m.weight, 0.5, 1.5)):
                t.data.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


class Exported:
    """One model exported to the requested formats, with its fused PyTorch reference and the layer table."""

    def __init__(self, name: str, formats: list[str], imgsz: int, folder: Path, pconv_form: str | None = None):
        from ultralytics import YOLO

        torch.manual_seed(0)
        self.name, self.imgsz, self.files = name, imgsz, {}
        with quiet():
            yolo = YOLO(name, verbose=False)
        random_statistics(yolo.model)
        self.backbone_rows = len(yolo.model.yaml["backbone"])
        self.layer_types = [type(m).__name__ for m in yolo.model.model]
        self.x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
        import copy

        self.reference = reference = copy.deepcopy(yolo.model).eval().fuse(verbose=False)
        self.conv_layers = conv_call_order(reference, self.x)
        with torch.no_grad():
            out = reference(self.x)
        self.expected = (out[0] if isinstance(out, (list, tuple)) else out).numpy()
        threads = torch.get_num_threads()
        here = Path.cwd()
        folder.mkdir(parents=True, exist_ok=True)
        os.chdir(folder)
        try:
            with quiet(), pconv_export_form(pconv_form):
                for fmt in formats:
                    self.files[fmt] = Path(yolo.export(format=fmt, imgsz=imgsz, batch=1, device="cpu")).resolve()
        finally:
            os.chdir(here)
            torch.set_num_threads(threads)  # the exporter leaves torch on cores - 1 threads

    def part(self, layer: int | None) -> str:
        """backbone, neck or head (the last layer) for an Ultralytics layer index."""
        if layer is None:
            return "?"
        return "backbone" if layer < self.backbone_rows else "head" if layer == len(self.layer_types) - 1 else "neck"

    def difference(self, actual: np.ndarray) -> float:
        """Largest difference from the fused PyTorch output, over that output's magnitude."""
        return float(np.abs(actual.reshape(self.expected.shape) - self.expected).max() / np.abs(self.expected).max())


@contextlib.contextmanager
def pconv_export_form(form: str | None):
    """Export with ``form`` for every PConv (None: the form the modules select)."""
    if form is None:
        yield
        return
    from yolo_fasternet.nn.pconv import forced_export_form

    with forced_export_form(form):
        yield


def conv_call_order(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[int, int]]:
    """(Ultralytics layer, weight size) of every Conv2d call of one forward pass, in call order."""
    calls, hooks = [], []
    for i, layer in enumerate(model.model):
        for m in layer.modules():
            if isinstance(m, torch.nn.Conv2d):
                hooks.append(m.register_forward_hook(lambda m, _a, _o, i=i: calls.append((i, m.weight.numel()))))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return calls


# ----------------------------------------------------------------------------------------------------- runtimes


class OnnxRuntime:
    name = "ONNX Runtime"

    def __init__(self, path: Path, threads: int, trace_dir: Path | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle sessions leave the cores
        if trace_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(trace_dir / "ort")
            options.optimized_model_filepath = str(trace_dir / "optimized.onnx")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.trace_dir = trace_dir

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x})[0]

    def profile(self, x: np.ndarray, runs: int, warmup: int) -> list[tuple[str, str, float, str]]:
        """(node, op type, median ms, node the attribution follows) of every node, from the JSON trace."""
        for _ in range(warmup + runs):
            self(x)
        trace = json.loads(Path(self.session.end_profiling()).read_text())
        durations = defaultdict(list)
        op_type = {}
        for event in trace:
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                node = event["name"][: -len("_kernel_time")]
                durations[node].append(event["dur"] / 1000)
                op_type[node] = event["args"].get("op_name", "?")
        owner = optimized_graph_owners(self.trace_dir / "optimized.onnx")
        return [(n, op_type[n], statistics.median(d[-runs:]), owner.get(n, n)) for n, d in durations.items()]


def optimized_graph_owners(path: Path) -> dict[str, str]:
    """For each node of ORT's optimized graph without a layer in its name: the nearest upstream node with one."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    owners = {}
    for node in graph.node:
        seen, frontier = 0, [node]
        while frontier and seen < 50:
            current = frontier.pop(0)
            seen += 1
            if LAYER_IN_NAME.search(current.name):
                owners[node.name] = current.name
                break
            frontier += [producer[i] for i in current.input if i in producer]
    return owners


class Ncnn:
    name = "NCNN"

    def __init__(self, folder: Path, threads: int):
        import ncnn

        self.ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        param = next(folder.glob("*.param"))
        self.net.load_param(str(param))
        self.net.load_model(str(param.with_suffix(".bin")))
        self.param = param
        self.input = self.net.input_names()[0]
        self.outputs = sorted(self.net.output_names())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.net.create_extractor() as ex:
            ex.input(self.input, self.ncnn.Mat(x[0]))
            return np.array(ex.extract(self.outputs[0])[1])[None]

    def profile(self, x: np.ndarray, runs: int, warmup: int) -> list[tuple[str, str, float, str]]:
        """(layer, type, median ms, layer) of every NCNN layer, each extracted and timed on its own."""
        layers = self.net.layers()
        samples = defaultdict(list)
        for run in range(warmup + runs):
            with self.net.create_extractor() as ex:
                ex.input(self.input, self.ncnn.Mat(x[0]))
                for layer in layers:
                    if layer.type == "Input":
                        continue
                    start = time.perf_counter()
                    for top in layer.tops:
                        ex.extract(top, 1)  # type 1: the blob as stored, no unpacking; the result is dropped
                    if run >= warmup:
                        samples[layer.name].append((time.perf_counter() - start) * 1000)
        return [(ly.name, ly.type, statistics.median(samples[ly.name]), ly.name) for ly in layers if ly.name in samples]

    def layer_map(self, conv_layers: list[tuple[int, int]]) -> dict[str, int | None]:
        """NCNN layer name -> Ultralytics layer: convolutions by weight size in order, the rest from their input."""
        weight_size = {}
        for line in self.param.read_text().splitlines()[2:]:
            fields = line.split()
            if len(fields) > 1 and fields[0].startswith("Convolution"):
                params = dict(f.split("=", 1) for f in fields if "=" in f and not f.startswith("-"))
                weight_size[fields[1]] = int(params.get("6", -1))
        producer = {}
        result: dict[str, int | None] = {}
        pointer = 0
        for layer in self.net.layers():
            found = None
            if layer.name in weight_size:
                for ahead in range(pointer, min(pointer + 4, len(conv_layers))):
                    if conv_layers[ahead][1] == weight_size[layer.name]:
                        found, pointer = conv_layers[ahead][0], ahead + 1
                        break
            if found is None:  # the latest layer among its inputs (a residual add belongs to the block it ends)
                found = max((producer[b] for b in layer.bottoms if producer.get(b) is not None), default=None)
            result[layer.name] = found
            for top in layer.tops:
                producer[top] = found
        consumers = defaultdict(list)
        for layer in self.net.layers():
            for bottom in layer.bottoms:
                consumers[bottom].append(layer.name)
        for layer in reversed(self.net.layers()):  # a fan-out or slice belongs to the layer that reads it
            if layer.type in ("Split", "Slice"):
                later = [result[c] for top in layer.tops for c in consumers[top] if result.get(c) is not None]
                result[layer.name] = min(later) if later else result[layer.name]
        return result


class Mnn:
    name = "MNN"

    def __init__(self, path: Path, threads: int):
        import MNN

        self.mnn = MNN
        self.interpreter = MNN.Interpreter(str(path))
        # precision "low", as Ultralytics' AutoBackend runs MNN (float32 on x86: the difference column shows it)
        self.session = self.interpreter.createSession({"numThread": threads, "precision": "low"})
        self.input = self.interpreter.getSessionInput(self.session)
        self.output = self.interpreter.getSessionOutput(self.session)

    def _feed(self, x: np.ndarray) -> None:
        mnn = self.mnn
        tensor = mnn.Tensor(x.shape, mnn.Halide_Type_Float, x, mnn.Tensor_DimensionType_Caffe)
        self.input.copyFrom(tensor)

    def _read(self) -> np.ndarray:
        mnn = self.mnn
        shape = tuple(self.output.getShape())
        host = mnn.Tensor(shape, mnn.Halide_Type_Float, np.zeros(shape, np.float32), mnn.Tensor_DimensionType_Caffe)
        self.output.copyToHostTensor(host)
        return np.array(host.getNumpyData(), dtype=np.float32).reshape(shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self._feed(x)
        self.interpreter.runSession(self.session)
        return self._read()

    def profile(self, x: np.ndarray, runs: int, warmup: int) -> list[tuple[str, str, float, str]]:
        """(operator, type, median ms, the operator whose layer it takes) from the begin/end callbacks."""
        samples = defaultdict(list)
        types, owners, order = {}, {}, []
        state = {"start": 0.0, "last_named": ""}

        def begin(_tensors, info):
            state["start"] = time.perf_counter()
            return True

        def end(_tensors, info):
            elapsed = (time.perf_counter() - state["start"]) * 1000
            name = info.getName()
            if name not in types:
                order.append(name)
                types[name] = info.getType()
                if LAYER_IN_NAME.search(name):
                    state["last_named"] = name
                owners[name] = name if LAYER_IN_NAME.search(name) else state["last_named"]
            samples[name].append(elapsed)
            return True

        self._feed(x)
        for _ in range(warmup):
            self.interpreter.runSession(self.session)
        for _ in range(runs):
            self.interpreter.runSessionWithCallBackInfo(self.session, begin, end)
        return [(n, types[n], statistics.median(samples[n]), owners[n]) for n in order]


def open_file(runtime: str, path: Path, threads: int, trace_dir: Path | None = None):
    if runtime == "onnx":
        return OnnxRuntime(path, threads, trace_dir)
    return Ncnn(path, threads) if runtime == "ncnn" else Mnn(path, threads)


def measure_in_child(runtime: str, models: list[Exported], args, folder: Path, profile: bool) -> dict:
    """Run ``measure_files`` in a fresh process: only these sessions exist there, and nothing the exporters left.

    MNN's CPU thread pool serves only the first sessions of a process that hold it: later ones measured
    single-threaded here (process CPU time / wall time 1.0 instead of 1.8), in the same process and the same run.
    """
    job = folder / f"job-{runtime}-{time.monotonic_ns()}.json"
    inputs = []
    for i, m in enumerate(models):
        inputs.append(str(folder / f"x{i}.npy"))
        np.save(inputs[-1], m.x.numpy())
    spec = {"runtime": runtime, "files": [str(m.files[runtime]) for m in models], "inputs": inputs}
    spec.update(runs=args.runs, threads=args.threads, profile=profile, folder=str(folder))
    job.write_text(json.dumps(spec))
    subprocess.run([sys.executable, __file__, "--measure-job", str(job)], check=True)
    return json.loads(job.with_suffix(".out.json").read_text())


def measure_files(job: Path) -> None:
    """The child's side: plain medians alternating, outputs, and (``profile``) every file's per-operator profile."""
    spec = json.loads(job.read_text())
    runtime, threads, runs = spec["runtime"], spec["threads"], spec["runs"]
    xs = [np.load(p) for p in spec["inputs"]]
    result = {"outputs": [], "profiles": [], "passes": []}
    runners = []
    for i, path in enumerate(spec["files"]):
        trace = Path(spec["folder"]) / f"trace-{runtime}-{i}-{time.monotonic_ns()}"
        trace.mkdir()
        runner = open_file(runtime, Path(path), threads, trace if spec["profile"] and runtime == "onnx" else None)
        out = str(trace / "output.npy")
        np.save(out, np.asarray(runner(xs[i])))
        result["outputs"].append(out)
        if spec["profile"]:
            alone = alternating_median_ms({0: lambda r=runner, x=xs[i]: r(x)}, 5)[0]
            for passes in range(1, 4):  # noqa: B007 - reported. Another job taking a core stalls layer-by-layer runs (NCNN: 10-100x)
                entries = runner.profile(xs[i], runs, 2)
                if sum(e[2] for e in entries) < 1.5 * alone:
                    break
            result["profiles"].append(entries)
            result["passes"].append(passes)
            if runtime == "onnx":  # a profiling session keeps writing its trace: time a plain one
                runner = open_file(runtime, Path(path), threads)
        runners.append(runner)
    cpu, wall = time.process_time(), time.perf_counter()
    calls = {i: (lambda r=r, x=x: r(x)) for i, (r, x) in enumerate(zip(runners, xs))}
    result["ms"] = list(alternating_median_ms(calls, runs).values())
    result["engaged"] = (time.process_time() - cpu) / (time.perf_counter() - wall)
    job.with_suffix(".out.json").write_text(json.dumps(result))


def alternating_median_ms(calls: dict[str, callable], runs: int, warmup: int = 3) -> dict[str, float]:
    """Median ms of each call, the calls alternating round by round with the order rotating (no fixed first)."""
    samples = {k: [] for k in calls}
    names = list(calls)
    for i in range(warmup + runs):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            if i >= warmup:
                samples[name].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


# ---------------------------------------------------------------------------------------------------- reporting


def table(header: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print()


def attributed(runtime: str, rt, model: Exported, entries) -> list[tuple[str, int | None, float]]:
    """(op type, Ultralytics layer, ms) per profiled entry."""
    ncnn_layers = rt.layer_map(model.conv_layers) if runtime == "ncnn" else None
    rows = []
    for name, op, ms, owner in entries:
        if ncnn_layers is not None:
            layer = ncnn_layers.get(name)
        else:
            match = LAYER_IN_NAME.search(owner)
            layer = int(match.group(1)) if match else None
        rows.append((op, layer, ms))
    return rows


def profile(args) -> None:
    folder = Path(tempfile.mkdtemp(prefix="profile-runtimes-"))
    models = [
        Exported(n, list(args.runtimes), args.imgsz, folder / f"m{i}", args.pconv_form)
        for i, n in enumerate(args.models)
    ]
    print(f"Exported {', '.join(m.name for m in models)} to {', '.join(args.runtimes)} ({args.imgsz} px).\n")
    for runtime in args.runtimes:
        child = measure_in_child(runtime, models, args, folder, profile=True)
        results, plain = {}, {}
        for i, m in enumerate(models):
            rt = Ncnn(m.files["ncnn"], 1) if runtime == "ncnn" else None  # for the layer map only
            diff = m.difference(np.load(child["outputs"][i]))
            results[m.name] = (attributed(runtime, rt, m, child["profiles"][i]), diff, child["passes"][i])
            plain[m.name] = child["ms"][i]
        report_runtime(runtime, models, results, plain, args, child["engaged"])


def report_runtime(runtime: str, models: list[Exported], results: dict, plain: dict, args, engaged: float) -> None:
    label = {"onnx": "ONNX Runtime", "ncnn": "NCNN", "mnn": "MNN"}[runtime]
    names = [m.name for m in models]
    print(f"## {label}: {args.imgsz} px, batch 1, {args.threads} threads, median of {args.runs} profiled runs\n")
    table(
        ["model", "plain run ms (alternating)", "sum of profiled ms", "profile passes", "max diff / magnitude"],
        [
            [n, f"{plain[n]:.1f}", f"{sum(r[2] for r in results[n][0]):.1f}", results[n][2], f"{results[n][1]:.1e}"]
            for n in names
        ],
    )
    print(f"Load average (1 min) after this runtime: {os.getloadavg()[0]:.2f}; process CPU / wall time of the plain")
    print(f"runs: {engaged:.2f} (about the thread count when the runtime uses its threads).\n")
    by_op = {n: defaultdict(float) for n in names}
    by_part = {n: defaultdict(float) for n in names}
    for m in models:
        for op, layer, ms in results[m.name][0]:
            by_op[m.name][op] += ms
            by_part[m.name][m.part(layer)] += ms
    ops = sorted(set().union(*by_op.values()), key=lambda o: -max(by_op[n][o] for n in names))
    diff_header = [f"{names[0]} - {names[1]}"] if len(names) == 2 else []
    print(f"### {label}: by operator type (ms)\n")
    rows = []
    for op in ops:
        row = [op] + [f"{by_op[n][op]:.2f}" for n in names]
        rows.append(row + ([f"{by_op[names[0]][op] - by_op[names[1]][op]:+.2f}"] if diff_header else []))
    table(["operator"] + names + diff_header, rows)
    print(f"### {label}: by part of the model (ms)\n")
    rows = []
    for part in ("backbone", "neck", "head", "?"):
        if any(by_part[n][part] for n in names):
            row = [part] + [f"{by_part[n][part]:.2f}" for n in names]
            rows.append(row + ([f"{by_part[names[0]][part] - by_part[names[1]][part]:+.2f}"] if diff_header else []))
    table(["part"] + names + diff_header, rows)
    for m in models:
        per_layer = defaultdict(float)
        per_layer_ops = defaultdict(lambda: defaultdict(float))
        for op, layer, ms in results[m.name][0]:
            per_layer[layer] += ms
            per_layer_ops[layer][op] += ms
        print(f"### {label}: {m.name} by Ultralytics layer (ms)\n")
        rows = []
        for layer in sorted(per_layer, key=lambda v: (v is None, v if v is not None else 0)):
            kind = m.layer_types[layer] if layer is not None else "(unattributed)"
            top = sorted(per_layer_ops[layer].items(), key=lambda kv: -kv[1])[:3]
            rows.append([layer if layer is not None else "?", kind, f"{per_layer[layer]:.2f}"])
            rows[-1].append(", ".join(f"{op} {ms:.2f}" for op, ms in top))
        table(["layer", "module", "ms", "largest operators (ms)"], rows)


def compare(args) -> None:
    """Each ``name[:form]`` entry against the last one, per runtime: the pair alternating, median of ``--runs`` rounds.

    Each pair is timed in a fresh process (``measure_in_child``) holding only its two sessions; PyTorch in this one.
    ``cpu / wall`` is that process's CPU time over wall time: about the thread count when the runtime uses them.
    """
    folder = Path(tempfile.mkdtemp(prefix="compare-runtimes-"))
    entries = [tuple(e.split(":", 1)) if ":" in e else (e, None) for e in args.compare]
    formats = [r for r in args.runtimes if r != "torch"]
    models = [Exported(n, formats, args.imgsz, folder / f"m{i}", f) for i, (n, f) in enumerate(entries)]
    labels = [n + (f" [{f}]" if f else "") for n, f in entries]
    print(f"## Alternating pairs: {args.imgsz} px, batch 1, {args.threads} threads, median of {args.runs} rounds\n")
    rows = []
    reference = models[-1]
    for runtime in args.runtimes:
        for i, model in enumerate(models[:-1]):
            before = os.getloadavg()[0]
            if runtime == "torch":
                cpu, wall = time.process_time(), time.perf_counter()
                pair = [Eager(m.reference) for m in (model, reference)]
                diff = model.difference(pair[0](model.x))
                calls = {k: (lambda r=pair[k], x=m.x: r(x)) for k, m in enumerate((model, reference))}
                ms = list(alternating_median_ms(calls, args.runs).values())
                engaged = (time.process_time() - cpu) / (time.perf_counter() - wall)
            else:
                child = measure_in_child(runtime, [model, reference], args, folder, profile=False)
                ms, engaged = child["ms"], child["engaged"]
                diff = model.difference(np.load(child["outputs"][0]))
            rows.append([runtime, labels[i], f"{ms[0]:.1f}", f"{ms[1]:.1f}", f"{ms[0] / ms[1]:.3f}", f"{diff:.0e}"])
            rows[-1] += [f"{engaged:.2f}", f"{before:.2f} -> {os.getloadavg()[0]:.2f}"]
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = ["runtime", "model [PConv export form]", "ms", f"{labels[-1]} ms", "ratio", "max diff / magnitude"]
    table(header + ["cpu / wall", "load (1 min)"], rows)


class Eager:
    """The fused PyTorch model (what ``yolo predict`` runs a ``.pt`` with), for the same A/B table."""

    name = "PyTorch"

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            out = self.model(x)
        return (out[0] if isinstance(out, (list, tuple)) else out).numpy()


def header() -> None:
    from importlib import metadata

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    versions = []
    for pkg in ("torch", "ultralytics", "onnxruntime", "ncnn", "pnnx", "MNN"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{pkg} {metadata.version(pkg)}")
    print(f"`python {' '.join(sys.argv)}`\n")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu}, {os.cpu_count()} cores; Python")
    print(f"{platform.python_version()}, {', '.join(versions)}; load average {os.getloadavg()[0]:.2f} at start.\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["yolov8n-fasternet.yaml", "yolov8n.yaml"])
    parser.add_argument("--compare", nargs="+", metavar="MODEL[:FORM]", help="time these alternately (last: reference)")
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES + ("torch",), default=list(RUNTIMES))
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pconv-form", default=None, help="export every PConv in this form (default: as selected)")
    parser.add_argument("--measure-job", type=Path, help=argparse.SUPPRESS)  # the child process of measure_in_child
    args = parser.parse_args(argv)
    if args.measure_job:
        measure_files(args.measure_job)
        return
    torch.set_num_threads(args.threads)
    header()
    if args.compare:
        compare(args)
    else:
        profile(args)


if __name__ == "__main__":
    main()
