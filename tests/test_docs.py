"""The README and the documentation site: short README, every README command tested or marked, an offline site.

`mkdocs build --strict` itself runs in `make test` (target docs-build): broken links, anchors, pages and docstrings
fail there. The conventions checked here are described in docs/development.md.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_python

README = REPO / "README.md"
MAX_README_LINES = 250
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "zsh"}
FENCE = re.compile(r"^(`{3,})(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(tested|illustrative)\b:?\s*(.*?)\s*-->$")
CI_SCRIPT = ".ci/run"


@dataclass
class CodeBlock:
    line: int  # 1-based line of the opening fence
    language: str
    body: list[str]
    marker: str | None  # the HTML comment on the line right above the fence


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block of a Markdown text, with the line above its opening fence."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(match.group(1)))
        above = lines[i - 1].strip() if i else ""
        blocks.append(CodeBlock(i + 1, match.group(2), lines[i + 1 : end], above if above.startswith("<!--") else None))
        i = end + 1
    return blocks


def shell_commands(block: CodeBlock) -> list[str]:
    """The commands of a shell block: comments dropped, continuation lines joined."""
    commands, pending = [], ""
    for raw in block.body:
        line = re.sub(r"(^|\s)#\s.*$", "", raw).strip()
        if not line:
            continue
        pending = f"{pending} {line}".strip()
        if pending.endswith("\\"):
            pending = pending[:-1].strip()
            continue
        commands.append(pending)
        pending = ""
    return commands


def test_code_block_parser_reads_fences_markers_and_commands():
    text = "<!-- tested: .ci/run -->\n```bash\nmake test   # lint\npython a.py \\\n  --x 1\n```\n"
    text += "\n```python\nx = 1\n```\n"
    first, second = code_blocks(text)
    assert (first.line, first.language, first.marker) == (2, "bash", "<!-- tested: .ci/run -->")
    assert shell_commands(first) == ["make test", "python a.py --x 1"]
    assert (second.language, second.marker) == ("python", None)


def test_readme_is_at_most_250_lines():
    count = len(README.read_text().splitlines())
    assert count <= MAX_README_LINES, f"README.md has {count} lines; the rest belongs in docs/"


def test_every_readme_code_block_names_its_language():
    bare = [block.line for block in code_blocks(README.read_text()) if not block.language]
    assert not bare, f"README.md code blocks without a language at lines {bare}"


def test_readme_shows_make_demo_and_make_test():
    commands = [c for b in code_blocks(README.read_text()) if b.language in SHELL_LANGUAGES for c in shell_commands(b)]
    assert "make demo" in commands and "make test" in commands


def _test_function_exists(ref: str) -> str | None:
    """None if ``tests/file.py::name`` (or ``::Class::name``) is defined there, else what is wrong."""
    path, _, name = ref.partition("::")
    file = REPO / path
    if not (path.startswith("tests/") and file.is_file() and name):
        return f"{ref}: not a tests/<file>.py::<test> reference to an existing file"
    scope = ast.parse(file.read_text()).body
    *classes, function = name.split("::")
    for cls in classes:
        scope = next((n.body for n in scope if isinstance(n, ast.ClassDef) and n.name == cls), [])
    if not any(isinstance(n, ast.FunctionDef) and n.name == function for n in scope):
        return f"{ref}: no test function {name} in {path}"
    return None


def _marker_problems(block: CodeBlock) -> list[str]:
    where = f"README.md line {block.line}"
    match = MARKER.match(block.marker or "")
    if not match:
        return [f"{where}: a shell block needs <!-- tested: tests/...::test_... --> or <!-- illustrative --> above it"]
    kind, refs = match.groups()
    if kind == "illustrative":
        return []
    problems = []
    for ref in filter(None, (r.strip() for r in refs.split(","))):
        if ref == CI_SCRIPT:  # CI runs one of these commands itself, as written
            ci_lines = {line.strip() for line in (REPO / CI_SCRIPT).read_text().splitlines()}
            if not ci_lines & set(shell_commands(block)):
                problems.append(f"{where}: {CI_SCRIPT} runs none of {shell_commands(block)}")
        elif error := _test_function_exists(ref):
            problems.append(f"{where}: {error}")
    if not refs.strip():
        problems.append(f"{where}: 'tested:' names no test")
    return problems


def test_every_readme_shell_command_is_tested_or_marked_illustrative():
    shell = [b for b in code_blocks(README.read_text()) if b.language in SHELL_LANGUAGES]
    assert shell, "README.md shows no shell commands at all?"
    problems = [p for block in shell for p in _marker_problems(block)]
    assert not problems, "\n".join(problems)


def test_a_missing_or_wrong_marker_is_reported():
    unmarked = code_blocks("```bash\nyolo train\n```\n")[0]
    assert "needs <!-- tested" in _marker_problems(unmarked)[0]
    wrong = code_blocks("<!-- tested: tests/test_docs.py::test_that_does_not_exist -->\n```bash\nls\n```\n")[0]
    assert "no test function test_that_does_not_exist" in _marker_problems(wrong)[0]
    assert _marker_problems(code_blocks("<!-- illustrative: needs a webcam -->\n```sh\nx\n```\n")[0]) == []


@pytest.mark.slow
def test_make_demo_is_the_default_training_and_it_trains(tmp_path):
    """`make demo` is `train_yolo.py` without arguments; that command, shortened to one epoch, trains and reports."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo:(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe and "install" in recipe.group(1).split()
    assert [line.strip() for line in recipe.group(2).splitlines()] == ["$(PY) train_yolo.py"]

    env = {**os.environ, "YOLO_FASTERNET_CACHE": str(tmp_path / "cache")}  # the generated dataset lands here
    argv = [sys.executable, str(REPO / "train_yolo.py"), "--epochs", "1", "--project", str(tmp_path / "runs")]
    argv.append("plots=False")
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    best = re.search(r"^  best\.pt +(\S+)$", proc.stdout, re.M)
    assert best and Path(best.group(1)).is_file(), proc.stdout[-3000:]
    assert re.search(r"^  mAP50 +\d\.\d{4}$", proc.stdout, re.M)
    assert (tmp_path / "cache").is_dir()


def test_readme_own_module_builds_with_c2f_widths_and_depths():
    """The README's ten-line module, run as printed: swapped for every C2f of yolov8, each layer's output shape at
    n and s equals stock's."""
    text = README.read_text()
    section = text[text.index("[start:own-module]") : text.index("[end:own-module]")]
    (block,) = [b for b in code_blocks(section) if b.language == "python"]
    code = "\n".join(block.body)
    check = """
import copy, torch
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
for scale in "ns":
    stock_cfg = yaml_model_load(f"yolov8{scale}.yaml")
    mine_cfg = copy.deepcopy(stock_cfg)
    for row in mine_cfg["backbone"] + mine_cfg["head"]:
        row[2] = "C2fSE" if row[2] == "C2f" else row[2]
    shapes = []
    for cfg in (stock_cfg, mine_cfg):
        model = DetectionModel(cfg, verbose=False).eval()
        seen = []
        record = lambda module, inputs, out, seen=seen: seen.append(tuple(out.shape) if torch.is_tensor(out) else None)
        for m in model.model:
            m.register_forward_hook(record)
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
        shapes.append(seen)
    assert shapes[0] == shapes[1], (scale, shapes)
    assert sum(type(m).__name__ == "C2fSE" for m in model.model) == 8
print("same shapes")
"""
    assert "same shapes" in run_python(code + "\n" + check, cwd=REPO).stdout


def test_site_config_fetches_nothing():
    """Offline build: only plugins that work from local files (no social cards, no privacy downloads, no web fonts)."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # mkdocs tags such as !relative
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=Loader)
    plugins = {next(iter(p)) if isinstance(p, dict) else p for p in config["plugins"]}
    assert plugins <= {"search", "mkdocstrings"}, plugins
    assert config["theme"]["font"] is False
    assert config.get("strict") is True


def _without_network() -> list[str]:
    """A command prefix that runs a process with no network at all (a new, empty network namespace), or [] where
    this machine does not allow one."""
    try:
        ok = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return ["unshare", "-rn"] if ok else []


@pytest.mark.slow
def test_site_builds_strict_without_network(tmp_path):
    """`mkdocs build --strict` (also a step of `make test`) with the network cut off: the site needs nothing online."""
    pytest.importorskip("mkdocs", reason="the [docs] extra is not installed")
    prefix = _without_network()
    argv = [*prefix, sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-3000:]
    for page in ("index.html", "performance/index.html", "api/index.html", "ablation/pareto.png"):
        assert (tmp_path / "site" / page).is_file(), page
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "register_module" in api and "n_div" in api  # the reference was generated from the docstrings


def test_pages_speak_to_users_not_to_our_issue_tracker():
    pages = [README, *(p for p in (REPO / "docs").rglob("*.md") if not p.name.startswith("notes-issue-"))]
    bookkeeping = re.compile(r"\bissue #?\d+|(?<![\w&/])#\d+\b|performance pass", re.I)
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in pages for m in bookkeeping.finditer(p.read_text())]
    assert not found, found
