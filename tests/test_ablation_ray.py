"""``--executor ray`` on a local Ray instance: real tiny trainings, the local executor's CSV, lost workers retried.

Skipped where Ray is not installed (it comes from the optional extra: ``pip install 'yolo-fasternet[cluster]'``).
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'yolo-fasternet[cluster]')")

from yolo_fasternet.apps import ablate  # noqa: E402
from yolo_fasternet.apps.ablation.executors import RayExecutor, RunFailedError  # noqa: E402

METRICS = ("precision", "recall", "mAP50", "mAP50-95")
pytestmark = pytest.mark.slow  # each test waits for Ray workers to start (and die): tens of seconds


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs; workers import this checkout's package and this test module."""
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=env)
    yield ray
    ray.shutdown()


def lose_the_first_worker(spec: dict) -> dict:
    """A Ray task whose first attempt dies like a lost node (the process vanishes), the second succeeds."""
    marker = Path(spec["run"]) / "attempted"
    if not marker.exists():
        marker.write_text("")
        os._exit(1)
    return {"epoch_times_s": [1.0], "peak_mem_mb": 1.0, "peak_gpu_mem_mb": None, **dict.fromkeys(METRICS, 0.5)}


def always_lose_the_worker(spec: dict) -> dict:
    os._exit(1)


def _spec(tmp_path, name="m"):
    return {"model": f"{name}.yaml", "seed": 0, "run": str(tmp_path / name), "train": {"epochs": 1, "device": "cpu"}}


def test_a_lost_worker_is_retried_and_reported(local_ray, tmp_path, capsys):
    done = []
    executor = RayExecutor(retries=1, task=lose_the_first_worker)
    executor.run([_spec(tmp_path)], lambda s: tmp_path / "log", lambda n: None, done.append)
    assert [s["model"] for s in done] == ["m.yaml"] and (tmp_path / "m" / ablate.DONE).exists()
    assert "ray: m seed 0 lost its worker (WorkerCrashedError), retrying (attempt 2 of 2)" in capsys.readouterr().out


def test_a_worker_lost_on_every_attempt_fails_with_one_line(local_ray, tmp_path):
    executor = RayExecutor(retries=1, task=always_lose_the_worker)
    with pytest.raises(RunFailedError, match="^training m seed 0 lost its worker 2 times$"):
        executor.run([_spec(tmp_path)], lambda s: tmp_path / "log", lambda n: None, lambda s: None)
    assert not (tmp_path / "m" / ablate.DONE).exists()


def test_ray_executor_trains_two_tiny_models_into_the_local_csv_columns(local_ray, tmp_path, coco8_yaml):
    out = tmp_path / "ablate"
    argv = ["--models", "yolov8n.yaml", "yolov8n-saconv.yaml", "--data", str(coco8_yaml), "--epochs", "1"]
    argv += ["--imgsz", "64", "--batch", "8", "--device", "cpu", "--latency-runs", "2", "--out", str(out)]
    assert ablate.main([*argv, "--executor", "ray"]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert list(rows[0]) == list(ablate.COLUMNS)  # what the local executor writes (test_ablate_yolo pins it too)
    assert [r["model"] for r in rows] == ["yolov8n", "yolov8n-saconv"]
    for r in rows:
        assert float(r["epoch_time_s"]) > 0 and float(r["peak_mem_mb"]) > 100
        assert all(0.0 <= float(r[m]) <= 1.0 for m in METRICS)
    assert ablate.main([*argv, "--executor", "ray"]) == 0  # resumable: the finished runs are not trained again
    assert sorted(p.name for p in out.glob("runs/*/DONE")) == ["DONE", "DONE"]
