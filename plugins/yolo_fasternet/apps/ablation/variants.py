"""Compression variants of an ablation: a model pruned and fine-tuned, or a model trained with a teacher.

A variant is made from a *source*, one of ``--models``, and is compared with it (as well as with the baseline):

- ``--prune SOURCE TARGET``: for every seed, the source's trained run of that seed (its ``best.pt``) is pruned
  (``yolo-fasternet prune``: group-norm importance, head outputs kept) to ``TARGET``, a channel ratio in (0, 1)
  such as ``0.3`` or a GFLOPs speed-up above 1 such as ``1.5x``, then fine-tuned for ``--fine-tune-epochs`` (default
  ``--epochs``) with the ablation's training settings and the same seed. Named ``<source>-pruned-<target>``
  (``yolov8s-fasternet-pruned-0_3``, ``...-pruned-1_5x``: no dot, so the name is also a file stem).
- ``--distill STUDENT TEACHER``: the student (one of ``--models``, which also trains alone) trains from scratch
  with Ultralytics' native ``distill_model=`` (8.4.190+), under the same settings and seed. ``TEACHER`` is either
  one of ``--models``, and then each seed's student learns from the teacher's run of the same seed, or a trained
  ``.pt`` checkpoint, the same for every seed. Named ``<student>-distilled-<teacher stem>``.

Variants train after every plain model (their sources and teachers) has finished, in the same executor. A variant
that finished before is trained again when what it was made of changed: its source or teacher trained again
since it finished, or another fine-tune length or teacher file was asked for under the same name.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

PRUNED_CHECKPOINT = "pruned.pt"  # in a pruned variant's run folder: the pruned source before fine-tuning


@dataclass(frozen=True)
class Variant:
    """One compression variant; ``source`` and ``teacher`` are as given on the command line."""

    kind: str  # "prune" or "distill"
    source: str  # the model it is made from (prune: the model pruned; distill: the student)
    ratio: float | None = None
    speed_up: float | None = None
    epochs: int | None = None  # prune: fine-tune epochs
    teacher: str | None = None  # distill: one of --models, or a .pt path (absolute)
    teacher_in_ablation: bool = False

    @property
    def name(self) -> str:
        stem = Path(self.source).stem
        if self.kind == "prune":
            target = f"{self.ratio:g}" if self.ratio is not None else f"{self.speed_up:g}x"
            return f"{stem}-pruned-{target.replace('.', '_')}"
        return f"{stem}-distilled-{Path(self.teacher).stem}"

    @property
    def description(self) -> str:
        """How the variant was made, in words (the report's 'how' column)."""
        if self.kind == "prune":
            target = f"ratio {self.ratio:g}" if self.ratio is not None else f"{self.speed_up:g}x fewer GFLOPs"
            return f"pruned ({target}), fine-tuned {self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        teacher = f"{Path(self.teacher).stem}, same seed" if self.teacher_in_ablation else self.teacher
        return f"distilled from {teacher}"

    def as_dict(self) -> dict:
        return {**asdict(self), "name": self.name, "description": self.description}


def parse_target(text: str) -> tuple[float | None, float | None]:
    """``0.3`` -> (ratio 0.3, None); ``1.5x`` -> (None, speed-up 1.5); ValueError with the reason otherwise."""
    speed = text.lower().endswith("x")
    try:
        value = float(text[:-1] if speed else text)
    except ValueError:
        raise ValueError("give a channel ratio such as 0.3 or a GFLOPs speed-up such as 1.5x") from None
    if speed:
        if not (value > 1 and math.isfinite(value)):
            raise ValueError(f"a speed-up must be above 1, got {text}")
        return None, value
    if not 0 < value < 1:  # also refuses nan
        raise ValueError(f"the ratio must be between 0 and 1 (exclusive), got {text}")
    return value, None


def _model_named(name: str, models: list[str]) -> str | None:
    """The entry of ``models`` that ``name`` names (as given or by stem), or None."""
    return next((m for m in models if name in (m, Path(m).stem)), None)


def parse_variants(prune: list, distill: list, models: list[str], fine_tune_epochs: int) -> list[Variant]:
    """The variants of ``--prune SOURCE TARGET`` and ``--distill STUDENT TEACHER``; ValueError naming a bad one.

    Repeats run once. Sources, students and in-ablation teachers must be plain models of ``models``.
    """
    variants = []
    for source, target in prune or ():
        model = _model_named(source, models)
        if model is None:
            raise ValueError(f"--prune {source} {target}: {source} is not one of --models ({' '.join(models)})")
        try:
            ratio, speed_up = parse_target(target)
        except ValueError as e:
            raise ValueError(f"--prune {source} {target}: {e}") from None
        variants.append(Variant("prune", model, ratio=ratio, speed_up=speed_up, epochs=fine_tune_epochs))
    for student, teacher in distill or ():
        model = _model_named(student, models)
        if model is None:
            raise ValueError(
                f"--distill {student} {teacher}: the student {student} is not one of --models ({' '.join(models)}); "
                "it also trains alone, to be compared with"
            )
        trained_here = _model_named(teacher, models)
        if trained_here is None and Path(teacher).suffix != ".pt":
            raise ValueError(
                f"--distill {student} {teacher}: the teacher is neither one of --models nor a trained .pt checkpoint"
            )
        given = trained_here or str(Path(teacher).resolve())
        variants.append(Variant("distill", model, teacher=given, teacher_in_ablation=trained_here is not None))
    unique = list(dict.fromkeys(variants))
    names = [v.name for v in unique]
    clash = sorted({n for n in names if names.count(n) > 1} | ({n for n in names} & {Path(m).stem for m in models}))
    if clash:
        raise ValueError(f"two variants, or a variant and a model, named {', '.join(clash)}: rename a teacher file")
    return unique


def check_variants(variants: list[Variant], tasks: dict[str, str], data: str) -> None:
    """Everything about the variants that can fail before the first training, one line each (``CommandError``):
    torch-pruning present, prune sources are detection models, a ``.pt`` teacher exists, is of the student's task
    and has the dataset's class count."""
    import importlib.util

    from ..command_errors import CommandError, UsageError
    from ..compression.teacher import check_teacher, check_teacher_classes

    for v in variants:
        if v.kind == "prune":
            if importlib.util.find_spec("torch_pruning") is None:
                raise CommandError("--prune needs torch-pruning: pip install 'yolo-fasternet[prune]'")
            if tasks[v.source] != "detect":
                raise UsageError(f"--prune {v.source}: a {tasks[v.source]} model; pruning handles detection models")
        elif not v.teacher_in_ablation:
            try:
                teacher = check_teacher(v.teacher, tasks[v.source])
                if tasks[v.source] == "detect":
                    check_teacher_classes(teacher, v.teacher, data)
            except CommandError as e:
                raise type(e)(f"--distill {v.source}: {e}") from e


def trained_weights(run: Path) -> Path:
    """The checkpoint a finished run reports on: ``train/weights/best.pt`` (``last.pt`` where there is no best)."""
    weights = run / "train" / "weights"
    best = weights / "best.pt"
    return best if best.is_file() else weights / "last.pt"


def variant_spec(variant: Variant, seed: int, run_of) -> dict:
    """What a variant's run spec adds to a plain one: the variant, and the run folders of its source and teacher
    for the same seed (``run_of(model, seed)``), read by ``prepare`` once those have finished."""
    spec = {"variant": variant.as_dict(), "source_run": str(run_of(variant.source, seed))}
    if variant.teacher_in_ablation:
        spec["teacher_run"] = str(run_of(variant.teacher, seed))
    return spec


def depends_on(variant: Variant) -> tuple[str, ...]:
    """The plain models whose runs a variant is made from."""
    return (variant.source, variant.teacher) if variant.teacher_in_ablation else (variant.source,)


def prepare(spec: dict) -> tuple[str, dict]:
    """In the run's worker: the model to train and the training arguments that differ from the shared ones.

    prune: the source run's weights are pruned into ``<run>/pruned.pt`` (written atomically) and that is fine-tuned
    for the variant's epochs; distill: the student's YAML with ``distill_model=`` the teacher's weights.
    """
    from ..command_errors import CommandError

    v, folder = spec["variant"], Path(spec["run"])
    if v["kind"] == "distill":
        teacher = trained_weights(Path(spec["teacher_run"])) if v["teacher_in_ablation"] else Path(v["teacher"])
        if not teacher.is_file():
            raise CommandError(f"{v['name']}: the teacher's weights are missing ({teacher})")
        return v["source"], {"distill_model": str(teacher)}
    weights = trained_weights(Path(spec["source_run"]))
    if not weights.is_file():
        raise CommandError(f"{v['name']}: the source run left no weights ({weights})")
    pruned = folder / PRUNED_CHECKPOINT
    prune_checkpoint(weights, pruned, spec["train"]["imgsz"], v["ratio"], v["speed_up"])
    return str(pruned), {"epochs": v["epochs"]}


def prune_checkpoint(weights: Path, out: Path, imgsz: int, ratio: float | None, speed_up: float | None) -> None:
    """What ``yolo-fasternet prune`` writes, without its measurements: ``weights`` pruned into ``out``."""
    from ..command_errors import CommandError
    from ..compression.channel_pruning import PruningError, prune
    from ..preflight import load_model
    from ..prune import pruned_checkpoint, save_atomically

    yolo = load_model(str(weights))
    target = f"ratio {ratio}" if ratio is not None else f"speed-up {speed_up}"
    try:
        result = prune(yolo.model, imgsz, ratio=ratio, speed_up=speed_up)
    except PruningError as e:
        raise CommandError(f"pruning {weights}: {e}") from e
    for line in result.notices:
        print(f"notice: {line}", flush=True)
    save_atomically(pruned_checkpoint(yolo.ckpt or {}, result.model, result.changes, str(weights), target), out)
