"""The one walk over parsed JSON that the request layer (non-finite numbers) and FHIR
validation (numbers where a date belongs) both use: paths, order, depth bound, cost."""

from __future__ import annotations

import gc
import math
import time
from typing import Any

from cds.facts import MAX_JSON_DEPTH, PathHit, first_hit


def _is_nan(_key: str, value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _never(_key: str, _value: Any) -> bool:
    return False


def _nested(depth: int, leaf: Any) -> Any:
    """``depth`` objects one inside the other, ``leaf`` at the bottom under key "x"."""
    value: Any = leaf
    for _ in range(depth):
        value = {"x": value}
    return value


def test_the_path_names_keys_and_list_indexes_from_the_root() -> None:
    body = {"a": [1, {"b": [2.0, math.nan]}], "c": "text"}
    assert first_hit(body, _is_nan) == PathHit("a.1.b.1")


def test_the_root_itself_is_the_empty_path() -> None:
    assert first_hit(math.nan, _is_nan) == PathHit("")


def test_nothing_refused_is_none() -> None:
    assert first_hit({"a": [1, 2.5, {"b": None}], "c": "x"}, _is_nan) is None


def test_the_predicate_sees_each_elements_own_key() -> None:
    seen: list[str] = []

    def record(key: str, _value: Any) -> bool:
        seen.append(key)
        return False

    first_hit({"a": {"b": 1}, "c": [True]}, record)
    assert sorted(seen) == ["", "0", "a", "b", "c"]


def test_a_refused_object_is_named_and_not_entered() -> None:
    def is_period(key: str, _value: Any) -> bool:
        return key == "period"

    assert first_hit({"x": {"period": {"start": math.nan}}}, is_period) == PathHit("x.period")


def test_nesting_up_to_the_bound_is_walked() -> None:
    assert first_hit(_nested(MAX_JSON_DEPTH, math.nan), _is_nan) == PathHit(
        ".".join(["x"] * MAX_JSON_DEPTH)
    )


def test_nesting_past_the_bound_stops_with_a_too_deep_hit() -> None:
    hit = first_hit(_nested(MAX_JSON_DEPTH + 50, 1), _never)
    assert hit == PathHit(".".join(["x"] * MAX_JSON_DEPTH), too_deep=True)


def test_nesting_far_past_the_recursion_limit_neither_crashes_nor_hangs() -> None:
    hit = first_hit(_nested(200_000, math.nan), _is_nan, max_depth=300_000)
    assert hit is not None
    assert hit.path.count("x") == 200_000


def _ratio(small: Any, large: Any, max_depth: int = MAX_JSON_DEPTH) -> float:
    """How much longer the 10x larger body takes: each sample walks the small body 10
    times and the large one once (the same work if linear, so noise falls alike on
    both), best of 5 with the collector paused (its passes are not the walk's)."""

    def best(body: Any, times: int) -> float:
        fastest = math.inf
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(times):
                first_hit(body, _never, max_depth=max_depth)
            fastest = min(fastest, time.perf_counter() - started)
        return fastest

    gc.collect()
    gc.disable()
    try:
        return 10 * best(large, 1) / best(small, 10)
    finally:
        gc.enable()


def test_a_wide_body_costs_time_linear_in_its_size() -> None:
    def wide(n: int) -> dict[str, Any]:
        return {"entry": [{"resource": {"id": str(i), "value": [i, 1.5]}} for i in range(n)]}

    assert _ratio(wide(2_000), wide(20_000)) <= 15


def test_a_deep_body_costs_time_linear_in_its_depth() -> None:
    """Paths are kept as links to the parent's, not as strings that grow with depth."""
    assert _ratio(_nested(5_000, 1), _nested(50_000, 1), max_depth=100_000) <= 15
