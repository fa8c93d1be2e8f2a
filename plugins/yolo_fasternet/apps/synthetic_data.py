"""A deterministic synthetic dataset (circles, squares, triangles), so training needs no download.

Two modes: ``shapes`` (the default; three classes on textured backgrounds, what ``make demo`` trains on) and ``hard``
(six classes, small to large objects, unlabelled clutter strokes, objects partly hidden by each other and by
occluding bars; what the ablation's quick preset ranks models on, see ``ablation/presets.py``).

The ``shapes`` mode also has dense labels for every image, in the formats Ultralytics' semantic and depth datasets
read (``data/dataset.py``: ``SemanticDataset``, ``DepthDataset``):

- ``masks/{train,val}/<stem>.png``: 8-bit class ids, 0 background and 1/2/3 circle/square/triangle, each shape
  filled without anti-aliasing in drawing order (a later shape covers an earlier one, as in the image);
  ``semantic.yaml`` points at them (``masks_dir: masks``, four names).
- ``depth/{train,val}/<stem>.png``: 16-bit millimetres (``depth_scale: 1000`` in ``depth.yaml``). The background is
  a ground plane seen from above the horizon, ``DEPTH_FAR`` metres at the top row to ``DEPTH_NEAR`` at the bottom;
  each shape is a flat object facing the camera at ``DEPTH_SIZE / r`` metres (``r`` its circumradius as a fraction of
  the image side: the larger, the nearer, a cue one image shows), painted in drawing order like the masks.

``make_synthetic_dataset()`` writes a YOLO-format dataset (``images/{train,val}``, ``labels/{train,val}``, a dataset
YAML) into a cache folder named after its parameters and returns the YAML path. The same arguments always give
byte-identical files, and a finished dataset is reused: ``manifest.json`` is written last, so a folder without it
(an interrupted generation) is regenerated, never half-used.

Run ``yolo-fasternet data --help`` to generate one from the command line.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml

from .arguments import key_value_to_options, plain_description
from .command_errors import CommandParser, command

NAMES = ("circle", "square", "triangle")
# bump a version when the drawing changes, so cached datasets from older code are not reused
VERSION = "shapes-v2"  # v2 adds masks and depth maps; images and labels are byte-identical to v1
HARD_NAMES = ("circle", "square", "triangle", "star", "cross", "ring")
HARD_VERSION = "shapes-hard-v1"
MODES = {"shapes": (VERSION, NAMES), "hard": (HARD_VERSION, HARD_NAMES)}  # mode -> (cache name prefix, classes)
HARD_MAX_OBJECTS = 7
HARD_RADIUS = (0.07, 0.32)  # circumradius range as a fraction of the image side, drawn log-uniformly
MANIFEST = "manifest.json"
JPEG_QUALITY = 90  # fixed, so the encoder is deterministic
MAX_OBJECTS = 6
N_TRAIN, N_VAL, IMGSZ = 256, 64, 160  # defaults: the dataset train_yolo.py trains on by default
MIN_IMGSZ = 32  # below this the smallest shapes are a few pixels wide
SHIFT = 4  # cv2 draws with fixed-point coordinates: 4 fractional bits keep sub-pixel positions and sizes
SUBPIXEL = 1 << SHIFT
MIN_CONTRAST = 90  # sum of absolute BGR differences between a shape and the background under it
SEMANTIC_NAMES = ("background", *NAMES)
DEPTH_NEAR, DEPTH_FAR = 2.0, 6.0  # metres: the ground plane at the bottom and top rows
DEPTH_SIZE = 0.1  # metres: a shape of circumradius r (fraction of the image side) stands at DEPTH_SIZE / r (0.5-1.7 m)
DEPTH_SCALE = 1000  # PNG value per metre, Ultralytics' default depth_scale
TASK_YAMLS = {"detect": "data.yaml", "semantic": "semantic.yaml", "depth": "depth.yaml"}


def default_root() -> Path:
    """The cache folder: ``$YOLO_FASTERNET_CACHE`` if set, else ``~/.cache/yolo-fasternet``."""
    return Path(os.environ.get("YOLO_FASTERNET_CACHE") or Path.home() / ".cache" / "yolo-fasternet")


def _check_int(name: str, value, minimum: int) -> None:
    # bool is an int subclass, but n_train=True is always a mistake
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _background(rng: np.random.Generator, imgsz: int) -> np.ndarray:
    """A random background: gradient, stripes, checkerboard or blurred noise, plus a little pixel noise."""
    c0, c1 = rng.uniform(0, 255, size=(2, 3))
    yy, xx = np.mgrid[0:imgsz, 0:imgsz].astype(np.float32) / imgsz
    angle = rng.uniform(0, np.pi)
    along = xx * np.cos(angle) + yy * np.sin(angle)  # coordinate along a random direction
    kind = rng.integers(4)
    if kind == 0:  # linear gradient
        t = (along - along.min()) / (np.ptp(along) + 1e-6)
    elif kind == 1:  # soft or hard stripes
        t = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 12) * along + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.5:
            t = (t > 0.5).astype(np.float32)
    elif kind == 2:  # checkerboard, slightly rotated
        across = -xx * np.sin(angle) + yy * np.cos(angle)
        cells = rng.uniform(3, 10)
        t = ((np.floor(along * cells) + np.floor(across * cells)) % 2).astype(np.float32)
    else:  # blotchy texture: low-resolution noise scaled up
        small = rng.random((int(rng.integers(3, 12)),) * 2, dtype=np.float32)
        t = cv2.resize(small, (imgsz, imgsz), interpolation=cv2.INTER_CUBIC)
    img = c0 + np.clip(t, 0, 1)[..., None] * (c1 - c0)
    img += rng.normal(0, rng.uniform(0, 12), size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _polygon(cls: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Vertices of a square (cls 1) or triangle (cls 2) with circumradius ``r``, rotated by ``angle``."""
    n = 4 if cls == 1 else 3
    a = angle + 2 * np.pi * np.arange(n) / n
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def _overlap_too_much(box: np.ndarray, boxes: list[np.ndarray], limit: float = 0.5) -> bool:
    """Whether ``box`` would hide more than ``limit`` of an earlier box, or be mostly inside one."""
    for other in boxes:
        iw = min(box[2], other[2]) - max(box[0], other[0])
        ih = min(box[3], other[3]) - max(box[1], other[1])
        if iw > 0 and ih > 0:
            inter = iw * ih
            area = min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1]))
            if inter > limit * area:
                return True
    return False


def draw_image(
    rng: np.random.Generator, imgsz: int, max_objects: int = MAX_OBJECTS, shapes: list | None = None
) -> tuple[np.ndarray, list]:
    """Draw one ``imgsz`` x ``imgsz`` BGR image; return it and its labels as ``(cls, cx, cy, w, h)`` normalized.

    ``shapes``, if given, receives each drawn shape in drawing order as ``(cls, cx, cy, r, vertices)`` in pixels
    (vertices None for a circle), for ``dense_labels``; it does not change what is drawn.
    """
    img = _background(rng, imgsz)
    boxes, labels = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(10):  # a crowded image may not fit another shape; then it gets fewer
            cls = int(rng.integers(len(NAMES)))
            r = rng.uniform(0.06, 0.2) * imgsz  # circumradius (radius for circles)
            cx, cy = rng.uniform(r + 1, imgsz - r - 1, size=2)  # whole shape inside, so its box is exact
            angle = rng.uniform(0, 2 * np.pi)
            pts = np.array([[cx - r, cy - r], [cx + r, cy + r]]) if cls == 0 else _polygon(cls, cx, cy, r, angle)
            box = np.concatenate([pts.min(0), pts.max(0)])
            if not _overlap_too_much(box, boxes):
                break
        else:
            continue
        x0, y0, x1, y1 = box.round().astype(int)
        under = img[y0 : y1 + 1, x0 : x1 + 1].reshape(-1, 3).mean(0)
        color = rng.uniform(0, 255, size=3)
        if np.abs(color - under).sum() < MIN_CONTRAST:  # an invisible shape would be a label the model cannot learn
            color = np.where(under > 127, under - 127, under + 127)
        color = tuple(float(c) for c in color)
        if cls == 0:
            center, radius = (round(cx * SUBPIXEL), round(cy * SUBPIXEL)), round(r * SUBPIXEL)
            cv2.circle(img, center, radius, color, -1, cv2.LINE_AA, SHIFT)
        else:
            cv2.fillPoly(img, [np.round(pts * SUBPIXEL).astype(np.int32)], color, cv2.LINE_AA, SHIFT)
        boxes.append(box)
        if shapes is not None:
            shapes.append((cls, cx, cy, r, None if cls == 0 else pts))
        xc, yc, w, h = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]
        labels.append((cls, xc / imgsz, yc / imgsz, w / imgsz, h / imgsz))
    return img, labels


def dense_labels(shapes: list, imgsz: int) -> tuple[np.ndarray, np.ndarray]:
    """The class-id mask (uint8) and depth map (float32 metres) of the shapes ``draw_image`` drew (see module doc)."""
    mask = np.zeros((imgsz, imgsz), np.uint8)
    rows = (np.arange(imgsz, dtype=np.float32) + 0.5) / imgsz
    depth = np.repeat((DEPTH_FAR + (DEPTH_NEAR - DEPTH_FAR) * rows)[:, None], imgsz, axis=1)
    for cls, cx, cy, r, pts in shapes:
        inside = np.zeros((imgsz, imgsz), np.uint8)
        if pts is None:
            cv2.circle(
                inside, (round(cx * SUBPIXEL), round(cy * SUBPIXEL)), round(r * SUBPIXEL), 1, -1, cv2.LINE_8, SHIFT
            )
        else:
            cv2.fillPoly(inside, [np.round(pts * SUBPIXEL).astype(np.int32)], 1, cv2.LINE_8, SHIFT)
        mask[inside > 0] = cls + 1
        depth[inside > 0] = DEPTH_SIZE * imgsz / r
    return mask, depth


def _hard_shape(cls: int, cx: float, cy: float, r: float, angle: float) -> list[np.ndarray]:
    """Polygons (a list of vertex arrays) of a hard-mode class with circumradius ``r``, rotated by ``angle``.

    The ring (cls 5) is returned as its outer circle; ``draw_hard_image`` punches the hole.
    """
    if cls in (1, 2):
        return [_polygon(cls, cx, cy, r, angle)]
    if cls == 3:  # five-pointed star: alternating outer and inner vertices
        a = angle + np.pi * np.arange(10) / 5
        radius = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        return [np.stack([cx + radius * np.cos(a), cy + radius * np.sin(a)], axis=1)]
    if cls == 4:  # cross: two bars of width r/2, each a rotated rectangle
        bars = []
        for a in (angle, angle + np.pi / 2):
            along, across = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
            corners = [(s * r * 0.93, t * r * 0.25) for s, t in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
            bars.append(np.array([[cx, cy] + u * along + v * across for u, v in corners]))
        return bars
    a = 2 * np.pi * np.arange(48) / 48  # circle and ring: a fine polygon, so the box comes from the same vertices
    return [np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)]


def _contrasting_color(rng: np.random.Generator, under: np.ndarray) -> tuple[float, ...]:
    color = rng.uniform(0, 255, size=3)
    if np.abs(color - under).sum() < MIN_CONTRAST:  # an invisible shape would be a label the model cannot learn
        color = np.where(under > 127, under - 127, under + 127)
    return tuple(float(c) for c in color)


def _fill(img: np.ndarray, polygons: list[np.ndarray], color) -> None:
    cv2.fillPoly(img, [np.round(p * SUBPIXEL).astype(np.int32) for p in polygons], color, cv2.LINE_AA, SHIFT)


def _clutter(rng: np.random.Generator, img: np.ndarray, n: int, thickness: tuple[int, int]) -> None:
    """``n`` unlabelled straight strokes across the image (distractors, or occluders when drawn over objects)."""
    imgsz = img.shape[0]
    for _ in range(n):
        p0, p1 = rng.uniform(0, imgsz, size=(2, 2))
        color = tuple(float(c) for c in rng.uniform(0, 255, size=3))
        width = int(rng.integers(thickness[0], thickness[1] + 1))
        cv2.line(
            img,
            tuple(np.round(p0 * SUBPIXEL).astype(int)),
            tuple(np.round(p1 * SUBPIXEL).astype(int)),
            color,
            width,
            cv2.LINE_AA,
            SHIFT,
        )


def draw_hard_image(rng: np.random.Generator, imgsz: int) -> tuple[np.ndarray, list]:
    """One hard-mode image and its labels ``(cls, cx, cy, w, h)`` normalized.

    Up to ``HARD_MAX_OBJECTS`` objects of six classes, sized log-uniformly over ``HARD_RADIUS`` (a few pixels to a
    third of the image), on a textured background with thin clutter strokes; objects may hide up to 40% of an
    earlier object's box, and 0-2 thicker bars drawn last occlude some of them. Boxes are the full (amodal) extent.
    """
    img = _background(rng, imgsz)
    _clutter(rng, img, int(rng.integers(1, 5)), (1, max(1, imgsz // 64)))
    boxes, labels = [], []
    lo, hi = np.log(HARD_RADIUS[0] * imgsz), np.log(HARD_RADIUS[1] * imgsz)
    for _ in range(int(rng.integers(1, HARD_MAX_OBJECTS + 1))):
        for _attempt in range(10):
            cls = int(rng.integers(len(HARD_NAMES)))
            r = float(np.exp(rng.uniform(lo, hi)))
            cx, cy = rng.uniform(r + 1, imgsz - r - 1, size=2)
            polygons = _hard_shape(cls, cx, cy, r, rng.uniform(0, 2 * np.pi))
            pts = np.concatenate(polygons)
            box = np.concatenate([pts.min(0), pts.max(0)])
            if not _overlap_too_much(box, boxes, limit=0.35):
                break
        else:
            continue
        x0, y0, x1, y1 = box.round().astype(int)
        under = img[y0 : y1 + 1, x0 : x1 + 1].reshape(-1, 3).mean(0)
        before = img.copy() if cls == 5 else None
        color = _contrasting_color(rng, under)
        for polygon in polygons:  # one at a time: fillPoly fills overlapping polygons even-odd (a hole in the cross)
            _fill(img, [polygon], color)
        if cls == 5:  # the ring's hole shows what was there before: background, clutter or an earlier object
            hole = np.zeros(img.shape[:2], np.uint8)
            cv2.circle(
                hole, (round(cx * SUBPIXEL), round(cy * SUBPIXEL)), round(0.55 * r * SUBPIXEL), 1, -1, cv2.LINE_8, SHIFT
            )
            img[hole > 0] = before[hole > 0]
        boxes.append(box)
        xc, yc, w, h = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]
        labels.append((cls, xc / imgsz, yc / imgsz, w / imgsz, h / imgsz))
    _clutter(rng, img, int(rng.integers(0, 2)), (max(2, imgsz // 48), max(2, imgsz // 32)))
    return img, labels


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")


def _params(n_train: int, n_val: int, imgsz: int, seed: int, mode: str) -> dict:
    version, names = MODES[mode]
    return {"version": version, "n_train": n_train, "n_val": n_val, "imgsz": imgsz, "seed": seed, "names": names}


def _is_complete(folder: Path, params: dict) -> bool:
    """Whether ``folder`` holds a finished generation with exactly these parameters."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest == json.loads(json.dumps(params)) and (folder / "data.yaml").is_file()


def make_synthetic_dataset(
    root: Path | str | None = None,
    n_train: int = N_TRAIN,
    n_val: int = N_VAL,
    imgsz: int = IMGSZ,
    seed: int = 0,
    mode: str = "shapes",
    task: str = "detect",
) -> Path:
    """Generate (or reuse) the synthetic shapes dataset and return the dataset YAML path for ``task``.

    Args:
        root: Parent folder; the dataset goes into ``root/<version>-<n_train>-<n_val>-<imgsz>-s<seed>`` with
            version ``shapes-v1`` or ``shapes-hard-v1``. Defaults to ``default_root()``.
        n_train: Number of training images.
        n_val: Number of validation images.
        imgsz: Side of the square images in pixels (at least 32).
        seed: Seed of the random generator; the same arguments always give byte-identical files.
        mode: ``"shapes"`` (three classes) or ``"hard"`` (six classes, clutter, occlusion, small and large objects).
        task: ``"detect"`` (``data.yaml``), ``"semantic"`` (``semantic.yaml``) or ``"depth"`` (``depth.yaml``); the
            dense tasks exist in the ``shapes`` mode. Every task's YAML is written: one folder serves all three.

    Raises:
        ValueError: If a size or the seed is not a valid integer, or the mode or task is unknown.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if task not in TASK_YAMLS:
        raise ValueError(f"task must be one of {', '.join(TASK_YAMLS)}, got {task!r}")
    if task != "detect" and mode != "shapes":
        raise ValueError(f"task {task!r} needs mode 'shapes' (the {mode!r} mode has box labels only)")
    _check_int("n_train", n_train, 1)
    _check_int("n_val", n_val, 1)
    _check_int("imgsz", imgsz, MIN_IMGSZ)
    _check_int("seed", seed, 0)
    n_train, n_val, imgsz, seed = int(n_train), int(n_val), int(imgsz), int(seed)
    params = _params(n_train, n_val, imgsz, seed, mode)
    folder = (Path(root) if root is not None else default_root()).expanduser().resolve()
    folder = folder / f"{params['version']}-{n_train}-{n_val}-{imgsz}-s{seed}"
    data_yaml = folder / "data.yaml"
    if _is_complete(folder, params):
        return folder / TASK_YAMLS[task]

    # Start from scratch: a previous, interrupted generation may have left some files behind
    (folder / MANIFEST).unlink(missing_ok=True)
    dense = mode == "shapes"
    subs = ("images", "labels", "masks", "depth") if dense else ("images", "labels")
    for sub in ("images", "labels", "masks", "depth"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for sub in subs:
            (folder / sub / split).mkdir(parents=True)
        for i in range(n):
            shapes = []
            img, labels = draw_hard_image(rng, imgsz) if mode == "hard" else draw_image(rng, imgsz, shapes=shapes)
            image_file = folder / "images" / split / f"{i:06d}.jpg"
            if not cv2.imwrite(str(image_file), img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise OSError(f"could not write {image_file}")
            lines = [f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in labels]
            (folder / "labels" / split / f"{i:06d}.txt").write_text("".join(lines))
            if dense:
                mask, depth = dense_labels(shapes, imgsz)
                _write_png(folder / "masks" / split / f"{i:06d}.png", mask)
                _write_png(folder / "depth" / split / f"{i:06d}.png", np.round(depth * DEPTH_SCALE).astype(np.uint16))

    data = {
        "path": str(folder),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(params["names"])),
    }
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    if dense:
        semantic = {**data, "masks_dir": "masks", "names": dict(enumerate(SEMANTIC_NAMES))}
        (folder / TASK_YAMLS["semantic"]).write_text(yaml.safe_dump(semantic, sort_keys=False))
        depth = {**data, "nc": 1, "names": {0: "depth"}, "depth_scale": DEPTH_SCALE}
        (folder / TASK_YAMLS["depth"]).write_text(yaml.safe_dump(depth, sort_keys=False))
    (folder / MANIFEST).write_text(json.dumps(params, indent=2) + "\n")  # last: marks the dataset complete
    return folder / TASK_YAMLS[task]


@command("yolo-fasternet data")
def main(argv: list[str] | None = None) -> int:
    """Command line: generate (or reuse) the dataset and print its YAML path."""
    parser = CommandParser(description=plain_description(__doc__))
    parser.add_argument("--root", type=Path, help=f"parent folder (default: {default_root()})")
    parser.add_argument("--n-train", type=int, default=N_TRAIN, help=f"training images (default: {N_TRAIN})")
    parser.add_argument("--n-val", type=int, default=N_VAL, help=f"validation images (default: {N_VAL})")
    parser.add_argument("--imgsz", type=int, default=IMGSZ, help=f"image side in pixels (default: {IMGSZ})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--mode", choices=MODES, default="shapes", help="dataset mode (default: %(default)s)")
    parser.add_argument(
        "--task", choices=TASK_YAMLS, default="detect", help="whose dataset YAML to print (default: %(default)s)"
    )
    args = parser.parse_args(key_value_to_options(argv, parser))
    try:
        print(make_synthetic_dataset(args.root, args.n_train, args.n_val, args.imgsz, args.seed, args.mode, args.task))
    except ValueError as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
