"""Exports of a checkpoint kept for reuse, keyed by what they were made from, and never trusted half-written.

``detect --runtime auto`` exports a ``.pt`` through Ultralytics' own exporter once per checkpoint and keeps the result
here, so later runs start at once. An entry's folder name holds everything that decides the exported file: the
checkpoint's content hash (SHA-256 of its bytes: a retrained ``best.pt`` at the same path misses), the format, imgsz,
precision, and a hash of the versions of Ultralytics, PyTorch, this package and the runtime's packages (an upgrade
never reuses a stale export).

    $YOLO_FASTERNET_CACHE/exports/            (default ~/.cache/yolo-fasternet/exports; detect --export-cache DIR)
        best-3f1c9a...e2/                      checkpoint stem and content hash
            openvino-640-f32-9b1e04c2d7aa/     format, imgsz, precision, versions hash
                model_openvino_model/          the exported model, as Ultralytics wrote it
                entry.json                     written last: versions and the size and SHA-256 of every file

An entry is built in a private staging folder next to it and renamed into place, so a run that is killed mid-export
leaves no entry, and two runs exporting at once each produce a whole one (the second rename loses and is discarded).
An entry whose ``entry.json`` is missing, or whose files do not match it (truncated, edited), is rebuilt. Where the
cache folder cannot be written, exports go to a temporary folder that lasts for the run (``ExportCache.fallback``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

CACHE_ENV = "YOLO_FASTERNET_CACHE"  # the package's cache root (synthetic datasets, timm YAMLs, exports)
ENTRY_FILE = "entry.json"
RUNTIME_PACKAGES = {  # what each export uses (import names; metadata.version reads them as distribution names)
    "onnx": ("onnx", "onnxruntime", "onnxslim"),
    "openvino": ("openvino",),
    "ncnn": ("ncnn", "pnnx"),
    "mnn": ("MNN", "onnx", "onnxslim"),  # Ultralytics' MNN export goes through ONNX
}
CHUNK = 1 << 20


def default_root() -> Path:
    """``$YOLO_FASTERNET_CACHE/exports``, else ``~/.cache/yolo-fasternet/exports``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "yolo-fasternet") / "exports"


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def versions(fmt: str) -> dict[str, str]:
    """The versions that decide what an export of ``fmt`` contains (a missing package reads ``-``)."""
    found = {}
    for name in ("ultralytics", "torch", "yolo-fasternet", *RUNTIME_PACKAGES.get(fmt, ())):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    if found["yolo-fasternet"] == "-":  # run from a source tree without an install
        from ... import __version__

        found["yolo-fasternet"] = __version__
    return found


def _files(folder: Path) -> dict[str, dict]:
    """Size and SHA-256 of every file under ``folder`` except the entry file, by relative path."""
    return {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": file_hash(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ENTRY_FILE
    }


@dataclass
class Export:
    """A usable export: the path ``YOLO()`` loads, whether it came from the cache, and what building it took."""

    path: Path
    reused: bool
    seconds: float = 0.0  # export time; 0 when reused


class ExportCache:
    """Exports of one checkpoint under ``root``; see the module docstring for the layout and the rules."""

    def __init__(self, checkpoint: str | Path, root: Path | None = None):
        self.checkpoint = Path(checkpoint)
        self.root = Path(root) if root is not None else default_root()
        self.content_hash = file_hash(self.checkpoint)
        self.fallback: Path | None = None  # the temporary folder used where ``root`` is not writable

    def entry_folder(self, fmt: str, imgsz: int, precision: str, root: Path | None = None) -> Path:
        """Where the export of ``fmt`` at ``imgsz`` and ``precision`` lives (whether or not it exists yet)."""
        stamp = hashlib.sha256(json.dumps(versions(fmt), sort_keys=True).encode()).hexdigest()[:12]
        checkpoint = f"{self.checkpoint.stem}-{self.content_hash[:24]}"
        return (root or self.root) / checkpoint / f"{fmt}-{imgsz}-{precision}-{stamp}"

    def lookup(self, fmt: str, imgsz: int, precision: str) -> Path | None:
        """The exported model of a complete, intact entry, or None (no entry, or one that fails its checks)."""
        for root in (self.root, self.fallback):
            if root is None:
                continue
            folder = self.entry_folder(fmt, imgsz, precision, root)
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                entry = json.loads((folder / ENTRY_FILE).read_text())
                if entry["files"] == _files(folder):
                    return folder / entry["model"]
        return None

    def get(self, model, fmt: str, imgsz: int, precision: str, notice, exporting=None) -> Export:
        """The cached export, or a new one of ``model`` (the loaded checkpoint) built into the cache.

        ``notice(text)`` is told, in one line each, about an entry being rebuilt and a cache that cannot be written;
        ``exporting()``, if given, is called before an export starts. Export failures propagate (the caller decides
        what a failed export means).
        """
        found = self.lookup(fmt, imgsz, precision)
        if found is not None:
            return Export(found, reused=True)
        if exporting is not None:
            exporting()
        root = self._writable_root(notice)
        target = self.entry_folder(fmt, imgsz, precision, root)
        if target.exists():
            notice(f"cached {fmt} export {target} is incomplete or changed; rebuilding it")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
        try:
            start = time.perf_counter()
            exported = self._export(model, fmt, imgsz, staging)
            seconds = time.perf_counter() - start
            entry = {"model": exported.name, "versions": versions(fmt), "checkpoint": str(self.checkpoint)}
            entry.update(content_hash=self.content_hash, imgsz=imgsz, precision=precision, files=_files(staging))
            (staging / ENTRY_FILE).write_text(json.dumps(entry, indent=1))
            shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:  # another run put a whole entry there first: use that one
                if self.lookup(fmt, imgsz, precision) is None:
                    raise
            return Export(target / exported.name, reused=False, seconds=seconds)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def discard(self, fmt: str, imgsz: int, precision: str) -> None:
        """Remove an entry (one that passed its checks but does not load), so the next ``get`` rebuilds it."""
        for root in (self.root, self.fallback):
            if root is not None:
                shutil.rmtree(self.entry_folder(fmt, imgsz, precision, root), ignore_errors=True)

    def _writable_root(self, notice) -> Path:
        """``root`` if entries can be written there, else a temporary folder for this process (said once)."""
        if self.fallback is not None:
            return self.fallback
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                return self.root
        except OSError as e:
            self.fallback = Path(tempfile.mkdtemp(prefix="yolo-fasternet-exports-"))
            reason = e.strerror or type(e).__name__
            notice(f"export cache {self.root} is not writable ({reason}); exporting into {self.fallback} (not kept)")
            return self.fallback

    def _export(self, model, fmt: str, imgsz: int, folder: Path) -> Path:
        """Export ``model`` in ``folder`` through Ultralytics (quietly); return the exported file or folder.

        The exporter names its output after the network's ``pt_path`` and writes it beside that file, so for the
        export ``pt_path`` points into ``folder`` (nothing is read from there; the network is already loaded). The
        export runs with ``folder`` as the working directory: converters that write scratch files there (pnnx's
        ``debug.bin``, ``debug.param``) leave nothing in the user's folder when they fail or are interrupted.
        """
        import torch
        from ultralytics.utils import LOGGER

        network = model.model
        original = getattr(network, "pt_path", None)
        network.pt_path = str(folder / self.checkpoint.name)
        threads, level, cwd = torch.get_num_threads(), LOGGER.level, os.getcwd()
        LOGGER.setLevel(logging.CRITICAL)  # its progress, and its own "export failure" line: the caller reports one
        try:
            os.chdir(folder)
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit.trace deprecation and tracer warnings: not the user's
                return (folder / model.export(format=fmt, imgsz=imgsz, device="cpu")).resolve()
        finally:
            os.chdir(cwd)
            LOGGER.setLevel(level)
            torch.set_num_threads(threads)  # the exporter's select_device("cpu") leaves torch on cores - 1 threads
            network.pt_path = original
