"""The `yolo-fasternet` console command: dispatch, --help on every command, key=value options, unknown commands."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from yolo_fasternet.apps.arguments import key_value_to_options
from yolo_fasternet.cli import COMMANDS, main

CONSOLE_SCRIPT = Path(sys.executable).with_name("yolo-fasternet")


def test_no_command_prints_usage_and_exits_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: yolo-fasternet <command>") and all(name in err for name in COMMANDS)


def test_unknown_command_is_one_line_with_close_matches(capsys):
    assert main(["tran"]) == 2
    assert capsys.readouterr().err == "yolo-fasternet: error: unknown command 'tran'; did you mean train?\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_under_its_own_name(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: yolo-fasternet {command}")


def test_key_value_tokens_become_options_only_for_known_options():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-frames", type=int)
    parser.add_argument("--imgsz", type=int)
    argv = ["max_frames=30", "imgsz=320", "lr0=0.01", "a=b.mp4", "--imgsz=64"]
    assert key_value_to_options(argv, parser) == ["--max-frames=30", "--imgsz=320", "lr0=0.01", "a=b.mp4", "--imgsz=64"]


def test_detect_takes_key_value_like_yolo():
    from yolo_fasternet.apps import detect

    args = detect.parse_args(["weights=best.pt", "source=clip.mp4", "max_frames=5", "conf=0.5"])
    assert (args.weights, args.source, args.max_frames, args.conf) == ("best.pt", "clip.mp4", 5, 0.5)


def test_installed_console_script_runs_a_command(tmp_path):
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "weights", "list"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fasternet_t0" in proc.stdout
