"""`yolo-fasternet graft`: module substitution in stock and user model YAMLs, text kept, result built at every scale."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import ultralytics
import yaml
from ultralytics.nn import tasks

from yolo_fasternet.apps.graft import GraftError, graft_text
from yolo_fasternet.cli import main as cli_main

pytestmark = pytest.mark.registration

SUBSTITUTIONS = {"C2f": "C2f_Faster", "C3k2": "C3k2_Faster"}
STOCK_MODELS = Path(ultralytics.__file__).parent / "cfg" / "models"
_ROW_WITH = re.compile(r"^\s*-\s*\[.*\b(C2f|C3k2)\b", re.M)


def _is_detection(path: Path) -> bool:
    d = yaml.safe_load(path.read_text())
    head = d["head"][-1][2]
    return tasks.guess_model_task(d) == "detect" or head == "RTDETRDecoder"


# Every detection YAML the installed release ships with a C2f or C3k2 row (8.3.0 and 8.4.x ship different sets).
STOCK_DETECTION_YAMLS = sorted(
    p for p in STOCK_MODELS.rglob("*.yaml") if _ROW_WITH.search(p.read_text()) and _is_detection(p)
)


def graft(*argv: str) -> int:
    """``yolo-fasternet graft ...`` in this process; argparse refusals come back as their exit status."""
    try:
        return cli_main(["graft", *map(str, argv)])
    except SystemExit as e:
        return e.code


def _layers(d: dict, scale: str, device: str = "cpu"):
    """The layers ``parse_model`` builds from ``d`` at ``scale`` (no forward pass)."""
    with torch.device(device):
        layers, _ = tasks.parse_model({**copy.deepcopy(d), "scale": scale}, ch=3, verbose=False)
    return layers


def _short(layer) -> str:
    return layer.type.rsplit(".", 1)[-1]


def _comment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_stock_detection_yamls_are_found():
    names = {p.name for p in STOCK_DETECTION_YAMLS}
    assert {"yolov8.yaml", "yolov8-p2.yaml", "yolov8-p6.yaml", "yolo11.yaml"} <= names, names


@pytest.mark.parametrize("source", STOCK_DETECTION_YAMLS, ids=lambda p: str(p.relative_to(STOCK_MODELS)))
def test_every_stock_detection_yaml_grafts_and_builds_at_n_s_m(source, tmp_path):
    text = source.read_text()
    subs = {old: new for old, new in SUBSTITUTIONS.items() if re.search(rf"\[.*\b{old}\b", text)}
    out = tmp_path / f"grafted-{source.name}"
    assert graft(source, *(f"{old}={new}" for old, new in subs.items()), "-o", out) == 0
    grafted_text = out.read_text()
    assert _comment_lines(grafted_text)[1:] == _comment_lines(text)  # every comment kept; line 1 says what was done
    d_source, d_grafted = yaml.safe_load(text), yaml.safe_load(grafted_text)
    scales = [s for s in "nsm" if s in d_source.get("scales", {})] or list(d_source.get("scales", {}))
    assert scales, source
    for scale in scales:
        before, after = _layers(d_source, scale, device="meta"), _layers(d_grafted, scale)  # the grafted one for real
        assert len(after) == len(before)
        for i, (old, new) in enumerate(zip(before, after)):
            assert _short(new) == subs.get(_short(old), _short(old)), (scale, i)
            if _short(old) in subs:  # same widths and depth as the module it replaces
                widths = [(m.cv1.conv.in_channels, m.cv2.conv.out_channels, len(m.m)) for m in (old, new)]
                assert widths[0] == widths[1], (scale, i, widths)


@pytest.mark.parametrize("source", sorted(STOCK_MODELS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(STOCK_MODELS)))
def test_every_row_of_every_stock_yaml_is_reachable(source):
    """Text only: each module of every shipped YAML (v3, v5, v6, v9 included) can be substituted at all its rows, and
    the substituted text reads back as the same model with only the module fields changed."""
    text = source.read_text()
    d = yaml.safe_load(text)
    rows = [*d["backbone"], *d["head"]]
    modules = [row[2] for row in rows]
    grafted, at = graft_text(text, {m: f"{m}_X" for m in set(modules)})
    assert sorted(i for layers in at.values() for i in layers) == list(range(len(modules)))
    assert len(grafted.splitlines()) == len(text.splitlines())
    d_grafted = yaml.safe_load(grafted)
    assert [row[2] for row in [*d_grafted["backbone"], *d_grafted["head"]]] == [f"{m}_X" for m in modules]
    assert [[r[0], r[1], *r[3:]] for r in [*d_grafted["backbone"], *d_grafted["head"]]] == [
        [r[0], r[1], *r[3:]] for r in rows
    ]  # from, repeats and args as written
    assert {k: v for k, v in d_grafted.items() if k not in ("backbone", "head")} == {
        k: v for k, v in d.items() if k not in ("backbone", "head")
    }


def test_rows_keep_their_text_but_the_module():
    text = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]] # 0\n  - [-1, 2, 'C2f', [32, True]]   # 1 keep C2f here\n"
    text += "head:\n  # [from, repeats, module, args]\n  - [[-1, 0], 1, Concat, [1]]\n  - [-1, 1, C2f, [32]]\n"
    grafted, at = graft_text(text, {"C2f": "C2f_Faster"})
    assert at == {"C2f": [1, 3]}
    expected = text.replace("'C2f'", "'C2f_Faster'").replace("1, C2f, [32]", "1, C2f_Faster, [32]")
    assert grafted == expected


def test_block_style_rows_are_refused_not_skipped():
    text = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - - -1\n    - 1\n    - C2f\n    - [16]\nhead: []\n"
    with pytest.raises(GraftError, match="layer 1 .C2f. is not written as a one-line"):
        graft_text(text, {"C2f": "C2f_Faster"})


def test_scale_letter_in_a_stock_name_reads_the_unscaled_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert graft("yolo11n.yaml", "C3k2=C3k2_Faster") == 0
    out = tmp_path / "yolo11n-c3k2-faster.yaml"  # keeps the scale letter, so `yolo train model=<it>` builds n
    assert tasks.guess_model_scale(out) == "n"
    assert "yolo11.yaml" in out.read_text().splitlines()[0]
    assert "C3k2 -> C3k2_Faster at layers 2, 4, 6, 8, 13, 16, 19, 22" in capsys.readouterr().out


def test_a_user_yaml_grafts_with_a_registered_module(tmp_path):
    source = tmp_path / "mine.yaml"
    source.write_text((STOCK_MODELS / "v8" / "yolov8.yaml").read_text())
    assert graft(source, "Conv=SAConv", "-o", tmp_path / "mine-saconv.yaml") == 0
    assert "SAConv" in (tmp_path / "mine-saconv.yaml").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nothere.yaml", "C2f=C2f_Faster"], "source YAML 'nothere.yaml' not found"),
        (["yolov8.yaml", "C3k2=C3k2_Faster"], r"has no C3k2 row \(its modules: C2f, Concat"),
        (["yolov8.yaml", "C2f=C2f_Fastr"], "'C2f_Fastr' is not a module .* did you mean C2f_Faster"),
        (["yolov8.yaml", "C2f=nn.Conv3"], "'nn.Conv3' is not a module"),
        (["yolov8.yaml", "C2f"], "substitution 'C2f' is not OLD=NEW"),
        (["yolov8.yaml", "Conv=PConv"], "does not build at scale 'n': model YAML layer 0 .PConv."),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path, capsys):
    assert graft(*argv, "-o", tmp_path / "out.yaml") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "out.yaml").exists()


def test_never_overwrites_the_source_nor_an_existing_file_unless_forced(tmp_path, capsys):
    source = tmp_path / "src.yaml"
    source.write_text((STOCK_MODELS / "v8" / "yolov8.yaml").read_text())
    assert graft(source, "C2f=C2f_Faster", "-o", source) == 2
    assert "is the source YAML" in capsys.readouterr().err
    assert source.read_text() == (STOCK_MODELS / "v8" / "yolov8.yaml").read_text()
    out = tmp_path / "out.yaml"
    out.write_text("keep")
    assert graft(source, "C2f=C2f_Faster", "-o", out) == 2 and out.read_text() == "keep"
    assert graft(source, "C2f=C2f_Faster", "-o", out, "--force") == 0 and "C2f_Faster" in out.read_text()
