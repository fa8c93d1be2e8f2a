"""The FasterNet architectures of the paper (and of timm), as a table, and the BatchNorm eps they were trained with."""

from __future__ import annotations

from dataclasses import dataclass

BN_EPS = 1e-5  # BatchNorm eps of FasterNet and timm (Ultralytics' initialize_weights sets 1e-3)


@dataclass(frozen=True)
class FasterNetVariant:
    """One FasterNet architecture of the paper (and of timm)."""

    name: str  # t0, t1, t2, s, m, l
    embed: int
    depths: tuple[int, ...]
    act: str

    @property
    def model_name(self) -> str:
        """The name timm and the release files use, e.g. ``fasternet_t0``."""
        return f"fasternet_{self.name}"


VARIANTS = {
    v.name: v
    for v in (
        FasterNetVariant("t0", 40, (1, 2, 8, 2), "gelu"),
        FasterNetVariant("t1", 64, (1, 2, 8, 2), "gelu"),
        FasterNetVariant("t2", 96, (1, 2, 8, 2), "relu"),
        FasterNetVariant("s", 128, (1, 2, 13, 2), "relu"),
        FasterNetVariant("m", 144, (3, 4, 18, 3), "relu"),
        FasterNetVariant("l", 192, (3, 4, 18, 3), "relu"),
    )
}


def variant_for(embed: int, depths: tuple[int, ...]) -> FasterNetVariant | None:
    return next((v for v in VARIANTS.values() if (v.embed, v.depths) == (embed, tuple(depths))), None)


def shape_text(embed: int, depths: tuple[int, ...]) -> str:
    return f"embed {embed}, depths {'-'.join(map(str, depths))}"
