"""``yolo-fasternet graft``: derive a model YAML from a stock or user YAML by substituting modules.

    yolo-fasternet graft yolov8.yaml C2f=C2f_Faster -o yolov8-c2f-mine.yaml
    yolo-fasternet graft yolo11n.yaml C3k2=C3k2_Faster           # writes ./yolo11n-c3k2-faster.yaml
    yolo-fasternet graft my-model.yaml C2f=MyBlock -o my-model-myblock.yaml

The source is a path, a stock Ultralytics name (found the way Ultralytics finds it: ``yolo11n.yaml`` reads
``yolo11.yaml``) or a bundled yolo-fasternet name. The command rewrites the text row by row and replaces only the
module field of ``backbone``/``head`` rows, so row order, layer indices, comments, scales and every other key stay
exactly as written; it then checks that the YAML reads back as the source with only those fields changed and that it
builds at every scale, and only then writes a new file (never the source). Ultralytics takes the scale from the
model name you train (``yolo train model=yolo11n-c3k2-faster.yaml``), as for its own YAMLs.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
from pathlib import Path

import torch
import yaml

from ..integration.layer_errors import known_module_names
from ..integration.yaml_lookup import bundled_yaml
from .arguments import key_value_to_options, plain_description
from .command_errors import CommandParser, UsageError, command

LAYER_SECTIONS = ("backbone", "head")  # what parse_model builds, in this order
_TOP_LEVEL_KEY = re.compile(r"([A-Za-z_][\w-]*)\s*:")
_ROW_START = re.compile(r"\s*-\s*\[")
_SCALE_LETTER = re.compile(r"(\d+)([nslmx])(.+)?$")  # Ultralytics' own rule: yolo11n.yaml -> yolo11.yaml
MODULE_FIELD = 2  # [from, repeats, module, args]


class GraftError(UsageError):
    """The graft cannot be made (exit status 2); the one-line message names the file, row, module or scale at fault."""


# ---------------------------------------------------------------------------------------------------------------------
# Finding the source and checking module names


def resolve_source(name: str) -> Path:
    """An existing path, a bundled yolo-fasternet YAML, or a stock Ultralytics YAML (scale letter stripped)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    bundled = bundled_yaml(name)
    if bundled is not None:
        return bundled
    if path.name == name and path.suffix in {".yaml", ".yml"}:
        from ultralytics.utils.checks import check_yaml

        for candidate in dict.fromkeys((name, _SCALE_LETTER.sub(r"\1\3", name))):
            found = check_yaml(candidate, hard=False)
            if found:
                return Path(found)
    raise GraftError(
        f"source YAML '{name}' not found (looked for a file, in yolo-fasternet's cfg/ and in Ultralytics' cfg/models/)"
    )


def _module_namespace() -> dict:
    """The names ``parse_model`` resolves (``ultralytics.nn.tasks`` globals; importing this package registered ours)."""
    from ultralytics.nn import tasks

    return vars(tasks)


def check_target(name: str) -> None:
    """Refuse a substitute that ``parse_model`` could not resolve: ``nn.X``, ``torchvision.ops.X`` or a module class."""
    if name.startswith("nn."):
        if isinstance(getattr(torch.nn, name[3:], None), type):
            return
        pool, bare = dir(torch.nn), name[3:]
    elif name.startswith("torchvision.ops."):
        import torchvision

        if isinstance(getattr(torchvision.ops, name[16:], None), type):
            return
        pool, bare = dir(torchvision.ops), name[16:]
    else:
        pool, bare = known_module_names(_module_namespace()), name
        if bare in pool:
            return
    close = difflib.get_close_matches(bare, pool, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise GraftError(f"'{name}' is not a module Ultralytics can build from a YAML (registered or built-in){hint}")


def parse_substitutions(tokens: list[str]) -> dict[str, str]:
    """``["C2f=C2f_Faster", ...]`` -> ``{"C2f": "C2f_Faster"}``; every target checked to be a known module."""
    subs: dict[str, str] = {}
    for token in tokens:
        old, eq, new = (part.strip() for part in token.partition("="))
        if not eq or not old or not new:
            raise GraftError(f"substitution '{token}' is not OLD=NEW (e.g. C2f=C2f_Faster)")
        if old in subs:
            raise GraftError(f"module '{old}' is substituted twice ({old}={subs[old]} and {token})")
        check_target(new)
        subs[old] = new
    if not subs:
        raise GraftError("no substitution given (e.g. C2f=C2f_Faster)")
    return subs


# ---------------------------------------------------------------------------------------------------------------------
# The text rewrite


def _flow_items(line: str, start: int) -> list[tuple[int, int]]:
    """Spans of the top-level items of the YAML flow list opening at ``line[start] == '['`` (quotes and nesting aware).

    Raises:
        GraftError: If the list does not close on this line.
    """
    spans, depth, quote, item_start = [], 0, None, start + 1
    for i in range(start, len(line)):
        c = line[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                spans.append((item_start, i))
                return spans
        elif c == "," and depth == 1:
            spans.append((item_start, i))
            item_start = i + 1
        elif c == "#" and depth >= 1 and line[i - 1] in " \t":
            break  # a comment before the list closed: not a one-line row
    raise GraftError("unclosed row")


def _rewrite_row(line: str, subs: dict[str, str]) -> tuple[str, str | None]:
    """The row with its module field substituted, and the old module name (None if the row is left as it was)."""
    spans = _flow_items(line, _ROW_START.match(line).end() - 1)
    if len(spans) <= MODULE_FIELD:
        return line, None
    begin, end = spans[MODULE_FIELD]
    field = line[begin:end]
    name = field.strip().strip("'\"")
    if name not in subs:
        return line, None
    return line[:begin] + field.replace(name, subs[name], 1) + line[end:], name


def _module_of(row) -> str | None:
    """The module name of a parsed layer row, or None for anything that is not a ``[from, repeats, module, args]``."""
    ok = isinstance(row, list) and len(row) > MODULE_FIELD and isinstance(row[MODULE_FIELD], str)
    return row[MODULE_FIELD] if ok else None


def graft_text(text: str, subs: dict[str, str], source: str = "source") -> tuple[str, dict[str, list[int]]]:
    """Substitute the module field of every one-line ``backbone``/``head`` row named in ``subs``.

    Returns the new text and, per substituted module, the layer indices (as Ultralytics numbers them) it was at.

    Raises:
        GraftError: If the source is not a model YAML, a substituted module occurs nowhere, or it occurs in a row the
            text rewrite cannot reach (not a one-line ``[from, repeats, module, args]`` list).
    """
    try:
        d_in = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise GraftError(f"{source}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(d_in, dict) or not any(isinstance(d_in.get(s), list) for s in LAYER_SECTIONS):
        raise GraftError(f"{source}: not a model YAML (no backbone or head list)")
    lines = text.splitlines(keepends=True)
    section, position = None, {s: 0 for s in LAYER_SECTIONS}
    found: list[tuple[str, int, str]] = []  # (section, row position, old module)
    for n, line in enumerate(lines):
        key = _TOP_LEVEL_KEY.match(line)
        if key:
            section = key[1]
        elif section in LAYER_SECTIONS and _ROW_START.match(line):
            try:
                lines[n], old = _rewrite_row(line, subs)
            except GraftError as e:
                raise GraftError(f"{source}, line {n + 1}: {e}: {line.strip()}") from None
            if old is not None:
                found.append((section, position[section], old))
            position[section] += 1
    grafted = "".join(lines)
    d_out = yaml.safe_load(grafted)
    rows = [*(d_in.get("backbone") or []), *(d_in.get("head") or [])]
    offset = {"backbone": 0, "head": len(d_in.get("backbone") or [])}
    at: dict[str, list[int]] = {old: [] for old in subs}
    for section, row, old in found:
        at[old].append(offset[section] + row)
    for i, row in enumerate(rows):
        module = _module_of(row)
        if module in subs and i not in at[module]:
            raise GraftError(
                f"{source}: layer {i} ({module}) is not written as a one-line [from, repeats, module, args] "
                "row; write it so, or edit it by hand"
            )
    missing = [old for old, layers in at.items() if not layers]
    if missing:
        present = sorted({str(_module_of(row)) for row in rows} - {"None"})
        raise GraftError(f"{source} has no {', '.join(missing)} row (its modules: {', '.join(present)})")
    expected = copy.deepcopy(d_in)
    for section in LAYER_SECTIONS:
        for row in expected.get(section) or []:
            if _module_of(row) in subs:
                row[MODULE_FIELD] = subs[row[MODULE_FIELD]]
    if d_out != expected:  # the rewrite touched something besides module fields: never write that
        raise GraftError(f"{source}: the rewritten text does not read back as the source with only modules changed")
    return grafted, at


def describe(at: dict[str, list[int]], subs: dict[str, str]) -> str:
    """``C2f -> C2f_Faster at layers 2, 4, 6``."""
    return "; ".join(f"{old} -> {subs[old]} at layers {', '.join(map(str, layers))}" for old, layers in at.items())


def check_builds(text: str, name: str) -> list[str]:
    """Build the layers of the grafted YAML at each of its scales (no forward pass); return the scales built.

    Layers are built on the ``meta`` device (shapes only, so even an x scale takes a fraction of a second); a layer
    that fails there is built again on the CPU, so only a real failure is reported.

    Raises:
        GraftError: Naming the scale and the layer that does not build.
    """
    from ultralytics.nn import tasks

    d = yaml.safe_load(text)
    d["yaml_file"] = name
    scales = list(d.get("scales") or {}) or [""]
    for scale in scales:
        try:
            with torch.device("meta"):
                tasks.parse_model({**copy.deepcopy(d), "scale": scale}, ch=d.get("channels", 3), verbose=False)
        except Exception:
            try:
                tasks.parse_model({**copy.deepcopy(d), "scale": scale}, ch=d.get("channels", 3), verbose=False)
            except Exception as e:
                where = f" at scale '{scale}'" if scale else ""
                message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise GraftError(f"{name}: the grafted YAML does not build{where}: {message}") from e
    return [s for s in scales if s]


def default_output(source_name: str, subs: dict[str, str]) -> Path:
    """``yolo11n.yaml`` + ``C3k2=C3k2_Faster`` -> ``./yolo11n-c3k2-faster.yaml``."""
    suffix = "-".join(new.lower().replace("_", "-").replace(".", "-") for new in subs.values())
    return Path(f"{Path(source_name).stem}-{suffix}.yaml")


def _header(source_name: str, source: Path, at: dict[str, list[int]], subs: dict[str, str]) -> str:
    import ultralytics

    package_root = Path(ultralytics.__file__).resolve().parents[1]
    shown = source.resolve().relative_to(package_root) if source.resolve().is_relative_to(package_root) else source
    origin = source_name if Path(source_name).is_file() else f"{source_name} ({shown})"
    tool = f"`yolo-fasternet graft` (Ultralytics {ultralytics.__version__})"
    return f"# Derived by {tool} from {origin}: {describe(at, subs)}\n"


def graft(source_name: str, tokens: list[str], output: str | None = None, force: bool = False) -> Path:
    """Write the grafted YAML; return its path. Every refusal is a ``GraftError`` with a one-line message."""
    source = resolve_source(source_name)
    subs = parse_substitutions(tokens)
    out = Path(output) if output else default_output(source_name, subs)
    if out.suffix not in {".yaml", ".yml"}:
        raise GraftError(f"output '{out}' must end in .yaml (Ultralytics reads model YAMLs by suffix)")
    if out.exists() and out.resolve() == source.resolve():
        raise GraftError(f"output '{out}' is the source YAML; refusing to overwrite it")
    if out.exists() and not force:
        raise GraftError(f"output '{out}' exists; pass --force to overwrite it")
    try:
        text = source.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise GraftError(f"{source}: not a text file (not UTF-8), so not a model YAML") from None
    grafted, at = graft_text(text, subs, str(source))
    grafted = _header(source_name, source, at, subs) + grafted
    scales = check_builds(grafted, str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(grafted.encode("utf-8"))
    built = f"; builds at scale{'s' if len(scales) > 1 else ''} {', '.join(scales)}" if scales else "; builds"
    print(f"wrote {out}: {describe(at, subs)}{built}")
    return out


@command("yolo-fasternet graft")
def main(argv: list[str] | None = None) -> int:
    """Command line: ``graft SRC OLD=NEW [OLD=NEW ...] [-o OUT] [--force]``; exit 2 with one line on any refusal."""
    parser = CommandParser(description=plain_description(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="model YAML: a path, a stock name (yolov8.yaml, yolo11n.yaml) or a bundled name")
    parser.add_argument("substitutions", nargs="+", metavar="OLD=NEW", help="module to replace = module to put there")
    parser.add_argument("-o", "--output", help="YAML to write (default: ./<source stem>-<new modules>.yaml)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output (never the source)")
    args = parser.parse_args(key_value_to_options(argv, parser))
    out = graft(args.source, args.substitutions, args.output, args.force)
    print(f"train it with the stock CLI: yolo train model={out} data=...  (the scale comes from the model name)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
