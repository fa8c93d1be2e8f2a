"""The synthetic shapes dataset: deterministic, valid YOLO labels, masks and depth maps, cached, regenerated after an
interruption."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from yolo_fasternet.apps import synthetic_data
from yolo_fasternet.apps.synthetic_data import MANIFEST, NAMES, make_synthetic_dataset

SMALL = {"n_train": 8, "n_val": 4, "imgsz": 64}


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the dataset YAML (which holds the absolute path), by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.suffix != ".yaml"
    }


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", seed=3, **SMALL)
    b = make_synthetic_dataset(tmp_path / "b", seed=3, **SMALL)
    assert a.parent.name == b.parent.name == "shapes-v2-8-4-64-s3"
    files = _contents(a.parent)
    assert len(files) == 4 * (8 + 4) + 1  # images, labels, masks, depth maps, manifest
    assert files == _contents(b.parent)
    data_a, data_b = yaml.safe_load(a.read_text()), yaml.safe_load(b.read_text())
    assert (data_a.pop("path"), data_b.pop("path")) == (str(a.parent), str(b.parent))
    assert data_a == data_b


def test_hard_mode_is_deterministic_and_cached_under_its_own_name(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", mode="hard", **SMALL)
    b = make_synthetic_dataset(tmp_path / "b", mode="hard", **SMALL)
    assert a.parent.name == "shapes-hard-v1-8-4-64-s0"
    assert _contents(a.parent) == _contents(b.parent)
    assert _contents(a.parent) != _contents(make_synthetic_dataset(tmp_path / "a", **SMALL).parent)


def test_hard_mode_has_six_classes_small_and_large_objects(tmp_path):
    data_yaml = make_synthetic_dataset(tmp_path, mode="hard", n_train=64, n_val=4, imgsz=128)
    assert yaml.safe_load(data_yaml.read_text())["names"] == dict(enumerate(synthetic_data.HARD_NAMES))
    rows = [
        line.split() for f in (data_yaml.parent / "labels" / "train").iterdir() for line in f.read_text().splitlines()
    ]
    classes, sides = {int(r[0]) for r in rows}, [max(float(r[3]), float(r[4])) for r in rows]
    assert classes == set(range(6))
    assert min(sides) < 0.15 and max(sides) > 0.45  # objects from ~15 px to more than half the 128 px image
    assert max(len(f.read_text().splitlines()) for f in (data_yaml.parent / "labels" / "train").iterdir()) >= 6


def test_hard_mode_boxes_are_valid_and_inside_the_image():
    for seed in range(5):
        img, labels = synthetic_data.draw_hard_image(np.random.default_rng(seed), 96)
        assert img.shape == (96, 96, 3) and labels
        for cls, x, y, w, h in labels:
            assert cls in range(6) and w > 0 and h > 0
            assert 0 <= x - w / 2 and x + w / 2 <= 1 and 0 <= y - h / 2 and y + h / 2 <= 1


def test_different_seed_gives_different_images(tmp_path):
    a = _contents(make_synthetic_dataset(tmp_path, seed=0, **SMALL).parent)
    b = _contents(make_synthetic_dataset(tmp_path, seed=1, **SMALL).parent)
    images = [k for k in a if k.endswith(".jpg")]
    assert all(a[k] != b[k] for k in images)


def test_labels_are_valid_yolo_boxes(tmp_path):
    data_yaml = make_synthetic_dataset(tmp_path, **SMALL)
    data = yaml.safe_load(data_yaml.read_text())
    assert data["names"] == dict(enumerate(NAMES))
    root = Path(data["path"])
    assert root == data_yaml.parent
    for split, n in (("train", 8), ("val", 4)):
        images = sorted((root / data[split]).iterdir())
        labels = sorted((root / "labels" / split).iterdir())
        assert len(images) == n
        assert [p.stem for p in images] == [p.stem for p in labels]  # one label file per image
        for image, label in zip(images, labels):
            assert cv2.imread(str(image)).shape == (64, 64, 3)
            rows = [line.split() for line in label.read_text().splitlines()]
            assert rows, f"{label} has no objects"
            for cls, *xywh in rows:
                assert int(cls) in range(len(NAMES))
                x, y, w, h = map(float, xywh)
                assert all(0 < v <= 1 for v in (x, y, w, h)), rows
                assert 0 <= x - w / 2 and x + w / 2 <= 1 and 0 <= y - h / 2 and y + h / 2 <= 1, rows


def test_boxes_sit_on_the_drawn_shapes():
    """A circle's or square's box centre is inside the shape, so there the image differs from the bare background."""
    checked = 0
    for seed in range(5):
        img, labels = synthetic_data.draw_image(np.random.default_rng(seed), 96)
        background = synthetic_data._background(np.random.default_rng(seed), 96)  # same draws, no shapes
        for cls, x, y, _, _ in labels:
            if cls in (0, 1):  # a triangle's box centre may lie outside the triangle
                cx, cy = min(round(x * 96), 95), min(round(y * 96), 95)
                assert np.abs(img[cy, cx].astype(int) - background[cy, cx]).sum() > 0, (seed, cls, x, y)
                checked += 1
    assert checked >= 5


def test_second_call_reuses_the_dataset(tmp_path, monkeypatch):
    data_yaml = make_synthetic_dataset(tmp_path, **SMALL)
    mtimes = {p: p.stat().st_mtime_ns for p in data_yaml.parent.rglob("*")}

    def must_not_draw(*args, **kwargs):
        raise AssertionError("the cached dataset was regenerated")

    monkeypatch.setattr(synthetic_data, "draw_image", must_not_draw)
    assert make_synthetic_dataset(tmp_path, **SMALL) == data_yaml
    assert {p: p.stat().st_mtime_ns for p in data_yaml.parent.rglob("*")} == mtimes


def test_interrupted_generation_is_regenerated(tmp_path, monkeypatch):
    draw, calls = synthetic_data.draw_image, []

    def crash_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return draw(*args, **kwargs)

    monkeypatch.setattr(synthetic_data, "draw_image", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_dataset(tmp_path, **SMALL)
    folder = tmp_path / "shapes-v2-8-4-64-s0"
    assert not (folder / MANIFEST).exists()
    stray = folder / "images" / "train" / "stray.jpg"
    stray.write_bytes(b"left over")

    monkeypatch.setattr(synthetic_data, "draw_image", draw)
    data_yaml = make_synthetic_dataset(tmp_path, **SMALL)
    assert (folder / MANIFEST).is_file() and not stray.exists()
    assert _contents(data_yaml.parent) == _contents(make_synthetic_dataset(tmp_path / "fresh", **SMALL).parent)


def test_a_corrupt_manifest_means_regenerate(tmp_path):
    data_yaml = make_synthetic_dataset(tmp_path, **SMALL)
    expected = _contents(data_yaml.parent)
    (data_yaml.parent / MANIFEST).write_text('{"version": "shapes-v0"}')
    (data_yaml.parent / "labels" / "val" / "000000.txt").write_text("junk")
    assert make_synthetic_dataset(tmp_path, **SMALL) == data_yaml
    assert _contents(data_yaml.parent) == expected


def test_default_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_FASTERNET_CACHE", str(tmp_path))
    assert make_synthetic_dataset(**SMALL) == tmp_path.resolve() / "shapes-v2-8-4-64-s0" / "data.yaml"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_train": 0}, "n_train .* got 0"),
        ({"n_val": -2}, "n_val .* got -2"),
        ({"imgsz": 16}, "imgsz .* got 16"),
        ({"imgsz": 64.0}, "imgsz .* got 64.0"),
        ({"seed": -1}, "seed .* got -1"),
        ({"n_train": True}, "n_train .* got True"),
        ({"mode": "harder"}, "mode must be one of shapes, hard, got 'harder'"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_dataset(tmp_path, **{**SMALL, **kwargs})
    assert not any(tmp_path.iterdir())  # nothing written


def test_command_line_prints_the_yaml_path(tmp_path, capsys):
    argv = ["--root", str(tmp_path), "--n-train", "8", "--n-val", "4", "--imgsz", "64", "--seed", "2"]
    assert synthetic_data.main(argv) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path.resolve() / "shapes-v2-8-4-64-s2" / "data.yaml")
    with pytest.raises(SystemExit) as exc:
        synthetic_data.main(["--root", str(tmp_path), "--imgsz", "8"])
    assert exc.value.code == 2
    assert "imgsz" in capsys.readouterr().err


def test_dense_labels_are_what_ultralytics_semantic_and_depth_datasets_read(tmp_path):
    from ultralytics.data.utils import load_depth

    semantic_yaml = make_synthetic_dataset(tmp_path, task="semantic", **SMALL)
    folder = semantic_yaml.parent
    assert make_synthetic_dataset(tmp_path, task="depth", **SMALL) == folder / "depth.yaml"
    semantic, depth_data = (
        yaml.safe_load(semantic_yaml.read_text()),
        yaml.safe_load((folder / "depth.yaml").read_text()),
    )
    assert semantic["masks_dir"] == "masks" and semantic["names"] == dict(enumerate(["background", *NAMES]))
    assert depth_data["depth_scale"] == 1000 and depth_data["nc"] == 1
    size = SMALL["imgsz"]
    for image in sorted((folder / "images" / "train").iterdir()):
        mask = cv2.imread(str(folder / "masks" / "train" / f"{image.stem}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and mask.shape == (size, size)
        labels = [line.split() for line in (folder / "labels" / "train" / f"{image.stem}.txt").read_text().splitlines()]
        covered = np.zeros_like(mask, bool)
        for _cls, *xywh in labels:
            x, y, w, h = (float(v) * size for v in xywh)
            covered[
                max(int(y - h / 2) - 1, 0) : int(y + h / 2) + 2, max(int(x - w / 2) - 1, 0) : int(x + w / 2) + 2
            ] = 1
        assert set(np.unique(mask)) - {0} <= {int(c) + 1 for c, *_ in labels}, image.name  # ids are class + 1
        assert not (mask[~covered] > 0).any(), image.name  # a shape's pixels lie inside its box
        assert (mask > 0).any(), image.name  # every image has at least one shape
        depth = load_depth(folder / "depth" / "train" / f"{image.stem}.png", depth_data["depth_scale"])  # metres
        ground = mask == 0
        assert depth.shape == (size, size) and depth[ground].min() >= synthetic_data.DEPTH_NEAR - 1e-3
        assert depth[ground].max() <= synthetic_data.DEPTH_FAR + 1e-3
        rows = [depth[r][ground[r]].mean() for r in range(size) if ground[r].any()]
        assert all(a > b for a, b in zip(rows, rows[1:])), image.name  # the ground comes nearer row by row
        assert (depth[~ground] < synthetic_data.DEPTH_NEAR).all()  # every shape stands in front of the ground plane


def test_dense_tasks_need_the_shapes_mode(tmp_path):
    with pytest.raises(ValueError, match="task 'semantic' needs mode 'shapes' \\(the 'hard' mode has box labels only"):
        make_synthetic_dataset(tmp_path, mode="hard", task="semantic", **SMALL)
    with pytest.raises(ValueError, match="task must be one of detect, semantic, depth, got 'panoptic'"):
        make_synthetic_dataset(tmp_path, task="panoptic", **SMALL)
