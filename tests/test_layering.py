"""Dependencies inside the package point one way: commands -> Ultralytics integration -> pretrained -> modules.

Read from the source (every ``import``, also those inside functions and ``TYPE_CHECKING`` blocks), so a cycle or an
upward import is found without importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "plugins" / "yolo_fasternet"
# A module may import modules of its own layer or a lower one. Subpackages not named here are commands (top layer).
LAYERS = {"error_text": 0, "nn": 1, "pretrained": 2, "integration": 3}
TOP = 4


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The ``yolo_fasternet`` modules ``path`` imports (relative imports resolved; ``from . import x`` names x)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "yolo_fasternet"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "yolo_fasternet":
                continue
            for alias in node.names:  # ``from .pkg import module`` imports that module
                candidate = f"{target}.{alias.name}"
                sub = PACKAGE.parent / Path(*candidate.split("."))
                found.add(candidate if sub.with_suffix(".py").is_file() or sub.is_dir() else target)
    return found - {name}


GRAPH = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], TOP) if len(parts) > 1 else TOP


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_a_higher_layer(module):
    upward = sorted(m for m in GRAPH[module] if _layer(m) > _layer(module))
    assert not upward, f"{module} (layer {_layer(module)}) imports {upward}: dependencies point one way"


def test_no_import_cycle_between_modules():
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for nxt in sorted(GRAPH.get(module, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(cycles)


def test_the_graph_is_read():
    """Guards the two tests above against passing on an empty or misread graph."""
    assert "yolo_fasternet.pretrained.loading" in GRAPH["yolo_fasternet.integration.yaml_backbone_weights"] or any(
        m.startswith("yolo_fasternet.pretrained") for m in GRAPH["yolo_fasternet.integration.yaml_backbone_weights"]
    )
    assert "yolo_fasternet.nn.pconv" in GRAPH["yolo_fasternet.nn.fasternet_block"]
    assert _layer("yolo_fasternet.apps.detect") == TOP and _layer("yolo_fasternet.nn.pconv") == 1


@pytest.mark.parametrize(("machinery", "command"), [("ablation", "ablate"), ("detection", "detect")])
def test_a_commands_machinery_never_imports_the_command(machinery, command):
    """``apps/<machinery>/`` is what ``apps/<command>.py`` is built from: it points down, never back up."""
    modules = [m for m in GRAPH if m.startswith(f"yolo_fasternet.apps.{machinery}")]
    assert modules, f"no modules under apps/{machinery}/"
    upward = sorted(m for m in modules if f"yolo_fasternet.apps.{command}" in GRAPH[m])
    assert not upward, f"{upward} import yolo_fasternet.apps.{command}"
