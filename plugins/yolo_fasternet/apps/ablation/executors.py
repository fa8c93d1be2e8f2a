"""Where the ablation's (model, seed) trainings run: local child processes (the default) or Ray tasks.

Both executors take run specs (dicts with ``model``, ``seed``, ``run`` folder, ``train`` arguments) and leave, for
each run that succeeds, ``metrics.json`` and then a ``DONE`` marker in its run folder, so the ablation's reports and
its resume logic never know which executor ran a run.

Local (``LocalExecutor``): each run is ``python -m yolo_fasternet.apps.ablation.worker spec.json``, ``jobs`` at a
time. A run can never outlive the ablation that started it, so a re-run never shares a run folder with a stray
training: the child gets ``PR_SET_PDEATHSIG`` = SIGKILL on Linux (the kernel kills it when the parent dies, even by
SIGKILL), and a watchdog thread in the worker exits when its parent changes (any POSIX system); SIGTERM/SIGHUP of the
parent kill the children before it exits. On top of that the child holds an exclusive ``flock`` on
``<run folder>.lock`` for its whole life, and a new run waits for that lock before it clears the folder.

Ray (``RayExecutor``): each run is a Ray task with its CPU/GPU resources, on a local Ray instance (or the one this
process already initialised) or a cluster (``address``). The task returns its metrics and the driver writes them,
so the results land in this machine's output folder even when the run trained on another node. A task whose worker
died or whose node was lost is resubmitted up to ``retries`` times and each retry is reported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..command_errors import VERBOSE_ENV, CommandError, UsageError
from .runs import DONE, prepare_run_folder, record_results, run_epochs, run_label, train_and_validate
from .worker import LOCK_ENV, PARENT_ENV

try:  # POSIX; elsewhere run folders are not locked (the parent-death handling still applies)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

CONNECT_TIMEOUT_S = 10.0  # how long --address HOST:PORT may take to accept a TCP connection before we give up
LOCK_WAIT_S = 30.0  # how long a new run waits for a dying training from an earlier invocation to release its folder


class RunFailedError(CommandError):
    """A run ended without results; the message is one line naming the run and the cause."""


def describe_exit(code: int) -> str:
    """'exit code 3' or 'killed by SIGKILL' for a child's return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def child_error(log: Path) -> str:
    """The last error line a failed training wrote to its log (``... error: <message>``), or its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    if errors:
        return errors[-1].split(": error: ", 1)[1]
    return lines[-1] if lines else "no output"


# ----------------------------------------------------------------------------------------------- parent death
def _die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: on Linux, ask the kernel to SIGKILL this child when ``parent`` dies."""
    prctl = None
    if sys.platform.startswith("linux"):
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: no dlopen between fork and exec

    def preexec() -> None:
        if prctl is not None:
            prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def lock_run_folder(folder: Path, wait_s: float = LOCK_WAIT_S) -> int | None:
    """Open and exclusively lock ``<folder>.lock``; return the descriptor (None where there is no flock).

    Waits up to ``wait_s`` for a training from an earlier, killed invocation to die; raises ``RunFailedError`` if the
    folder is still in use then (another ablation running into the same ``--out``).
    """
    if fcntl is None:
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{folder}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RunFailedError(
                    f"run folder {folder} is in use by another training (another ablation on the same --out?)"
                ) from None
            time.sleep(0.2)


# ------------------------------------------------------------------------------------------------------ local
class LocalExecutor:
    """Child processes on this machine, ``jobs`` at a time (1: one after another, the default)."""

    name = "local"

    WORKER = (sys.executable, "-m", "yolo_fasternet.apps.ablation.worker")  # + the run's spec.json

    def __init__(self, jobs: int = 1, poll_s: float = 0.5, worker: tuple[str, ...] = WORKER):
        self.jobs, self.poll_s, self.worker = jobs, poll_s, worker
        self._children: dict[int, subprocess.Popen] = {}

    def _spawn(self, spec: dict, log: Path) -> subprocess.Popen:
        folder = Path(spec["run"])
        lock = lock_run_folder(folder)
        try:
            prepare_run_folder(spec)  # only now: no earlier training can still be writing into it
            env = {**os.environ, PARENT_ENV: str(os.getpid()), VERBOSE_ENV: "1"}  # the log keeps a traceback
            if lock is not None:
                env[LOCK_ENV] = str(lock)
            with open(log, "w") as f:
                return subprocess.Popen(
                    [*self.worker, str(folder / "spec.json")],
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    env=env,
                    pass_fds=() if lock is None else (lock,),
                    preexec_fn=_die_with_parent(os.getpid()) if os.name == "posix" else None,
                )
        finally:
            if lock is not None:
                os.close(lock)  # the child's copy now holds the lock alone: it is released when the child dies

    def kill_all(self) -> None:
        """Kill every running child and wait for it (used on SIGTERM, Ctrl-C and errors)."""
        for proc in self._children.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self._children.values():
            proc.wait()
        self._children.clear()

    def run(self, specs: Iterable[dict], log_of: Callable[[dict], Path], on_epochs, on_done) -> None:
        """Run every spec; ``on_epochs(n)`` per finished epoch, ``on_done(spec)`` per finished run.

        On a failed run no new run starts, running ones finish, then ``RunFailedError`` is raised (finished runs keep
        their DONE markers). SIGTERM and SIGHUP kill the children and exit with 128 + signal number.
        """
        pending, running, failures = list(specs), {}, []
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}

        def on_signal(signum, frame):
            self.kill_all()
            raise SystemExit(128 + signum)

        if threading.current_thread() is threading.main_thread():
            for s in previous:
                signal.signal(s, on_signal)
        try:
            while pending or running:
                while pending and len(running) < self.jobs and not failures:
                    spec = pending.pop(0)
                    proc = self._spawn(spec, log_of(spec))
                    self._children[proc.pid] = proc
                    running[proc.pid] = (spec, proc, 0)
                if not running:
                    break
                time.sleep(self.poll_s)
                for pid, (spec, proc, seen) in list(running.items()):
                    done = _epochs_done(spec)
                    if done > seen:
                        on_epochs(done - seen)
                    running[pid] = (spec, proc, done)
                    if proc.poll() is None:
                        continue
                    del running[pid], self._children[pid]
                    if proc.returncode == 0 and (Path(spec["run"]) / DONE).exists():
                        on_epochs(run_epochs(spec) - done)
                        on_done(spec)
                    else:
                        why = describe_exit(proc.returncode)
                        if proc.returncode > 0:  # the child's own one-line error (its traceback stays in the log)
                            why += f": {child_error(log_of(spec))}"
                        failures.append(f"training {run_label(spec)} failed ({why}), log: {log_of(spec)}")
        finally:
            self.kill_all()
            if threading.current_thread() is threading.main_thread():
                for s, handler in previous.items():
                    signal.signal(s, handler)
        if failures:
            raise RunFailedError("; ".join(failures))


def _epochs_done(spec: dict) -> int:
    progress = Path(spec["run"]) / "progress.jsonl"
    return len(progress.read_text().splitlines()) if progress.exists() else 0


# -------------------------------------------------------------------------------------------------------- ray
def _ray_train(spec: dict) -> dict:
    """The Ray task: train and validate one run in this (fresh) Ray worker process; return its metrics record."""
    Path(spec["run"]).mkdir(parents=True, exist_ok=True)  # on another node the folder does not exist yet
    return train_and_validate(spec)


def host_and_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray address ``HOST:PORT``, ``ray://HOST:PORT`` or ``[IPv6]:PORT``; None for ``auto``/``local``.

    Anything else is a ``UsageError`` naming the address.
    """
    if address in ("auto", "local"):
        return None
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--address {address}: expected HOST:PORT (or auto), e.g. 10.0.0.5:6379")
    return host, int(port)


def check_reachable(address: str, timeout: float) -> None:
    """Fail within ``timeout`` seconds, with one line, where nothing accepts a TCP connection at ``address``.

    Ray itself would retry an unreachable cluster for minutes; this plain connect answers first.
    """
    target = host_and_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise CommandError(
            f"--address {address}: no Ray cluster answers there ({why} within {timeout:g} s); nothing was trained. "
            "Start it, or give it longer with --connect-timeout SECONDS"
        ) from None


class RayExecutor:
    """Ray tasks, one per run, each with ``cpus`` CPUs (and one GPU when training on CUDA)."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        cpus: int = 1,
        retries: int = 2,
        task: Callable = _ray_train,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ):
        try:
            import ray
        except ImportError:
            raise RunFailedError("--executor ray needs Ray: pip install 'yolo-fasternet[cluster]'") from None
        if address:
            check_reachable(address, connect_timeout)  # before anything is trained or written
        self.ray, self.address, self.cpus, self.retries, self.task = ray, address, cpus, retries, task

    def _connect(self) -> None:
        if self.ray.is_initialized():  # a caller (or a test) chose the instance already
            return
        # The ablation's own package must import in the workers: pass this process's module path along
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}} if not self.address else None
        self.ray.init(address=self.address, runtime_env=env, log_to_driver=False, include_dashboard=False)

    def run(self, specs: Iterable[dict], log_of: Callable[[dict], Path], on_epochs, on_done) -> None:
        """Submit every spec as a task, write each result as it arrives; retry lost workers; raise on failures."""
        ray, specs = self.ray, list(specs)
        self._connect()
        gpu = any(str(s["train"].get("device", "cpu")) not in ("cpu", "mps") for s in specs)
        task = ray.remote(num_cpus=self.cpus, num_gpus=1 if gpu else 0, max_calls=1, max_retries=0)(self.task)
        lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError)
        attempts, refs, failures = {}, {}, []
        for spec in specs:
            prepare_run_folder(spec)
            attempts[spec["run"]] = 1
            refs[task.remote(spec)] = spec
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                spec = refs.pop(ready[0])
                try:
                    record = ray.get(ready[0])
                except lost as e:
                    if attempts[spec["run"]] <= self.retries:
                        attempts[spec["run"]] += 1
                        print(
                            f"ray: {run_label(spec)} lost its worker ({type(e).__name__}), retrying "
                            f"(attempt {attempts[spec['run']]} of {self.retries + 1})",
                            flush=True,
                        )
                        refs[task.remote(spec)] = spec
                    else:
                        failures.append(f"training {run_label(spec)} lost its worker {attempts[spec['run']]} times")
                    continue
                except ray.exceptions.RayTaskError as e:
                    cause = str(e.cause if getattr(e, "cause", None) else e).strip().splitlines()
                    failures.append(f"training {run_label(spec)} failed on a Ray worker: {cause[-1] if cause else e}")
                    continue
                record_results(spec, record)
                on_epochs(run_epochs(spec))
                on_done(spec)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
        if failures:
            raise RunFailedError("; ".join(failures))
