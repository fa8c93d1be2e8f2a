"""The local executor's worker process: ``python -m yolo_fasternet.apps.ablation.worker <run>/spec.json``.

It trains and validates one run (``runs.train_one``) and never outlives the ablation that started it: a watchdog
thread exits as soon as its parent changes (the portable half; on Linux ``PR_SET_PDEATHSIG``, set by the executor,
kills it sooner), and the run folder's lock descriptor it inherited stays with it alone until it ends.
A failure is one line ``yolo-fasternet ablate: error: ...`` at the end of the run's log (the executor reports it).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from ..command_errors import command
from .runs import train_one

PARENT_ENV = "YOLO_FASTERNET_ABLATE_PARENT"  # pid of the ablation; the worker's watchdog exits when it changes
LOCK_ENV = "YOLO_FASTERNET_ABLATE_LOCK_FD"  # the descriptor of the run folder's lock, inherited by the worker


def start_parent_watchdog(interval: float = 1.0) -> None:
    """In a worker: exit at once (code 1) if the ablation that started it is gone (its parent pid changes)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def guard_worker() -> None:
    """Start the parent watchdog; keep the inherited run-folder lock out of programs this process may exec."""
    start_parent_watchdog()
    if os.environ.get(LOCK_ENV):
        os.set_inheritable(int(os.environ[LOCK_ENV]), False)  # held (open and locked) until this process ends


@command("yolo-fasternet ablate")
def main(argv: list[str] | None = None) -> int:
    """Run the spec named by the only argument."""
    guard_worker()
    train_one(json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
