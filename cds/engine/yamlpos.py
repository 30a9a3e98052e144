"""YAML loading that remembers where each value came from, for ``file:line:col`` errors.

PyYAML's safe loader builds plain Python data; composing the node tree first lets us keep
the start mark of every mapping key and sequence item, keyed by its path of keys and
indexes, so a pydantic error location maps back to the line a rule author wrote.

Files are parsed with libyaml (``CSafeLoader``) when PyYAML has it: the pure-Python parser
took about a quarter of a second of every start-up over the bundled rules. The two build
the same data and marks from a valid file but word some errors differently, so a file
libyaml refuses is parsed again by the pure-Python loader, whose message is the one
reported: a rule author sees the same ``file:line:col`` either way.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cds.errors import Problem, RulesError

__all__ = ["Loc", "LocatedYaml", "load_located_yaml", "safe_load_yaml"]

Loc = tuple[str | int, ...]

_Loader = yaml.SafeLoader | yaml.CSafeLoader

_FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
"""libyaml's safe loader, when PyYAML was built with it (the wheels are)."""


@dataclass(frozen=True)
class LocatedYaml:
    """Parsed YAML data plus the line and column of every path within it."""

    path: Path
    data: Any
    marks: dict[Loc, tuple[int, int]]

    def where(self, loc: Loc) -> str:
        """``file:line:col`` of the deepest known position along ``loc``."""
        for end in range(len(loc), -1, -1):
            mark = self.marks.get(tuple(loc[:end]))
            if mark is not None:
                return f"{self.path}:{mark[0]}:{mark[1]}"
        return f"{self.path}:1:1"

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(self.where(loc), message)


def load_located_yaml(path: Path) -> LocatedYaml:
    """Read one YAML file; a syntax error becomes a located ``RulesError``."""
    text = path.read_text(encoding="utf-8")
    if _FAST_LOADER is not None:
        with contextlib.suppress(yaml.YAMLError):  # reported by the pure-Python loader below
            return _located(path, text, _FAST_LOADER)
    try:
        return _located(path, text, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"
        raise RulesError([Problem(where, f"YAML syntax: {exc.problem}")]) from exc


def safe_load_yaml(text: str) -> Any:
    """``yaml.safe_load`` through libyaml when present; errors as the pure-Python loader
    words them."""
    if _FAST_LOADER is not None:
        with contextlib.suppress(yaml.YAMLError):
            return yaml.load(text, Loader=_FAST_LOADER)
    return yaml.safe_load(text)


def _located(path: Path, text: str, loader_class: type[_Loader]) -> LocatedYaml:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        marks: dict[Loc, tuple[int, int]] = {}
        data = _convert(loader, node, (), marks, str(path)) if node is not None else None
    finally:
        loader.dispose()
    return LocatedYaml(path, data, marks)


def _convert(
    loader: _Loader,
    node: yaml.Node,
    loc: Loc,
    marks: dict[Loc, tuple[int, int]],
    source: str,
) -> Any:
    marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            marks[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                line, column = marks[(*loc, key)]
                raise RulesError([Problem(f"{source}:{line}:{column}", f"duplicate key {key!r}")])
            result[key] = _convert(loader, value_node, (*loc, key), marks, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, (*loc, i), marks, source) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
