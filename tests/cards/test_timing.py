"""cds.cards.timing: a dosage's timing in words for suggestion labels."""

from __future__ import annotations

from typing import Any

import pytest

from cds.cards.timing import how_often, less_than_daily
from tests.facts.fhir_builders import GTS


@pytest.mark.parametrize(
    ("timing", "words"),
    [
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, "once a day"),
        ({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, "twice a day"),
        ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}, "3 times a day"),
        ({"repeat": {"frequency": 1, "period": 4, "periodUnit": "wk"}}, "every 4 weeks"),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "mo"}}, "once a month"),
        ({"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, "every 8 hours"),
        ({"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}, "every 2 days"),
        ({"repeat": {"frequency": 2, "period": 3, "periodUnit": "d"}}, None),
        ({"code": {"coding": [{"system": GTS, "code": "BID"}]}}, "twice a day"),
        ({"code": {"coding": [{"system": GTS, "code": "qhs"}]}}, "at bedtime"),
        ({"code": {"text": "as directed"}}, None),
        (None, None),
    ],
)
def test_timing_in_words(timing: Any, words: str | None) -> None:
    assert how_often(timing) == words


@pytest.mark.parametrize(
    ("timing", "less"),
    [
        ({"repeat": {"frequency": 1, "period": 4, "periodUnit": "wk"}}, True),
        ({"repeat": {"frequency": 1, "period": 2, "periodUnit": "d"}}, True),
        ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, False),
        ({"repeat": {"frequency": 7, "period": 1, "periodUnit": "wk"}}, False),
        ({"code": {"coding": [{"system": GTS, "code": "WK"}]}}, True),
        ({"code": {"coding": [{"system": GTS, "code": "BID"}]}}, False),
    ],
)
def test_less_than_daily(timing: Any, less: bool) -> None:
    assert less_than_daily([{"timing": timing}]) is less
    assert less_than_daily([{"timing": timing}, {"timing": timing}]) is False
