"""Teach Ultralytics' ``parse_model`` the plugin modules without copying it.

Ultralytics decides how a YAML row is scaled by set membership inside ``parse_model`` (``m in base_modules``,
``m in repeat_modules``; inline set literals in 8.3.x, ``frozenset({...})`` in 8.4.x) and by a few identity tests
(``m is C3k2``, ``m is not Classify``). Those sets are built from names on every call and cannot be extended from
outside. So we read ``parse_model``'s own source from the installed Ultralytics, add each plugin class next to its
``like`` class in every such set and identity test, and compile the result into ``ultralytics.nn.tasks``'s
namespace. Nothing else in the function changes, line numbers are kept for tracebacks, and stock modules are
untouched. If the source no longer has the shape we rely on, registration raises ``RegistrationError`` naming the
Ultralytics version instead of building silently unscaled models.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Mapping
from types import ModuleType

from torch import nn

# ``m is C3k2`` -> ``m in (C3k2, <plugins like C3k2>)``; ``m is not Classify`` -> ``m not in (Classify, ...)``
_IDENTITY_TO_MEMBERSHIP = {ast.Is: ast.In, ast.IsNot: ast.NotIn}


class RegistrationError(RuntimeError):
    """The installed Ultralytics does not have the shape yolo-fasternet registers into."""


class _AddPluginsNextToLikes(ast.NodeTransformer):
    """Add plugin names to set displays and ``is`` tests that name their ``like`` class."""

    def __init__(self, plugins_by_like: Mapping[str, list[str]]):
        self.plugins_by_like = plugins_by_like
        self.likes_seen: set[str] = set()

    def visit_Set(self, node: ast.Set) -> ast.Set:  # noqa: N802 - ast.NodeTransformer naming
        self.generic_visit(node)
        names = [e.id for e in node.elts if isinstance(e, ast.Name)]
        for like in names:
            if like in self.plugins_by_like:
                self.likes_seen.add(like)
                node.elts += [ast.Name(p, ast.Load()) for p in self.plugins_by_like[like] if p not in names]
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        target = node.comparators[0] if len(node.comparators) == 1 else None
        op = type(node.ops[0])
        if op in _IDENTITY_TO_MEMBERSHIP and isinstance(target, ast.Name) and target.id in self.plugins_by_like:
            self.likes_seen.add(target.id)
            members = [target] + [ast.Name(p, ast.Load()) for p in self.plugins_by_like[target.id]]
            return ast.Compare(node.left, [_IDENTITY_TO_MEMBERSHIP[op]()], [ast.Tuple(members, ast.Load())])
        return node


RULES_NAME = "_yolo_fasternet_channel_rules"  # the dict, in ultralytics.nn.tasks, of classes with a channel rule
_RULE_BRANCH = f"""
if m in {RULES_NAME}:
    c2, args = {RULES_NAME}[m](i, f, ch, args, width, max_channels)
"""


def _is_default_branch(body: list) -> bool:
    """Whether ``body`` is exactly ``c2 = ch[f]`` (parse_model's branch for modules it does not know)."""
    if len(body) != 1 or not isinstance(body[0], ast.Assign):
        return False
    return ast.unparse(body[0]) == "c2 = ch[f]"


def _route_rule_modules(func: ast.FunctionDef) -> bool:
    """Put the rule branch in front of parse_model's module chain (``if m in base_modules: ... else: c2 = ch[f]``).

    Returns False when no such chain exists (then nothing changed).
    """
    for parent in ast.walk(func):
        for field in ("body", "orelse"):
            statements = getattr(parent, field, None)
            if not isinstance(statements, list):
                continue
            for position, node in enumerate(statements):
                if not isinstance(node, ast.If) or isinstance(parent, ast.If) and field == "orelse":
                    continue
                tail = node
                while len(tail.orelse) == 1 and isinstance(tail.orelse[0], ast.If):
                    tail = tail.orelse[0]
                if _is_default_branch(tail.orelse):
                    branch = ast.parse(_RULE_BRANCH).body[0]
                    for new in ast.walk(branch):  # on the chain's first line, for tracebacks
                        ast.copy_location(new, node)
                    branch.orelse = [node]
                    statements[position] = branch
                    return True
    return False


def _source_tree(parse_model: Callable) -> ast.Module | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(parse_model)))
    except (OSError, TypeError):
        return None


def special_names(parse_model: Callable, namespace: Mapping[str, object]) -> frozenset[str]:
    """The classes ``parse_model`` treats specially: named in a set display or an ``is``/``is not`` test.

    These are the values ``like`` can take; a plugin registered like one of them is treated exactly as it is. Only
    ``torch.nn.Module`` subclasses in ``namespace`` (``ultralytics.nn.tasks``) count. Empty when the source cannot be
    read (``patched_parse_model`` then says why).
    """
    tree = _source_tree(parse_model)
    if tree is None:
        return frozenset()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Set):
            names.update(e.id for e in node.elts if isinstance(e, ast.Name))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in _IDENTITY_TO_MEMBERSHIP:
            names.update(c.id for c in node.comparators[:1] if isinstance(c, ast.Name))
    return frozenset(n for n in names if isinstance(namespace.get(n), type) and issubclass(namespace[n], nn.Module))


def patched_parse_model(
    parse_model: Callable,
    tasks: ModuleType,
    plugins_by_like: Mapping[str, list[str]],
    version: str,
    with_rules: bool = False,
) -> Callable:
    """Return ``parse_model`` recompiled so each plugin class is scaled like its ``like`` class.

    With ``with_rules``, a class found in the dict ``tasks.<RULES_NAME>`` (class -> ``channel_rules.AppliedRule``)
    gets its ``c2`` and arguments from that rule, ahead of every built-in branch.
    """
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
    missing = sorted(set(plugins_by_like) - rewriter.likes_seen)
    if missing:
        raise RegistrationError(
            f"Ultralytics {version} changed parse_model: no scaling set or identity test names {missing}, so "
            "yolo-fasternet cannot scale its modules like them. Install a supported Ultralytics "
            "(see yolo_fasternet.integration.registry)."
        )
    if with_rules and not _route_rule_modules(func):
        raise RegistrationError(
            f"Ultralytics {version} changed parse_model: no module branch ending in 'else: c2 = ch[f]' was found, so "
            "yolo-fasternet cannot apply channel rules (kinds). Install a supported Ultralytics."
        )
    func.decorator_list = []
    ast.increment_lineno(tree, parse_model.__code__.co_firstlineno - 1)
    ast.fix_missing_locations(tree)
    scope: dict = {}
    exec(compile(tree, filename, "exec"), tasks.__dict__, scope)  # noqa: S102 - Ultralytics' own source, rewritten
    return scope["parse_model"]


def filled_arguments(parse_model: Callable) -> tuple[frozenset[str], frozenset[str]]:
    """Which built-ins get ``c1`` filled in (the set naming ``Conv``) and which also get ``n`` (naming ``C2f`` only).

    For listing a module's YAML arguments: a row ``[c2, ...]`` becomes ``(c1, c2, ...)`` for the first group and
    ``(c1, c2, n, ...)`` for the second. Empty sets where the source cannot be read.
    """
    tree = _source_tree(parse_model)
    if tree is None:
        return frozenset(), frozenset()
    with_c1, with_n = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Set):
            names = {e.id for e in node.elts if isinstance(e, ast.Name)}
            if "Conv" in names:
                with_c1 |= names
            elif "C2f" in names:
                with_n |= names
    return frozenset(with_c1), frozenset(with_n)
