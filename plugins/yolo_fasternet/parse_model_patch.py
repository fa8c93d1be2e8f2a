"""Teach Ultralytics' ``parse_model`` the plugin modules without copying it.

Ultralytics decides how a YAML row is scaled by set membership inside ``parse_model`` (``m in base_modules``,
``m in repeat_modules``; inline set literals in 8.3.x, ``frozenset({...})`` in 8.4.x) and by a few identity tests
(``m is C3k2``). Those sets are built from names on every call and cannot be extended from outside. So we read
``parse_model``'s own source from the installed Ultralytics, add each plugin class next to its ``like`` class in
every such set and identity test, and compile the result into ``ultralytics.nn.tasks``'s namespace. Nothing else
in the function changes, line numbers are kept for tracebacks, and stock modules are untouched. If the source no
longer has the shape we rely on, registration raises ``RegistrationError`` naming the Ultralytics version instead
of building silently unscaled models.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Mapping
from types import ModuleType


class RegistrationError(RuntimeError):
    """The installed Ultralytics does not have the shape yolo-fasternet registers into."""


class _AddPluginsNextToLikes(ast.NodeTransformer):
    """Add plugin names to set displays and ``is`` tests that name their ``like`` class."""

    def __init__(self, plugins_by_like: Mapping[str, list[str]]):
        self.plugins_by_like = plugins_by_like
        self.likes_seen_in_sets: set[str] = set()

    def visit_Set(self, node: ast.Set) -> ast.Set:  # noqa: N802 - ast.NodeTransformer naming
        self.generic_visit(node)
        names = [e.id for e in node.elts if isinstance(e, ast.Name)]
        for like in names:
            if like in self.plugins_by_like:
                self.likes_seen_in_sets.add(like)
                node.elts += [ast.Name(p, ast.Load()) for p in self.plugins_by_like[like] if p not in names]
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        target = node.comparators[0] if len(node.comparators) == 1 else None
        if isinstance(node.ops[0], ast.Is) and isinstance(target, ast.Name) and target.id in self.plugins_by_like:
            members = [target] + [ast.Name(p, ast.Load()) for p in self.plugins_by_like[target.id]]
            return ast.Compare(node.left, [ast.In()], [ast.Tuple(members, ast.Load())])
        return node


def patched_parse_model(
    parse_model: Callable, tasks: ModuleType, plugins_by_like: Mapping[str, list[str]], version: str
) -> Callable:
    """Return ``parse_model`` recompiled so each plugin class is scaled like its ``like`` class."""
    try:
        source = textwrap.dedent(inspect.getsource(parse_model))
        filename = inspect.getsourcefile(parse_model) or "<parse_model>"
    except (OSError, TypeError) as e:
        raise RegistrationError(
            f"yolo-fasternet cannot read the source of parse_model in Ultralytics {version} ({e}); "
            "it needs a regular (source) install of ultralytics"
        ) from e
    tree = ast.parse(source)
    func = tree.body[0]
    if not isinstance(func, ast.FunctionDef) or func.name != "parse_model":
        raise RegistrationError(f"Ultralytics {version}: parse_model's source is not a plain function definition")
    rewriter = _AddPluginsNextToLikes(plugins_by_like)
    rewriter.visit(func)
    missing = sorted(set(plugins_by_like) - rewriter.likes_seen_in_sets)
    if missing:
        raise RegistrationError(
            f"Ultralytics {version} changed parse_model: no scaling set names {missing}, so yolo-fasternet "
            "cannot scale its modules like them. Install a supported Ultralytics (see yolo_fasternet.registry)."
        )
    func.decorator_list = []
    ast.increment_lineno(tree, parse_model.__code__.co_firstlineno - 1)
    ast.fix_missing_locations(tree)
    scope: dict = {}
    exec(compile(tree, filename, "exec"), tasks.__dict__, scope)  # noqa: S102 - Ultralytics' own source, rewritten
    return scope["parse_model"]
