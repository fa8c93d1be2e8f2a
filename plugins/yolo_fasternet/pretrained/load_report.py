"""What loading backbone weights did, or would have done: every tensor key, sorted into what matched and what not."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import listed
from .variants import BN_EPS


@dataclass
class LoadReport:
    """What loading did, or would have done: every key in one of the lists below."""

    source: str
    layout: str
    checkpoint: str  # e.g. "fasternet_t0 (embed 40, depths 1-2-8-2)"
    backbone: str  # the model's, e.g. "fasternet_t0 (embed 40, depths 1-2-8-2, gelu)"
    layers: list[int]
    loaded: list[str] = field(default_factory=list)  # "checkpoint key -> model key", as named in the source
    ignored_head: list[str] = field(default_factory=list)  # classification head: ignored on purpose
    missing: list[str] = field(default_factory=list)  # model tensors the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)  # checkpoint tensors without a place in the model
    mismatched: list[str] = field(default_factory=list)  # both exist, shapes differ
    counters_kept: int = 0  # BatchNorm num_batches_tracked absent from the checkpoint (unused by the model)

    @property
    def ok(self) -> bool:
        """Whether everything matched (the load went through)."""
        return not (self.missing or self.unexpected or self.mismatched)

    def error_line(self) -> str:
        """One line naming what did not match."""
        problems = [
            f"{len(items)} {what} ({listed(items)})"
            for what, items in (
                ("missing key(s)", self.missing),
                ("unexpected key(s)", self.unexpected),
                ("shape mismatch(es)", self.mismatched),
            )
            if items
        ]
        return f"{self.source}: not loaded, the model is unchanged: {'; '.join(problems)}"

    def summary(self) -> str:
        """A few lines for people: source, layout, variant, counts, what was ignored and why."""
        layers = f"{self.layers[0]}-{self.layers[-1]}" if self.layers else "none"
        head = (
            f"ignored {len(self.ignored_head)} classification-head key(s) on purpose ({listed(self.ignored_head)})"
            if self.ignored_head
            else "no classification-head keys"
        )
        lines = [
            f"backbone weights: {self.source} ({self.layout} layout, {self.checkpoint})",
            f"  {'loaded' if self.ok else 'would load'} {len(self.loaded)} tensors into model layers {layers} "
            f"({self.backbone}); {head}",
            f"  missing {len(self.missing)}, unexpected {len(self.unexpected)}, shape-mismatched "
            f"{len(self.mismatched)}; backbone BatchNorm eps set to {BN_EPS:g} (FasterNet's; Ultralytics builds 1e-3)",
        ]
        if self.counters_kept:
            lines.append(f"  {self.counters_kept} BatchNorm num_batches_tracked not in the checkpoint (unused, kept)")
        if not self.ok:
            lines.append(f"  {self.error_line()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
