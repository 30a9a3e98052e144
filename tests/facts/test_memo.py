"""ChartMemo's keys and bounds: a reading is found only for the same patient's identical
chart under the same rules, day, service and language."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cds.errors import InputIssue
from cds.facts import ChartMemo, ChartReading, Extraction

TODAY = dt.date(2026, 11, 20)
CHART: dict[str, Any] = {"medications": {"resourceType": "Bundle", "entry": []}}


def _key(memo: ChartMemo, prefetch: Any = CHART, **changes: Any) -> bytes | None:
    scope = {"service": "s", "patient_id": "p-1", "today": TODAY, "language": None}
    return memo.key(prefetch, **{**scope, **changes})


def test_keys_differ_by_everything_a_reading_depends_on() -> None:
    memo = ChartMemo("v1")
    keys = {
        _key(memo),
        _key(memo, patient_id="p-2"),
        _key(memo, today=TODAY + dt.timedelta(days=1)),
        _key(memo, service="other"),
        _key(memo, language="es"),
        _key(memo, {"medications": {"resourceType": "Bundle", "entry": [{}]}}),
        _key(ChartMemo("v2")),
    }
    assert len(keys) == 7
    assert _key(memo) == _key(ChartMemo("v1"))


def test_fields_cannot_run_into_each_other() -> None:
    memo = ChartMemo("v1")
    assert _key(memo, service="a", patient_id="b\0c") != _key(memo, service="a\0b", patient_id="c")


def test_a_chart_without_exact_json_has_no_key() -> None:
    assert _key(ChartMemo("v1"), {"medications": {1, 2}}) is None


def test_the_memo_is_bounded_least_recently_used_out() -> None:
    memo = ChartMemo("v1", max_entries=4)
    keys = [_key(memo, patient_id=f"p-{i}") for i in range(10)]
    for key in keys:
        memo.put(key, ChartReading(Extraction(), {}))
        memo.get(keys[0])  # kept in use
    assert len(memo) == 4
    assert memo.get(keys[0]) is not None
    assert memo.get(keys[1]) is None
    assert memo.get(keys[-1]) is not None


def test_a_chart_naming_many_medications_is_not_kept() -> None:
    memo = ChartMemo("v1")
    many = {f"Medication/m{i}": {"resourceType": "Medication"} for i in range(101)}
    memo.put(_key(memo), ChartReading(Extraction(), many))
    assert memo.get(_key(memo)) is None


def test_a_reading_with_thousands_of_issues_is_not_kept() -> None:
    memo = ChartMemo("v1")
    issues = [InputIssue(f"prefetch.medications.entry[{i}]", "skipped") for i in range(2_001)]
    memo.put(_key(memo), ChartReading(Extraction(issues=issues), {}))
    assert memo.get(_key(memo)) is None
    memo.put(_key(memo), ChartReading(Extraction(issues=issues[:100]), {}))
    assert memo.get(_key(memo)) is not None
