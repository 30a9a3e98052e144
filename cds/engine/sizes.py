"""How many bytes a cached value keeps alive: what lets a cache bound itself by memory,
not only by entries (one entry may hold a 100,000-character complaint text).

Walks plain data (dicts, lists, tuples, sets, strings, numbers) and dataclass instances,
counting each object once with ``sys.getsizeof``; anything else counts its own size only.
Objects shared with other entries (interned strings, small ints) are counted in each, so
the figure is an upper bound, which is what a bound needs. Linear in the value's size.
"""

from __future__ import annotations

import dataclasses
import sys

__all__ = ["approximate_size"]

_ATOMS = (str, bytes, int, float, bool, type(None))


def approximate_size(value: object) -> int:
    """Bytes held by ``value`` and what it contains (each object once)."""
    seen: set[int] = set()
    stack = [value]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, _ATOMS):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            if hasattr(item, "__dict__"):
                total += sys.getsizeof(item.__dict__)
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return total
