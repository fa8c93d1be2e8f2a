"""``yolo-fasternet prune``: module rules against hand pruning, every bundled family pruned end to end, the command."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from yolo_fasternet.apps import prune as prune_command
from yolo_fasternet.apps import zoo
from yolo_fasternet.apps.compression import channel_pruning
from yolo_fasternet.apps.compression.channel_pruning import prune
from yolo_fasternet.integration.pruned_architecture import KEY, tensor_shapes
from yolo_fasternet.integration.pruning_rules import pruning_plan
from yolo_fasternet.nn.fasternet_block import FasterNetBlock
from yolo_fasternet.nn.partialnet_block import PartialNetBlock
from yolo_fasternet.nn.pconv import PConv
from yolo_fasternet.nn.saconv import SAConv
from yolo_fasternet.nn.spconv import SPConv

from conftest import assert_outputs_close, nontrivial_outputs

pytest.importorskip("torch_pruning", reason="torch-pruning is not installed (the [prune] extra)")

IMGSZ = 64
FAMILIES = [  # one YAML per bundled family of detection models
    "yolov8n-fasternet.yaml",
    "yolo11n-fasternet.yaml",
    "yolo26n-fasternet.yaml",
    "yolov8n-c2f-faster.yaml",
    "yolo11n-c3k2-faster.yaml",
    "yolov8n-saconv.yaml",
    "yolov8n-spconv.yaml",
    "yolov8n-partialnet.yaml",
    "yolov8s-partialnet.yaml",  # PartialNet-T1: the PAT_sp tail
]


def _checkpoint(yaml_name: str, path: Path) -> Path:
    """A checkpoint as stock ``YOLO(path)`` loads it: random weights with non-trivial BN statistics and scores."""
    torch.manual_seed(0)
    model = nontrivial_outputs(YOLO(yaml_name, verbose=False).model)
    torch.save({"model": copy.deepcopy(model).half(), "train_args": {}, "epoch": -1}, path)
    return path


def test_pconv_rule_keeps_the_outputs_of_the_kept_channels():
    """PConv pruned by its rule (convolved channels kept, untouched ones removed) equals PConv on the kept channels."""
    torch.manual_seed(0)
    full = PConv(16).eval()
    kept = [0, 1, 2, 3, 5, 8, 9, 13]  # the 4 convolved channels and 4 of the 12 untouched ones
    pruned = copy.deepcopy(full)
    pruned.yolo_pruned(len(kept))
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x[:, kept]), full(x)[:, kept])
    assert (pruned.dim_conv, pruned.dim_untouched) == (4, 4)
    assert set(pruned.yolo_pruning_kept_inputs()) == set(pruned.yolo_pruning_kept_outputs()) == {pruned.conv}


def _kept_rows(full: torch.Tensor, pruned: torch.Tensor) -> list[int]:
    """The indices of ``full``'s rows (output channels) that the pruner kept: those found among ``pruned``'s rows."""
    return [i for i in range(full.shape[0]) if any(torch.equal(full[i], row) for row in pruned)]


def _select(module: torch.nn.Module, kept: list[int], dim: int = 0) -> None:
    """Hand pruning of one conv or BN: keep the channels ``kept`` along ``dim`` of every parameter and buffer."""
    for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
        if tensor.dim() > dim and name != "num_batches_tracked":
            sliced = tensor.index_select(dim, torch.tensor(kept))
            setattr(module, name, torch.nn.Parameter(sliced) if isinstance(tensor, torch.nn.Parameter) else sliced)


def _assert_mlp_pruned_like_hand_pruning(original, block) -> None:
    """A FasterNet-style block's rule: the projection's outputs (the residual width) stay; pruning the MLP's hidden
    channels by hand (expand's outputs and BN, project's inputs) at the channels the pruner kept (found by their
    weights: it keeps the largest group norms) gives the same output as the pruned block."""
    assert block.project.weight.shape[0] == original.project.weight.shape[0]  # residual width kept
    hidden = block.expand.conv.weight.shape[0]
    assert hidden < original.expand.conv.weight.shape[0]
    kept = _kept_rows(original.expand.conv.weight, block.expand.conv.weight)
    assert len(kept) == hidden
    by_hand = copy.deepcopy(original).eval()
    _select(by_hand.expand.conv, kept)
    _select(by_hand.expand.bn, kept)
    _select(by_hand.project, kept, dim=1)
    x = torch.randn(1, block.project.weight.shape[0], 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block.eval()(x), by_hand(x))


def test_fasternet_block_keeps_its_residual_width_and_prunes_its_mlp_like_hand_pruning():
    torch.manual_seed(0)
    model = DetectionModel("yolov8n-fasternet.yaml", verbose=False)
    nontrivial_outputs(model)
    pruned = prune(model, IMGSZ, ratio=0.25).model
    assert isinstance(pruned.model[1], FasterNetBlock)
    _assert_mlp_pruned_like_hand_pruning(model.model[1], pruned.model[1])


def test_partialnet_blocks_prune_their_mlp_like_hand_pruning_and_keep_patconv_and_pat_sp():
    """PartialNet-T1 (the s scale, with PAT_sp): channel- and self-attention blocks lose MLP hidden channels exactly
    as by hand; PATConv and PAT_sp keep every tensor; the layers feeding the residual widths, whose channel groups
    Torch-Pruning 1.6.1 cannot trace through PAT_sp's split (an IndexError), keep their outputs, with a notice."""
    torch.manual_seed(0)
    model = DetectionModel("yolov8s-partialnet.yaml", verbose=False)
    nontrivial_outputs(model)
    result = prune(model, IMGSZ, ratio=0.25)
    for index in ((1,), (5, 0), (7, 1)):  # stage 1 and 3 (channel attention), stage 4 (self-attention)
        original, block = model.model[index[0]], result.model.model[index[0]]
        if len(index) > 1:
            original, block = original[index[1]], block[index[1]]
        assert isinstance(block, PartialNetBlock) and block.spatial_tail is not None
        assert tensor_shapes(block.spatial_mixing) == tensor_shapes(original.spatial_mixing)
        assert tensor_shapes(block.spatial_tail) == tensor_shapes(original.spatial_tail)
        _assert_mlp_pruned_like_hand_pruning(original, block)
    assert not any("left unpruned" in line for line in result.notices)
    assert any(line.startswith("layer 2.conv (Conv2d): output channels kept") for line in result.notices)


def test_spconv_rule_prunes_its_outputs_like_hand_pruning_and_keeps_its_split(tmp_path):
    """SPConv as a stand-alone layer (a downsampling Conv replaced): its output channels are pruned, evenly from
    both groups of the 2-group conv, and the pruned module equals the original's kept output channels and a hand
    pruning of every branch, norm and mixing at them; its inputs and split sizes stay as built."""
    from conftest import REPO

    text = (REPO / "cfg" / "yolov8-spconv.yaml").read_text()
    assert "[-1, 1, Conv, [128, 3, 2]]" in text
    yaml_path = tmp_path / "yolov8n-spconv-layer.yaml"
    yaml_path.write_text(text.replace("[-1, 1, Conv, [128, 3, 2]]", "[-1, 1, SPConv, [128, 2]]", 1))
    torch.manual_seed(0)
    model = nontrivial_outputs(DetectionModel(str(yaml_path), verbose=False))
    original = model.model[1].eval()
    assert isinstance(original, SPConv)
    result = prune(model, IMGSZ, ratio=0.25)
    pruned = result.model.model[1].eval()
    kept = _kept_rows(original.gwc.weight, pruned.gwc.weight)
    half = original.gwc.out_channels // 2
    assert 0 < len(kept) == pruned.gwc.out_channels < original.gwc.out_channels
    assert sum(i < half for i in kept) == len(kept) // 2  # as many channels left in each group
    assert (pruned.c3, pruned.c1x1) == (original.c3, original.c1x1)
    assert pruned.gwc.in_channels == original.gwc.in_channels and pruned.conv_1x1.in_channels == original.c1x1
    by_hand = copy.deepcopy(original)
    for layer in (by_hand.gwc, by_hand.pwc, by_hand.conv_1x1, by_hand.bn_3x3, by_hand.bn_1x1, by_hand.bn):
        _select(layer, kept)
    by_hand.gwc.out_channels = len(kept)
    x = torch.randn(2, original.c3 + original.c1x1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), by_hand(x))
        torch.testing.assert_close(pruned(x), original(x)[:, kept])
    assert not any("SPConv" in line for line in result.notices)


def test_a_module_that_declares_yolo_pruning_false_is_left_unpruned_with_a_notice():
    """SAConv (``yolo_pruning = False``): every channel of every SAConv kept, one notice naming each layer."""
    model = DetectionModel("yolov8n-saconv.yaml", verbose=False)
    plan = pruning_plan(model.model)
    saconv = [(n, m) for n, m in model.model.named_modules() if isinstance(m, SAConv)]
    assert saconv and all(m in plan.kept_inputs and m in plan.kept_outputs for _, m in saconv)
    for name, _ in saconv:
        assert f"layer {name} (SAConv): left unpruned, it declares yolo_pruning = False" in plan.notices


class _OtherPackageBlock(torch.nn.Module):
    """A module of another package (this test file) with a hard-coded split a tracer cannot follow."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 1)

    def forward(self, x):
        a, b = x.split([4, 4], 1)
        return self.conv(torch.cat((b, a), 1))


def test_a_module_of_another_package_without_a_rule_is_left_unpruned_and_one_that_opts_in_is_traced():
    from ultralytics.nn.modules import Conv

    class OptedIn(_OtherPackageBlock):
        yolo_pruning = True

    for block, notice in ((_OtherPackageBlock(), True), (OptedIn(), False)):
        layers = torch.nn.Sequential(Conv(3, 8), block, Conv(8, 8))
        plan = pruning_plan(layers)
        assert (block.conv in plan.kept_inputs) is notice
        expected = [f"layer 1 ({type(block).__name__}): left unpruned, it declares no pruning rule"] if notice else []
        assert plan.notices == expected


def _one_train_step(model: DetectionModel) -> None:
    """One optimizer step on a batch of two images with a box each (the detection loss)."""
    model.args = get_cfg()
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    batch = {
        "img": torch.rand(2, 3, IMGSZ, IMGSZ),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[0.0], [1.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.3, 0.3, 0.2, 0.2]]),
    }
    loss, _ = model.loss(batch)
    loss.sum().backward()
    torch.optim.SGD(model.parameters(), lr=1e-3).step()
    assert torch.isfinite(loss).all()


@pytest.mark.slow
@pytest.mark.parametrize("yaml_name", FAMILIES)
def test_pruned_family_runs_reloads_rebuilds_trains_and_exports(yaml_name, tmp_path, monkeypatch):
    """Each bundled family at ratio 0.2: fewer parameters where it has prunable groups, a checkpoint stock YOLO
    reloads with the same outputs, a rebuild from its YAML with the pruned shapes, one training step, an ONNX export
    equal to the fused PyTorch model."""
    pytest.importorskip("onnxruntime")
    source = _checkpoint(yaml_name, tmp_path / "model.pt")
    yolo = YOLO(source)
    result = prune(yolo.model, IMGSZ, ratio=0.2)
    assert sum(p.numel() for p in result.model.parameters()) < sum(p.numel() for p in yolo.model.parameters())
    out = tmp_path / "pruned.pt"
    prune_command.save_atomically(
        prune_command.pruned_checkpoint(yolo.ckpt, result.model, result.changes, str(source), "ratio 0.2"), out
    )
    reloaded = YOLO(out)
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    expected_model = copy.deepcopy(reloaded.model).float().eval()
    if getattr(expected_model, "end2end", False):
        expected_model.end2end = False  # the exporter's default exports the one-to-many head
    with torch.no_grad():
        expected = expected_model.fuse(verbose=False)(x)[0]
    rebuilt = DetectionModel(reloaded.model.yaml, verbose=False)
    assert tensor_shapes(rebuilt) == tensor_shapes(reloaded.model)
    assert reloaded.model.yaml[KEY]["shapes"], "the pruned widths are recorded in model.yaml"
    _one_train_step(rebuilt)
    monkeypatch.chdir(tmp_path)
    onnx_path = reloaded.export(format="onnx", imgsz=IMGSZ, batch=1, device="cpu")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    assert_outputs_close(actual, expected, reloaded.model, rel=1e-3, what=f"pruned {yaml_name} as onnx")


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    return _checkpoint("yolov8n-fasternet.yaml", tmp_path_factory.mktemp("prune") / "best.pt")


def test_prune_command_prints_layers_and_measurements_and_writes_the_checkpoint(small_checkpoint, capsys):
    out = small_checkpoint.with_name("small.pt")
    argv = ["--weights", str(small_checkpoint), "--ratio", "0.3", "--imgsz", "64", "--runs", "2", "--output", str(out)]
    assert prune_command.main(argv) == 0
    printed = capsys.readouterr().out
    assert "model.1.expand.conv: out 80 -> " in printed
    for row in ("params", "GFLOPs", "CPU ms @64"):
        assert row in printed
    pruned = YOLO(out).model
    assert pruned.model[1].expand.conv.out_channels < 80
    assert not list(out.parent.glob(".*.tmp"))


def test_speed_up_target_reduces_gflops_by_the_factor(small_checkpoint, capsys):
    out = small_checkpoint.with_name("fast.pt")
    argv = [
        "--weights",
        str(small_checkpoint),
        "--speed-up",
        "1.3",
        "--imgsz",
        "64",
        "--runs",
        "1",
        "--output",
        str(out),
    ]
    assert prune_command.main(argv) == 0
    table = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert float(table["GFLOPs"][-1]) <= 1 / 1.3 + 1e-3


def _parameter_clock(monkeypatch) -> list[tuple[int, int]]:
    """Replace the CPU timer by a deterministic one: a model's "latency" is its parameter count. Returns the list
    of (original, pruned) pairs timed, in order. Real speed-ups are measured by benchmarks, not by unit tests."""
    timed = []

    def time_pair(a, b, imgsz, runs):
        assert not a.training and not b.training and not torch.is_grad_enabled()  # fused eval models, no autograd
        pair = tuple(sum(p.numel() for p in m.parameters()) for m in (a, b))
        timed.append(pair)
        return pair

    monkeypatch.setattr(zoo, "time_pair", time_pair)
    return timed


def test_latency_target_stops_at_the_first_step_measured_fast_enough(small_checkpoint, monkeypatch, capsys):
    """``--latency-speed-up``: one timing of the original against the pruned model per step, stopping at the first
    step whose measured ratio meets the target; the model written is the one measured there."""
    timed = _parameter_clock(monkeypatch)
    out = small_checkpoint.with_name("latency.pt")
    argv = ["--weights", str(small_checkpoint), "--latency-speed-up", "1.4", "--imgsz", "64", "--runs", "1"]
    assert prune_command.main([*argv, "--output", str(out)]) == 0
    *steps, table = timed  # the last timing is the before/after table's
    ratios = [before / after for before, after in steps]
    assert len(steps) > 1 and all(r < 1.4 for r in ratios[:-1]) and ratios[-1] >= 1.4
    assert len({before for before, _ in timed}) == 1  # always against the same original
    assert table == steps[-1]
    written = channel_pruning.fused_copy(YOLO(out).model)  # what was timed: the fused model
    assert sum(p.numel() for p in written.parameters()) == table[1]
    assert f"CPU latency {ratios[-1]:.2f}x lower (measured)" in capsys.readouterr().out


def test_an_unreachable_latency_target_is_one_line_and_writes_nothing(small_checkpoint, monkeypatch, capsys):
    """A latency that does not fall (the timer says so) after the largest share: exit 1, one line, no file."""
    monkeypatch.setattr(zoo, "time_pair", lambda a, b, imgsz, runs: (5.0, 5.0))
    monkeypatch.setattr(channel_pruning, "STEPS", 2)  # reach the largest share in two steps, not fourteen
    out = small_checkpoint.with_name("unreachable.pt")
    argv = ["--weights", str(small_checkpoint), "--latency-speed-up", "1.5", "--imgsz", "64", "--runs", "1"]
    assert prune_command.main([*argv, "--output", str(out)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        "yolo-fasternet prune: error: --latency-speed-up 1.5: pruning 70% of every prunable group gives only 1.00x "
        "lower CPU latency; ask for less"
    ]
    assert not out.exists() and not list(out.parent.glob(".unreachable*"))


def test_an_interrupted_prune_writes_nothing(small_checkpoint, monkeypatch):
    """Ctrl-C while the checkpoint is written: no output file and no temporary file stays behind."""
    out = small_checkpoint.with_name("interrupted.pt")

    def interrupted_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    argv = ["--weights", str(small_checkpoint), "--ratio", "0.1", "--imgsz", "64", "--runs", "1", "--output", str(out)]
    assert prune_command.main(argv) == 130
    assert not out.exists() and not list(out.parent.glob(".interrupted*"))


@pytest.mark.slow
def test_stock_cli_fine_tune_keeps_the_pruned_widths(small_checkpoint, coco8_yaml, tmp_path):
    """``yolo train model=pruned.pt`` (the stock CLI, a fresh process) trains the pruned architecture, not a rebuild
    of the unpruned YAML that loads what fits; ``yolo val`` then runs on the result."""
    from conftest import run_checked

    out = tmp_path / "pruned.pt"
    assert (
        prune_command.main(
            ["--weights", str(small_checkpoint), "--ratio", "0.3", "--imgsz", "64", "--runs", "1", "--output", str(out)]
        )
        == 0
    )
    yolo = str(Path(os.sys.executable).with_name("yolo"))
    common = [
        f"data={coco8_yaml}",
        "imgsz=64",
        "batch=4",
        "workers=0",
        "device=cpu",
        "plots=False",
        f"project={tmp_path}",
    ]
    run_checked([yolo, "train", f"model={out}", "epochs=1", "name=ft", *common], cwd=tmp_path)
    trained = tmp_path / "ft" / "weights" / "last.pt"
    assert tensor_shapes(YOLO(trained).model) == tensor_shapes(YOLO(out).model)
    run_checked([yolo, "val", f"model={trained}", "name=val", *common], cwd=tmp_path)
    image = next((coco8_yaml.parent / "images" / "val").glob("*.jpg"))
    safe = {"ULTRALYTICS_SAFE_LOAD": "1"}  # restricted (weights_only) loading of the pruned checkpoint
    predict = [yolo, "predict", f"model={out}", f"source={image}", "imgsz=64", "device=cpu", f"project={tmp_path}"]
    run_checked([*predict, "name=pred", "save=False"], cwd=tmp_path, env=safe)
