"""Ablation executors: a killed ablation leaves no training behind, a re-run starts clean, failures name the signal.

The local executor's children here are small Python workers (sleep, or write results), not trainings: what is
pinned is process handling, which does not depend on what the child computes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from yolo_fasternet.apps import ablate
from yolo_fasternet.apps.ablation.executors import LocalExecutor, RunFailedError, lock_run_folder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process handling")

# A worker that records its pid in the run folder, then keeps writing into it until killed (plain Python: what
# must stop it is the executor's doing, PR_SET_PDEATHSIG and the signal handlers, not code in the worker)
SLEEPER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    run = Path(json.loads(Path(sys.argv[1]).read_text())["run"])
    (run / "pid").write_text(str(os.getpid()))
    while True:
        (run / "still-writing").write_text(str(time.time()))
        time.sleep(0.1)
    """
)
# A worker that leaves what a finished training leaves: metrics.json, then DONE
FINISHER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    spec = json.loads(Path(sys.argv[1]).read_text())
    run = Path(spec["run"])
    (run / "metrics.json").write_text(json.dumps({"epoch_times_s": [1.0], "peak_mem_mb": 1.0}))
    (run / "DONE").write_text("")
    """
)
# The ablation side: run one spec with a given worker script (argv: run folder, worker source)
PARENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from yolo_fasternet.apps.ablation.executors import LocalExecutor
    run = Path(sys.argv[1])
    spec = {"model": "m.yaml", "seed": 0, "run": str(run), "train": {"epochs": 1}}
    LocalExecutor(poll_s=0.05, worker=(sys.executable, "-c", sys.argv[2])).run(
        [spec], lambda s: run.parent / "log.txt", lambda n: None, lambda s: print("done", flush=True))
    """
)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as dead: it executes nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _start_parent(run: Path, worker: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", PARENT, str(run), worker], env=env, stdout=subprocess.PIPE)


def _run_locally(run: Path, worker: str) -> None:
    spec = {"model": "m.yaml", "seed": 0, "run": str(run), "train": {"epochs": 1}}
    executor = LocalExecutor(poll_s=0.05, worker=(sys.executable, "-c", worker))
    executor.run([spec], lambda s: run.parent / "log.txt", lambda n: None, lambda s: None)


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 128 + 15)])
def test_killed_ablation_leaves_no_training_running(tmp_path, signum, exit_code):
    run = tmp_path / "runs" / "m-s0-abc"
    parent = _start_parent(run, SLEEPER)
    assert _wait_for(lambda: (run / "pid").exists()), "the worker never started"
    child = int((run / "pid").read_text())
    parent.send_signal(signum)
    assert parent.wait(timeout=20) == exit_code
    assert _wait_for(lambda: not _alive(child)), f"worker {child} survived its ablation ({signum.name})"


def test_rerun_after_a_kill_starts_the_run_clean(tmp_path):
    run = tmp_path / "runs" / "m-s0-abc"
    parent = _start_parent(run, SLEEPER)
    assert _wait_for(lambda: (run / "pid").exists())
    parent.kill()
    parent.wait(timeout=20)
    _run_locally(run, FINISHER)  # at once: the re-run waits for the dying worker's lock before clearing the folder
    files = sorted(p.name for p in run.iterdir())
    assert files == ["DONE", "metrics.json", "spec.json"]  # nothing of the killed run, nothing written since
    time.sleep(0.3)
    assert sorted(p.name for p in run.iterdir()) == files


def test_a_folder_in_use_by_a_running_training_is_not_reused(tmp_path):
    run = tmp_path / "runs" / "m-s0-abc"
    parent = _start_parent(run, SLEEPER)
    try:
        assert _wait_for(lambda: (run / "pid").exists())
        with pytest.raises(RunFailedError, match=f"run folder {run} is in use by another training"):
            lock_run_folder(run, wait_s=0.3)
        assert (run / "pid").exists()  # untouched
    finally:
        parent.kill()
        parent.wait(timeout=20)


def test_a_killed_training_reports_its_signal(tmp_path):
    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(RunFailedError, match=r"^training m seed 0 failed \(killed by SIGKILL\), log: "):
        _run_locally(tmp_path / "runs" / "m-s0-abc", suicide)


def test_a_failed_run_does_not_lose_the_finished_ones(tmp_path):
    ok = {"model": "ok.yaml", "seed": 0, "run": str(tmp_path / "ok"), "train": {"epochs": 1}}
    bad = {"model": "bad.yaml", "seed": 0, "run": str(tmp_path / "bad"), "train": {"epochs": 1}}
    script = FINISHER.replace('run = Path(spec["run"])', 'run = Path(spec["run"])\nassert run.name != "bad"')
    executor = LocalExecutor(poll_s=0.05, worker=(sys.executable, "-c", script))
    with pytest.raises(RunFailedError, match=r"training bad seed 0 failed \(exit code 1: "):
        executor.run([ok, bad], lambda s: tmp_path / f"{Path(s['run']).name}.log", lambda n: None, lambda s: None)
    assert (tmp_path / "ok" / ablate.DONE).exists()
    assert json.loads((tmp_path / "ok" / "metrics.json").read_text())["peak_mem_mb"] == 1.0
