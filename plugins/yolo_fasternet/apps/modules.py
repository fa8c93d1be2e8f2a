"""``yolo-fasternet modules``: every module registered into the installed Ultralytics, and what a checkpoint needs.

yolo-fasternet modules                          # name, kind, origin distribution, YAML arguments, versions checked
yolo-fasternet modules --checkpoint best.pt     # the plugin distributions a checkpoint records, installed or not
"""

from __future__ import annotations

import importlib.util
import inspect

from ..integration.channel_rules import KINDS, rule_name
from ..integration.missing_plugin import recorded_distributions
from ..integration.parse_model_patch import filled_arguments
from ..integration.plugin_api import REFUSED, register_deferred_entry_points
from ..integration.registration import original_parse_model, registered_modules
from ..integration.registry import CHECKED_ULTRALYTICS, PLUGIN_MODULES
from .arguments import key_value_to_options, plain_description
from .command_errors import CommandError, CommandParser, command


def _shown(params) -> str:
    shown = []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            shown.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            shown.append(f"**{p.name}")
        else:
            shown.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return ", ".join(shown)


def yaml_arguments(cls: type, like: str, with_c1: frozenset[str], with_n: frozenset[str], rule: bool = False) -> str:
    """The constructor's arguments as a YAML row writes them: ``[c2, shortcut=False, ...]`` once parse_model has
    filled in ``c1`` (and ``n``, third) for a ``like`` it does that for, or the input width(s) for a kind that passes
    them; the whole signature otherwise."""
    params = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]]
    if rule:
        return f"({_shown(params)}) as its channel rule passes them"
    if like in KINDS:
        return f"[{_shown(params if like == 'parameter_free' else params[1:])}]"
    if like in with_c1:
        params = params[1:2] + params[3:] if like in with_n else params[1:]
        return f"[{_shown(params)}]"
    return f"({_shown(params)}) as parse_model passes them for {like}"


def kind_column(like: str, channels) -> str:
    """``like C2f`` (a built-in's rules), ``attention`` (a named kind) or ``rule Block.yolo_channels``."""
    if channels is not None:
        return f"rule {rule_name(channels)}"
    return like if like in KINDS else f"like {like}"


def module_rows() -> list[tuple[str, ...]]:
    """One row per registered module: YAML name, kind, origin, YAML arguments, Ultralytics versions checked."""
    import ultralytics
    from ultralytics.nn import tasks

    register_deferred_entry_points()  # plugin packages that were mid-import when yolo-fasternet was loaded
    with_c1, with_n = filled_arguments(original_parse_model(tasks))
    ours = {entry.cls for entry in PLUGIN_MODULES}
    rows = []
    for entry in registered_modules():
        # Ours are tested on both ends of the supported range; any module's like was checked against this install.
        checked = ", ".join(CHECKED_ULTRALYTICS) if entry.cls in ours else ultralytics.__version__
        args = yaml_arguments(entry.cls, entry.like, with_c1, with_n, rule=entry.channels is not None)
        rows.append((entry.cls.__name__, kind_column(entry.like, entry.channels), entry.origin or "-", args, checked))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _print_modules() -> None:
    import ultralytics

    print(f"Ultralytics {ultralytics.__version__}; YAML args are those after c1 (and n) as parse_model fills them")
    print(_table(("name", "kind", "origin", "YAML args", "Ultralytics checked"), module_rows()))
    for line in REFUSED:
        print(f"skipped: {line}")


def _print_checkpoint(path: str) -> int:
    try:
        needed = recorded_distributions(path, strict=True)
    except (FileNotFoundError, ValueError) as e:  # missing, a folder, not a checkpoint, truncated: say so, exit 1
        raise CommandError(f"--checkpoint {e}") from None
    if not needed:
        print(f"{path}: records no plugin distributions (stock modules only, or saved before they were recorded)")
        return 0
    rows = [(package, dist, "yes" if importlib.util.find_spec(package) else "NO") for package, dist in needed.items()]
    print(_table(("import name", "distribution", "installed"), rows))
    return 0 if all(r[2] == "yes" for r in rows) else 1


@command("yolo-fasternet modules")
def main(argv: list[str] | None = None) -> int:
    """Command line: list the registered modules, or the plugin distributions a checkpoint needs (exit 1: missing)."""
    parser = CommandParser(description=plain_description(__doc__))
    parser.add_argument("--checkpoint", help="a .pt file: list the plugin distributions it needs instead")
    args = parser.parse_args(key_value_to_options(argv, parser))
    if args.checkpoint:
        return _print_checkpoint(args.checkpoint)
    _print_modules()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
