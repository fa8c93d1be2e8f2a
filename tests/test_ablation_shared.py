"""What parallel runs share: label caches built once before dispatch, and a Ray address checked before anything."""

from __future__ import annotations

import csv
import time

import pytest
from ablation_fakes import fresh_copy

from yolo_fasternet.apps import ablate
from yolo_fasternet.apps.ablation.executors import host_and_port
from yolo_fasternet.apps.ablation.shared_data import prepare_label_caches

from conftest import closed_loopback_port


def test_label_caches_are_built_once_before_the_runs(tmp_path, coco8_yaml):
    data = fresh_copy(coco8_yaml, tmp_path)
    assert not list(data.parent.glob("labels/*.cache"))
    assert prepare_label_caches(str(data), "detect") == ["train", "val"]
    caches = sorted(p.name for p in data.parent.glob("labels/*.cache"))
    assert caches == ["train.cache", "val.cache"]
    stamps = [p.stat().st_mtime_ns for p in sorted(data.parent.glob("labels/*.cache"))]
    prepare_label_caches(str(data), "detect")  # valid caches are read, not rewritten
    assert [p.stat().st_mtime_ns for p in sorted(data.parent.glob("labels/*.cache"))] == stamps


@pytest.mark.slow
def test_two_runs_started_together_on_a_fresh_dataset_both_finish(tmp_path, coco8_yaml):
    data = fresh_copy(coco8_yaml, tmp_path)
    out = tmp_path / "out"
    argv = ["--models", "yolov8n.yaml", "yolov8n-saconv.yaml", "--data", str(data), "--epochs", "1", "--imgsz", "64"]
    argv += ["--batch", "4", "--device", "cpu", "--jobs", "2", "--latency-runs", "1", "--out", str(out)]
    assert ablate.main(argv) == 0
    assert len(list(out.glob("runs/*/DONE"))) == 2
    assert [r["model"] for r in csv.DictReader((out / "results.csv").open())] == ["yolov8n", "yolov8n-saconv"]
    assert len(list(out.glob("runs/*/records.npz"))) == 2


def test_an_unreachable_ray_address_fails_at_once_with_one_line(tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'yolo-fasternet[cluster]')")
    port = closed_loopback_port()
    out = tmp_path / "out"
    argv = ["--models", "yolov8n.yaml", "--executor", "ray", "--address", f"127.0.0.1:{port}", "--out", str(out)]
    started = time.monotonic()
    assert ablate.main([*argv, "--connect-timeout", "3"]) == 1
    assert time.monotonic() - started < 30  # refused at once; Ray itself would retry for minutes
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"yolo-fasternet ablate: error: --address 127.0.0.1:{port}: ")
    assert "--connect-timeout" in err[0] and "nothing was trained" in err[0]
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("address", ["nohost", "host:port", "host:0", ":6379", "ray://h:99999"])
def test_a_malformed_ray_address_is_refused(address):
    from yolo_fasternet.apps.command_errors import UsageError

    with pytest.raises(UsageError, match=f"--address {address}: expected HOST:PORT"):
        host_and_port(address)


@pytest.mark.parametrize(
    "address, expected",
    [
        ("auto", None),
        ("10.0.0.5:6379", ("10.0.0.5", 6379)),
        ("ray://h:10001", ("h", 10001)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_ray_addresses_are_read(address, expected):
    assert host_and_port(address) == expected


def test_a_bad_connect_timeout_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        ablate.parse_args(["--connect-timeout", "0"])
    assert exc.value.code == 2 and "--connect-timeout must be > 0 seconds, got 0" in capsys.readouterr().err
