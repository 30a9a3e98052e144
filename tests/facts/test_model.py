"""Fact model helpers: FHIR dates as epoch days, facts as flat engine dicts."""

from __future__ import annotations

import datetime as dt

import pytest

from cds.facts import FACT_SCHEMA, ComplaintFact, FindingFact, MedicationFact, epoch_day, to_engine

NOV_5 = (dt.date(2026, 11, 5) - dt.date(1970, 1, 1)).days


@pytest.mark.parametrize(
    "value",
    [
        dt.date(2026, 11, 5),
        dt.datetime(2026, 11, 5, 23, 59),
        dt.datetime(2026, 11, 5, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=10))),
        "2026-11-05",
        "2026-11-05T08:00:00Z",
    ],
)
def test_epoch_day(value: dt.date | str) -> None:
    assert epoch_day(value) == NOV_5


def test_epoch_day_of_the_epoch_is_zero() -> None:
    assert epoch_day("1970-01-01") == 0


@pytest.mark.parametrize("value", [None, "", "yesterday", "2026-13-40"])
def test_epoch_day_unreadable(value: str | None) -> None:
    assert epoch_day(value) is None


@pytest.mark.parametrize(
    ("value", "start"),
    [("2026-11", dt.date(2026, 11, 1)), ("2026", dt.date(2026, 1, 1))],
)
def test_epoch_day_of_partial_date_takes_its_start(value: str, start: dt.date) -> None:
    """Regression: the docstring promises "partial dates take their start", but a FHIR partial
    date (kept as a string by fhir.resources) gives None: onsets and order starts written
    as "2026-11" are lost and the temporal-link rule cannot fire."""
    assert epoch_day(value) == epoch_day(start)


def test_to_engine_flattens_and_drops_none() -> None:
    fact = MedicationFact(
        ingredient="amisulpride",
        drug_class="antipsychotic",
        subclass="atypical (benzamide)",
        provoking=True,
        status="active",
        draft=False,
        current=True,
        recognised_by="rxnorm-ingredient",
        display="amisulpride 200 mg tablet",
        source="MedicationRequest/a",
        mg_per_day=None,
        start_day=20748,
        end_day=None,
    )
    engine = to_engine(fact)
    assert engine["fact"] == "medication"
    assert engine["start_day"] == 20748
    assert engine["current"] is True
    assert "mg_per_day" not in engine
    assert "end_day" not in engine
    assert to_engine(
        FindingFact("akathisia", "Akathisia", "unspecified", "akathisia", "Condition/c")
    ) == {
        "fact": "finding",
        "category": "akathisia",
        "concept": "Akathisia",
        "region": "unspecified",
        "display": "akathisia",
        "source": "Condition/c",
        "possible": False,  # verificationStatus provisional / differential
    }


def test_fact_schema_matches_the_dataclasses() -> None:
    assert set(FACT_SCHEMA) == {"medication", "complaint", "finding", "lab", "labs_read"}
    assert FACT_SCHEMA["lab"]["value"] is float
    assert FACT_SCHEMA["lab"]["age_days"] is int
    assert FACT_SCHEMA["medication"]["mg_per_day"] is float
    assert FACT_SCHEMA["medication"]["provoking"] is bool
    assert FACT_SCHEMA["complaint"]["onset_day"] is int
    assert set(FACT_SCHEMA["complaint"]) == set(ComplaintFact.__dataclass_fields__)
