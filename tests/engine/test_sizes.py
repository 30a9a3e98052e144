"""approximate_size: what a cached value keeps alive, nested text included, each object
once, and in time linear in the value."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from cds.engine import approximate_size


@dataclass(frozen=True)
class _Fact:
    display: str
    tags: tuple[str, ...] = ()


def test_text_deep_inside_counts() -> None:
    text = "x" * 100_000
    value = {"outcomes": [(_Fact(display=text),)], "n": 1}
    assert approximate_size(value) >= sys.getsizeof(text) + sys.getsizeof(value)


def test_an_object_held_twice_counts_once() -> None:
    text = "y" * 50_000
    once = approximate_size([text])
    twice = approximate_size([text, text])
    assert twice - once == sys.getsizeof([text, text]) - sys.getsizeof([text])


def test_dataclass_fields_and_containers_all_count() -> None:
    fact = _Fact(display="d" * 1000, tags=("a" * 1000, "b" * 1000))
    assert approximate_size(fact) >= 3000


def test_time_is_linear_in_size() -> None:
    """10x the objects take at most ~15x the time (not quadratic)."""

    def timed(count: int) -> float:
        value = [{"k": str(i), "v": [i, float(i)]} for i in range(count)]
        started = time.perf_counter()
        approximate_size(value)
        return time.perf_counter() - started

    small = min(timed(2_000) for _ in range(3))
    large = min(timed(20_000) for _ in range(3))
    assert large <= 15 * small
