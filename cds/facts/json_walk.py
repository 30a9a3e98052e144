"""One walk over parsed JSON that finds the first element a predicate refuses, by path.

The request layer looks for numbers JSON cannot hold (NaN, infinities) and validation for
numbers where FHIR wants a date string; both need the path of what they found, so an error
can name the field. The walk is iterative (no recursion limit to reach), visits each
element once and keeps each element's path as a link to its parent's, so its cost is
linear in the body however deep or wide it is; the path is spelled out only for the hit.
Nesting past ``MAX_DEPTH`` stops the walk with a hit of its own: the parsers in front
already refuse JSON nested past ~250 levels, so only a caller's hand-built data gets there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["MAX_DEPTH", "PathHit", "first_hit"]

MAX_DEPTH = 256
"""Nesting the walk follows; orjson writes at most 254 levels and pydantic reads 200."""

_Trail: TypeAlias = "tuple[str, _Trail] | None"
"""A path as a linked list from the element up to the root: (key, parent's trail)."""


@dataclass(frozen=True)
class PathHit:
    """Where the walk stopped: ``path`` joins the keys and list indexes from the root
    with dots ("" is the root itself); ``too_deep`` when nesting, not the predicate,
    stopped it."""

    path: str
    too_deep: bool = False


def first_hit(
    value: Any, refused: Callable[[str, Any], bool], *, max_depth: int = MAX_DEPTH
) -> PathHit | None:
    """The first element (depth first, last key first) for which ``refused(key, element)``
    holds, ``key`` being its own name ("" for the root, a list index as digits); ``None``
    when there is none. Objects and lists are entered only when not refused."""
    stack: list[tuple[_Trail, int, Any]] = [(None, 0, value)]
    while stack:
        trail, depth, item = stack.pop()
        if refused(trail[0] if trail else "", item):
            return PathHit(_spelled(trail))
        if isinstance(item, Mapping | list) and depth >= max_depth and item:
            return PathHit(_spelled(trail), too_deep=True)
        if isinstance(item, Mapping):
            stack.extend(((str(k), trail), depth + 1, v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend(((str(i), trail), depth + 1, v) for i, v in enumerate(item))
    return None


def _spelled(trail: _Trail) -> str:
    keys: list[str] = []
    while trail is not None:
        keys.append(trail[0])
        trail = trail[1]
    return ".".join(reversed(keys))
