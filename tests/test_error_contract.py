"""The error contract of every command we ship: a bad input gives an exit status and one line naming the culprit.

Each case runs in a fresh process through a real entry point (``yolo-fasternet <command>``, the top-level scripts,
``python -m yolo_fasternet``) and must end with the expected status (2: bad argument, 1: failed work),
no traceback, and at most two lines on stderr, the first ``<program>: error: ...`` containing the expected words.
Strict on purpose: nothing else may be printed on stderr (no Ultralytics warning or log line) nor on stdout, which
shows the input was refused before Ultralytics started any training, download or model warm-up.

A new command adds its cases to ``CASES``. The processes run two at a time (most of each is importing torch).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yolo_fasternet.apps import ablate
from yolo_fasternet.apps.ablation.executors import LocalExecutor
from yolo_fasternet.apps.command_errors import EXIT_FAILED, EXIT_INTERRUPTED, CommandError, command

from conftest import REPO, SHARED_DATASETS, closed_loopback_port

PY = sys.executable
CONSOLE = Path(PY).with_name("yolo-fasternet")
# entry point -> (command prefix, program name in the error line)
ENTRY = {
    "cli": ([str(CONSOLE)] if CONSOLE.is_file() else [PY, "-m", "yolo_fasternet"], "yolo-fasternet"),
    "train_yolo.py": ([PY, str(REPO / "train_yolo.py")], "train_yolo.py"),
    "detect_yolo.py": ([PY, str(REPO / "detect_yolo.py")], "detect_yolo.py"),
    "ablate_yolo.py": ([PY, str(REPO / "ablate_yolo.py")], "ablate_yolo.py"),
    "python -m": ([PY, "-m", "yolo_fasternet"], "yolo-fasternet"),
}
COCO8 = str(SHARED_DATASETS / "coco8" / "coco8.yaml")
FASTERNET = (REPO / "cfg" / "yolov8-fasternet.yaml").read_text()
C2F_FASTER = (REPO / "cfg" / "yolov8-c2f-faster.yaml").read_text()
STAGE1 = "[-1, 1, FasterNetBlock, [64]]"
MODELS = {  # file name (with a scale letter, so Ultralytics has no scale to warn about) -> bad model YAML text
    "yolov8n-pconv-c2.yaml": FASTERNET.replace(STAGE1, "[-1, 1, PConv, [128]]"),
    "yolov8n-ndiv0.yaml": FASTERNET.replace(STAGE1, "[-1, 1, FasterNetBlock, [64, 0]]"),
    "yolov8n-ndiv-big.yaml": FASTERNET.replace(STAGE1, "[-1, 1, FasterNetBlock, [64, 1000]]"),
    "yolov8n-ndiv-str.yaml": FASTERNET.replace(STAGE1, "[-1, 1, FasterNetBlock, [64, four]]"),
    "yolov8n-act.yaml": FASTERNET.replace("n: gelu", "n: swishy"),
    "yolov8n-mlp-str.yaml": FASTERNET.replace(STAGE1, "[-1, 1, FasterNetBlock, [64, 4, two]]"),
    "yolov8n-drop-path.yaml": FASTERNET.replace(STAGE1, "[-1, 1, FasterNetBlock, [64, 4, 2, null, 1.5]]"),
    "yolov8n-typo.yaml": FASTERNET.replace("FasterNetBlock, [128]", "FasterNetBlok, [128]"),
    "yolov8n-no-act.yaml": FASTERNET.replace("fasternet_act: { n: gelu,", "fasternet_act: {"),
    "yolov8n-c2f-args.yaml": C2F_FASTER.replace("C2f_Faster, [128, True]", "C2f_Faster, [128, True, 0.5, 4, 2, 9, 9]"),
    "yolov8n-not-yaml.yaml": "backbone: [unclosed\nhead: {\n",
    "yolov8n-empty.yaml": "",
    "yolov8n-no-head.yaml": FASTERNET.split("head:")[0],
    "yolov8n-bw-typo.yaml": FASTERNET.replace("\nscales:", "\nbackbone_weights: { q: fasternet_t0 }\nscales:", 1),
}

# (entry point, arguments, exit status, words the error line contains); {tmp} is the folder of the fixture files
CASES = [
    # --- train: model YAMLs, each built once before anything else
    ("cli", "train --model {tmp}/yolov8n-pconv-c2.yaml", 1, ["layer 1", "PConv", "c2=80"]),
    ("cli", "train --model {tmp}/yolov8n-ndiv0.yaml", 1, ["layer 1", "FasterNetBlock", "n_div=0"]),
    ("train_yolo.py", "--model {tmp}/yolov8n-ndiv-big.yaml", 1, ["layer 1", "n_div=1000"]),
    ("cli", "train model={tmp}/yolov8n-ndiv-str.yaml", 1, ["layer 1", "n_div='four'"]),
    ("train_yolo.py", "--model {tmp}/yolov8n-act.yaml", 1, ["yolov8n-act.yaml", "'swishy'"]),
    ("cli", "train --model {tmp}/yolov8n-mlp-str.yaml", 1, ["layer 1", "mlp_ratio='two'"]),
    ("cli", "train --model {tmp}/yolov8n-drop-path.yaml", 1, ["layer 1", "drop_path=1.5"]),
    ("train_yolo.py", "--model {tmp}/yolov8n-typo.yaml", 1, ["layer 3", "'FasterNetBlok'", "FasterNetBlock"]),
    ("cli", "train --model {tmp}/yolov8n-no-act.yaml", 1, ["fasternet_act", "scale 'n'"]),
    ("cli", "train --model {tmp}/yolov8n-c2f-args.yaml", 1, ["layer 2", "C2f_Faster", "9, 9"]),
    ("train_yolo.py", "--model yolov8q-fasternet.yaml", 1, ["yolov8q-fasternet.yaml", "not found"]),
    ("cli", "train --model {tmp}/yolov8n-not-yaml.yaml", 1, ["yolov8n-not-yaml.yaml", "YAML syntax error"]),
    ("cli", "train --model {tmp}/binary.yaml", 1, ["binary.yaml", "YAML syntax error"]),
    ("train_yolo.py", "--model {tmp}/yolov8n-empty.yaml", 1, ["yolov8n-empty.yaml", "is empty"]),
    ("cli", "train --model {tmp}/yolov8n-no-head.yaml", 1, ["yolov8n-no-head.yaml", "'head:'"]),
    ("cli", "train --model {tmp}/nosuch.yaml", 1, ["nosuch.yaml", "not found"]),
    ("train_yolo.py", "--model {tmp}/truncated.pt", 1, ["truncated.pt", "truncated"]),
    ("cli", "train --model {tmp}/nosuch.pt", 1, ["nosuch.pt", "no such file"]),
    ("cli", "train --model {tmp}", 1, ["is a folder"]),
    # --- train: dataset, device, output, backbone weights (checked before any training)
    ("cli", "train --data {tmp}/nosuch-data.yaml", 1, ["nosuch-data.yaml", "does not exist"]),
    ("train_yolo.py", "--data {tmp}/broken-data.yaml", 1, ["broken-data.yaml", "YAML syntax error"]),
    ("cli", "train --data {tmp}/no-images.yaml", 1, ["no-images.yaml", "images not found"]),
    ("cli", "train --data {tmp}/no-train.yaml", 1, ["no-train.yaml", "'train:'"]),
    ("train_yolo.py", "--device 7", 1, ["device '7'", "no CUDA device"]),
    ("cli", "train --project {tmp}/blocker", 1, ["--project", "blocker", "is a file"]),
    ("cli", "train --backbone-weights {tmp}/random.pth", 1, ["random.pth", "not a PyTorch checkpoint"]),
    ("train_yolo.py", "--backbone-weights {tmp}", 1, ["is a folder"]),
    # --- train: argument values
    ("train_yolo.py", "--imgsz -5", 2, ["imgsz=-5"]),
    ("cli", "train epochs=0", 2, ["epochs=0"]),
    ("cli", "train --batch 0", 2, ["batch=0"]),
    ("cli", "train --seed -1", 2, ["seed=-1"]),
    ("cli", "train lr0=abc", 2, ["lr0=abc"]),
    ("train_yolo.py", "--lr00 0.1", 2, ["'lr00'", "lr0"]),
    ("cli", "train --imgsz abc", 2, ["--imgsz", "'abc'"]),
    # --- detect
    ("detect_yolo.py", "--weights yolov8n-fasternet.yaml --conf 2", 2, ["--conf", "2"]),
    ("cli", "detect --weights yolov8n-fasternet.yaml --imgsz -5", 2, ["--imgsz", "-5"]),
    ("cli", "detect --weights x.pt --max-frames -1", 2, ["--max-frames", "-1"]),
    (
        "cli",
        "detect --weights x.pt --source {tmp}/photo.png --save --output {tmp}/blocker/run",
        1,
        ["--output", "blocker"],
    ),
    ("detect_yolo.py", "--weights x.pt --source {tmp}/photo.png --save --output {tmp}/blocker", 1, ["is a file"]),
    ("cli", "detect --weights yolov8n-fasternet.yaml --source {tmp}/photo.png --device 7", 1, ["device '7'"]),
    ("cli", "detect --weights {tmp}/nosuch.pt --source {tmp}/photo.png", 1, ["nosuch.pt", "no such file"]),
    ("detect_yolo.py", "--weights {tmp}/yolov8n-ndiv0.yaml --source {tmp}/photo.png", 1, ["layer 1", "n_div=0"]),
    ("cli", "detect --weights yolov8n-fasternet.yaml --source {tmp}/nosuch.mp4", 1, ["source not found"]),
    ("cli", "detect --weights {tmp}/random.onnx --source {tmp}/photo.png", 1, ["random.onnx", "not an ONNX model"]),
    ("detect_yolo.py", "--weights x.pt --source {tmp}/photo.png --threads 0", 2, ["--threads", "'0'"]),
    ("cli", "detect --weights x.pt --source {tmp}/photo.png --runtime tensorrt", 2, ["--runtime", "tensorrt"]),
    ("cli", "detect --weights {tmp}/random.mnn --source {tmp}/photo.png", 1, ["random.mnn", "not an MNN model"]),
    ("cli", "detect --weights {tmp}/random.tflite --source {tmp}/photo.png", 1, ["random.tflite", "not a LiteRT"]),
    ("cli", "detect --weights {tmp}/random_ncnn_model --source {tmp}/photo.png", 1, ["random_ncnn_model", "NCNN"]),
    ("cli", "detect --weights {tmp}/half_ncnn_model --source {tmp}/photo.png", 1, ["model.ncnn.bin is missing"]),
    # --- ablate: everything checked before the first training
    ("ablate_yolo.py", "--models {tmp}/nosuch.yaml --data {coco8}", 1, ["nosuch.yaml", "not found"]),
    ("cli", "ablate --models yolov8n.yaml {tmp}/yolov8n-typo.yaml --data {coco8}", 1, ["layer 3", "FasterNetBlok"]),
    ("cli", "ablate --models yolov8n.yaml --data {tmp}/nosuch-data.yaml", 1, ["nosuch-data.yaml"]),
    ("ablate_yolo.py", "--models yolov8n.yaml --data {coco8} --out {tmp}/blocker", 1, ["--out", "is a file"]),
    ("cli", "ablate --models yolov8n.yaml --device 7", 1, ["device '7'"]),
    ("cli", "ablate --models yolov8n.yaml lr0=abc", 2, ["lr0=abc"]),
    ("ablate_yolo.py", "--models yolov8n.yaml mosaik=0.5", 2, ["'mosaik'", "mosaic"]),
    ("cli", "ablate --models yolov8n.yaml project=elsewhere", 2, ["project", "set by the ablation"]),
    ("cli", "ablate --seeds -1", 2, ["--seeds", "-1"]),
    ("cli", "ablate --imgsz 0", 2, ["--imgsz", "0"]),
    (
        "cli",
        "ablate --models yolov8n.yaml --data {coco8} --executor ray --address 127.0.0.1:{closed}",
        1,
        ["127.0.0.1:{closed}", "--connect-timeout"],
    ),  # fmt: skip
    ("cli", "ablate --models yolov8n.yaml --executor ray --address nocolon", 2, ["--address", "nocolon"]),
    # --- ablate: compression variants (a pruned or distilled model against its source)
    ("cli", "ablate --models yolov8n.yaml --prune yolov8n.yaml 1", 2, ["--prune yolov8n.yaml 1", "between 0 and 1"]),
    ("ablate_yolo.py", "--models yolov8n.yaml --prune yolov8n.yaml 0.5x", 2, ["speed-up must be above 1"]),
    ("cli", "ablate --models yolov8n.yaml --prune nosuch.yaml 0.3", 2, ["nosuch.yaml", "not one of --models"]),
    ("cli", "ablate --models yolov8n.yaml --distill nosuch.yaml yolov8n.yaml", 2, ["student nosuch.yaml"]),
    (
        "cli",
        "ablate --models yolov8n.yaml --data {coco8} --distill yolov8n.yaml {tmp}/nosuch.pt",
        1,
        ["--distill yolov8n.yaml", "nosuch.pt", "no such file"],
    ),  # fmt: skip
    (
        "cli",
        "ablate --models yolov8n.yaml --data {coco8} --distill yolov8n.yaml {tmp}/classify.pt",
        1,
        ["classify.pt", "a classify model", "detect"],
    ),  # fmt: skip
    (
        "ablate_yolo.py",
        "--models yolov8n.yaml --data {coco8} --distill yolov8n.yaml {tmp}/teacher-nc3.pt",
        1,
        ["teacher-nc3.pt", "3 classes", "80"],
    ),  # fmt: skip
    # --- weights (also as python -m yolo_fasternet weights)
    ("python -m", "weights info {tmp}/random.pth", 1, ["random.pth", "not a PyTorch checkpoint"]),
    ("python -m", "weights info {tmp}", 1, ["is a folder"]),
    ("cli", "weights info {tmp}/truncated.pth", 1, ["truncated.pth", "truncated or corrupt"]),
    ("python -m", "weights load {tmp}/random.pth --model {tmp}/nosuch.yaml", 1, ["nosuch.yaml", "not found"]),
    ("python -m", "weights convert {tmp}/random.pth {tmp}/nodir/out.pth --layout timm", 1, ["nodir", "does not exist"]),
    ("cli", "weights frobnicate", 2, ["frobnicate"]),
    # --- modules: a checkpoint that is not one is an error, never "needs nothing"
    ("cli", "modules --checkpoint {tmp}/nosuch.pt", 1, ["nosuch.pt", "no such file"]),
    ("cli", "modules --checkpoint {tmp}/random.pth", 1, ["random.pth", "not a PyTorch checkpoint"]),
    ("python -m", "modules --checkpoint {tmp}/truncated.pt", 1, ["truncated.pt", "truncated"]),
    ("cli", "modules --checkpoint {tmp}", 1, ["is a folder"]),
    # --- graft: a file that is not a YAML, wherever it comes from
    ("cli", "graft {tmp}/photo.png C2f=C2f_Faster", 2, ["photo.png", "not a text file"]),
    ("cli", "graft {tmp}/yolov8n-not-yaml.yaml C2f=C2f_Faster", 2, ["yolov8n-not-yaml.yaml", "not valid YAML"]),
    ("python -m", "graft {tmp}/nosuch.yaml C2f=C2f_Faster", 2, ["nosuch.yaml", "not found"]),
    # --- backbone_weights in a model YAML: a per-scale key that is no scale
    ("cli", "train --model {tmp}/yolov8n-bw-typo.yaml", 1, ["backbone_weights", "'q'", "n, s, m, l, x"]),
    # --- timm backbones by name
    ("cli", "train --model yolov8n-timm-nosuchnet.yaml", 1, ["'nosuchnet' is not a timm model"]),
    # --- quantize
    ("cli", "quantize --weights {tmp}/nosuch.pt", 1, ["nosuch.pt", "no such file"]),
    ("cli", "quantize --weights {tmp}/random.pth", 2, ["random.pth", "trained .pt"]),
    ("cli", "quantize --weights x.pt --fraction 2", 2, ["--fraction", "2"]),
    ("cli", "quantize --weights x.pt --max-loss -1", 2, ["--max-loss", "-1"]),
    # --- prune: an unreachable target, a file that is no detection checkpoint, refused before any work
    ("cli", "prune --weights {tmp}/nosuch.pt --ratio 0.3", 1, ["nosuch.pt", "no such file"]),
    ("cli", "prune --weights {tmp}/random.pth --ratio 0.3", 2, ["random.pth", "trained .pt"]),
    ("cli", "prune --weights x.pt --ratio 1", 2, ["--ratio", "1"]),
    ("cli", "prune --weights x.pt --ratio 0", 2, ["--ratio", "0"]),
    ("cli", "prune --weights x.pt --speed-up 0.5", 2, ["--speed-up", "0.5"]),
    ("cli", "prune --weights x.pt --latency-speed-up 1", 2, ["--latency-speed-up", "above 1", "1.0"]),
    ("python -m", "prune --weights x.pt --latency-speed-up fast", 2, ["--latency-speed-up", "'fast'"]),
    ("cli", "prune --weights x.pt --latency-speed-up nan", 2, ["--latency-speed-up", "nan"]),
    ("cli", "prune --weights x.pt --speed-up 2 --latency-speed-up 2", 2, ["--latency-speed-up", "--speed-up"]),
    ("cli", "prune --weights x.pt", 2, ["--ratio", "--speed-up"]),
    ("python -m", "prune --weights {tmp}/truncated.pt --ratio 0.3", 1, ["truncated.pt"]),
    ("cli", "prune --weights {tmp}/classify.pt --ratio 0.3", 1, ["classify.pt", "classify model", "detection"]),
    # --- distillation teacher (distill_model=, Ultralytics 8.4.190): checked before the dataset is cached
    ("cli", "train --data {coco8} distill_model={tmp}/nosuch.pt", 1, ["distill_model", "nosuch.pt", "no such file"]),
    ("cli", "train --data {coco8} distill_model={tmp}/classify.pt", 1, ["classify.pt", "a classify model", "detect"]),
    ("cli", "train --data {coco8} distill_model={tmp}/teacher-nc3.pt", 1, ["teacher-nc3.pt", "3 classes", "80"]),
    # --- zoo, data, the command itself
    ("cli", "zoo --models {tmp}/binary.yaml --no-latency", 1, ["binary.yaml", "YAML syntax error"]),
    ("cli", "zoo --runs 0", 2, ["--runs", "0"]),
    ("cli", "zoo --scales q", 2, ["--scales", "'q'"]),
    ("cli", "zoo --models nosuchpattern", 2, ["'nosuchpattern'"]),
    ("cli", "data --n-train 0", 2, ["n_train"]),
    ("cli", "data --root {tmp}/blocker", 1, ["blocker"]),
    ("cli", "data --root {tmp}/dense --mode hard --task semantic", 2, ["task 'semantic'", "needs mode 'shapes'"]),
    ("cli", "trian", 2, ["'trian'", "train"]),
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    """The bad inputs the cases name: model YAMLs, datasets, checkpoints, a file where a folder belongs."""
    import ultralytics.utils  # noqa: F401  writes Ultralytics' settings file now, not in (and printed by) a case

    tmp = tmp_path_factory.mktemp("bad-inputs")
    for name, text in MODELS.items():
        (tmp / name).write_text(text)
    (tmp / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp / "broken-data.yaml").write_text("path: [unclosed\ntrain: images\n")
    (tmp / "no-images.yaml").write_text(f"path: {tmp / 'nowhere'}\ntrain: images/train\nval: images/val\nnames: [a]\n")
    (tmp / "no-train.yaml").write_text("val: images/val\nnames: [a]\n")
    (tmp / "blocker").write_text("a file where a folder belongs\n")
    (tmp / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp / "random.onnx").write_bytes((tmp / "random.pth").read_bytes())
    (tmp / "random.mnn").write_bytes((tmp / "random.pth").read_bytes())
    (tmp / "random.tflite").write_bytes((tmp / "random.pth").read_bytes())
    for folder in ("random_ncnn_model", "half_ncnn_model"):
        (tmp / folder).mkdir()
        (tmp / folder / "model.ncnn.param").write_bytes((tmp / "random.pth").read_bytes())
    (tmp / "random_ncnn_model" / "model.ncnn.bin").write_bytes((tmp / "random.pth").read_bytes())
    (tmp / "half_ncnn_model" / "model.ncnn.param").write_text("7767517\n1 1\nInput in0 0 1 in0\n")
    torch.save({"patch_embed.proj.weight": torch.zeros(40, 3, 4, 4)}, tmp / "whole.pth")
    for name in ("truncated.pt", "truncated.pth"):
        (tmp / name).write_bytes((tmp / "whole.pth").read_bytes()[:300])
    cv2.imwrite(str(tmp / "photo.png"), np.zeros((48, 64, 3), np.uint8))
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel

    torch.save({"model": ClassificationModel("yolov8n-fasternet-cls.yaml", verbose=False)}, tmp / "classify.pt")
    torch.save({"model": DetectionModel("yolov8n-fasternet.yaml", nc=3, verbose=False)}, tmp / "teacher-nc3.pt")
    return tmp


CLOSED_PORT = closed_loopback_port()


def _argv(entry: str, args: str, tmp: Path) -> list[str]:
    return [*ENTRY[entry][0], *args.format(tmp=tmp, coco8=COCO8, closed=CLOSED_PORT).split()]


@pytest.fixture(scope="module")
def results(bad_files) -> dict[int, subprocess.CompletedProcess]:
    """Every case run once, two processes at a time, in a scratch folder."""
    env = {**os.environ, "OPENCV_FFMPEG_LOGLEVEL": "-8"}
    env.pop("YOLO_FASTERNET_VERBOSE", None)
    cwd = bad_files / "cwd"
    cwd.mkdir()

    def run(case):
        entry, args, *_ = case
        return subprocess.run(
            _argv(entry, args, bad_files), cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(enumerate(pool.map(run, CASES)))


def test_there_are_at_least_40_cases_through_every_entry_point():
    assert len(CASES) >= 40 and {entry for entry, *_ in CASES} == set(ENTRY)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{e}: {a.split(' --')[0][:40]}" for e, a, *_ in CASES])
def test_bad_input_gives_its_exit_status_and_one_line_naming_the_culprit(index, results, bad_files):
    entry, args, status, words = CASES[index]
    proc = results[index]
    stderr = proc.stderr.replace(str(bad_files), "{tmp}")
    where = f"{' '.join(_argv(entry, args, bad_files))}\nstdout: {proc.stdout[-1500:]}\nstderr: {proc.stderr[-3000:]}"
    assert proc.returncode == status, where
    assert "Traceback" not in proc.stderr, where
    lines = stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith(f"{ENTRY[entry][1]}"), where
    assert ": error: " in lines[0], where
    assert proc.stdout.strip() == "", where  # nothing started: no training banner, no model summary
    for word in (w.format(closed=CLOSED_PORT) for w in words):
        assert word in stderr, f"{word!r} missing\n{where}"


# --- the mechanism, in this process ----------------------------------------------------------------------------------


def test_verbose_anywhere_shows_the_traceback_and_still_ends_with_the_error_line(bad_files):
    argv = _argv("cli", "train --verbose --model {tmp}/yolov8n-ndiv0.yaml", bad_files)
    proc = subprocess.run(argv, cwd=bad_files, capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_FAILED
    assert "Traceback" in proc.stderr and "ModelYamlError" in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("yolo-fasternet train: error: model ") and "model YAML layer 1" in last


def test_an_unexpected_exception_is_reported_as_a_bug_with_a_pointer_to_verbose(capsys, monkeypatch):
    monkeypatch.delenv("YOLO_FASTERNET_VERBOSE", raising=False)

    @command("yolo-fasternet broken")
    def main(argv):
        return 1 / 0

    monkeypatch.setattr(sys, "argv", ["-c"])
    assert main([]) == EXIT_FAILED
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "yolo-fasternet broken: error: ZeroDivisionError: division by zero",
        "yolo-fasternet broken: this looks like a bug; run with --verbose for the traceback",
    ]


def test_ctrl_c_exits_130_with_one_line(capsys, monkeypatch):
    @command("yolo-fasternet slow")
    def main(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys, "argv", ["-c"])
    assert main([]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "yolo-fasternet slow: interrupted\n"


# --- ablate: failed, killed and interrupted trainings ----------------------------------------------------------------


def _run_one(spec: dict, log: Path) -> None:
    """Run one spec through the local executor, as the ablation does."""
    LocalExecutor(jobs=1).run([spec], lambda s: log, lambda n: None, lambda s: None)


def test_a_failed_child_training_names_model_seed_its_error_and_the_log(tmp_path):
    spec = {"model": "yolov8n.yaml", "seed": 3, "run": str(tmp_path / "run")}
    spec["train"] = {"data": str(tmp_path / "gone.yaml"), "epochs": 1}
    log = tmp_path / "run.log"
    with pytest.raises(CommandError) as exc:
        _run_one(spec, log)
    message = str(exc.value)
    assert message.startswith("training yolov8n seed 3 failed (exit code 1: ") and message.endswith(f", log: {log}")
    assert "gone.yaml" in message and "\n" not in message
    assert "Traceback" in log.read_text()  # the log keeps the child's traceback for a bug report


def test_a_child_killed_by_a_signal_says_which(tmp_path):
    executor = LocalExecutor(jobs=1, worker=[PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    spec = {"model": "yolov8n.yaml", "seed": 0, "run": str(tmp_path / "run"), "train": {"epochs": 1}}
    with pytest.raises(CommandError, match=r"^training yolov8n seed 0 failed \(killed by SIGKILL\), log: "):
        executor.run([spec], lambda s: tmp_path / "run.log", lambda n: None, lambda s: None)


class _StoppingExecutor:
    """Finishes a.yaml's run like a worker would, then stops the ablation at b.yaml with ``stop``."""

    def __init__(self, stop):
        self.stop = stop

    def run(self, specs, log_of, on_epochs, on_done):
        for spec in specs:
            if spec["model"] == "b.yaml":
                raise self.stop
            ablate.prepare_run_folder(spec)
            record = {"epoch_times_s": [1.0], "peak_mem_mb": 1.0, "peak_gpu_mem_mb": None}
            ablate.record_results(spec, {**record, **dict.fromkeys(ablate.METRIC_KEYS, 0.5)})
            on_done(spec)


@pytest.mark.parametrize(
    "stop, status, words",
    [
        (KeyboardInterrupt(), EXIT_INTERRUPTED, ["interrupted; 1 of 2 runs finished and kept in"]),
        (CommandError("training b seed 0 failed (exit code 1: boom), log: x.log"), EXIT_FAILED, ["boom", "1 of 2"]),
    ],
    ids=["ctrl-c", "failed-training"],
)
def test_a_stopped_ablation_keeps_its_finished_runs(stop, status, words, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ablate, "make_executor", lambda args, device: _StoppingExecutor(stop))
    monkeypatch.setattr(ablate, "preflight", lambda *a: None)
    argv = ["--models", "a.yaml", "b.yaml", "--device", "cpu", "--out", str(tmp_path)]
    assert ablate.main(argv) == status
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and not line.startswith("ablation: ")]
    assert len(err) <= 2 and all(w in "\n".join(err) for w in words), err
    assert [p.parent.name.split("-")[0] for p in tmp_path.glob("runs/*/DONE")] == ["a"]


@pytest.mark.slow
def test_ctrl_c_in_a_real_ablation_exits_130_with_one_line(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while the first training runs."""
    out = tmp_path / "out"
    argv = [*ENTRY["ablate_yolo.py"][0], "--models", "yolov8n.yaml", "--data", COCO8, "--epochs", "1"]
    argv += ["--imgsz", "64", "--batch", "4", "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # the child writes to its log once it runs (SIGINT during the fork itself is another story: CPython prints
        # an ignored exception from its at-fork handlers in the half-born child)
        while not any(f.stat().st_size for f in out.glob("*.log")) and proc.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert errors == [f"ablate_yolo.py: error: interrupted; 0 of 1 runs finished and kept in {out}; the same command "
                      "continues from there"], stderr  # fmt: skip
