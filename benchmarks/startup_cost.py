"""Measure what the auto-registration hook costs a Python process that never uses Ultralytics.

Runs `python -c pass` many times, alternating hook on (default) and off (YOLO_FASTERNET_AUTOLOAD=0) so both see the
same machine noise, and prints the medians and their difference. Usage: `python benchmarks/startup_cost.py [runs]`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time


def time_once(env: dict) -> float:
    """Wall time of one `python -c pass` in milliseconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return (time.perf_counter() - start) * 1e3


def autoload_import_us(runs: int = 20) -> float:
    """Median cumulative import time (microseconds) of yolo_fasternet_autoload, from `python -X importtime`.

    The interleaved comparison above cannot switch the .pth file off, only the finder it installs, so this is the
    rest of the hook's cost.
    """
    samples = []
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True).stderr
        line = next((ln for ln in err.splitlines() if ln.rstrip().endswith("yolo_fasternet_autoload")), None)
        if line is None:
            raise SystemExit("yolo_fasternet_autoload is not imported at start-up: is the package installed?")
        samples.append(int(line.split("|")[1]))
    return statistics.median(samples)


def main(runs: int = 200) -> None:
    """Interleave hook-on and hook-off runs and print medians and the difference."""
    on = {**os.environ, "YOLO_FASTERNET_AUTOLOAD": "1"}
    off = {**os.environ, "YOLO_FASTERNET_AUTOLOAD": "0"}
    for env in (on, off):  # warm the file cache
        time_once(env)
    times = {"on": [], "off": []}
    for _ in range(runs):
        times["on"].append(time_once(on))
        times["off"].append(time_once(off))
    med = {k: statistics.median(v) for k, v in times.items()}
    spread = statistics.median(abs(a - b) for a, b in zip(times["on"], times["off"]))
    print(f"python -c pass, {runs} interleaved runs each ({sys.executable})")
    print(f"  hook on : median {med['on']:.2f} ms")
    print(f"  hook off: median {med['off']:.2f} ms")
    print(f"  difference: {med['on'] - med['off']:+.2f} ms (median pairwise |on-off| {spread:.2f} ms)")
    print(f"  import of yolo_fasternet_autoload itself (from the .pth): {autoload_import_us() / 1e3:.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
