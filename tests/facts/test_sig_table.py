"""Sig strings as prescribers write them, with the mg/day each one states (or ``unknown``
where a careful reader could not be sure): ``data/sig_table.tsv``, 160+ rows.

The measure the README quotes: how many are read right, how many are left unknown, and
how many are misread. A misread (a number where the table says unknown, or the wrong
number) is the failure that matters: it must be zero.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cds.facts.sig import read_sig

TABLE = Path(__file__).parent / "data" / "sig_table.tsv"


def _rows() -> list[tuple[str, float | None, float | None]]:
    with TABLE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [
        (
            row["sig"],
            float(row["strength_mg"]) if row["strength_mg"] else None,
            None if row["expected_mg_per_day"] == "unknown" else float(row["expected_mg_per_day"]),
        )
        for row in rows
    ]


ROWS = _rows()


def _outcome(sig: str, strength: float | None, expected: float | None) -> str:
    found = read_sig(sig, strength)
    if found is None:
        return "unknown" if expected is None else "left unknown"
    if expected is not None and found.mg_per_day == pytest.approx(expected, abs=0.001):
        return "read"
    return "misread"


def test_the_table_is_large_and_varied() -> None:
    assert len(ROWS) >= 150
    assert sum(expected is None for _, _, expected in ROWS) >= 30
    assert sum(strength is not None for _, strength, _ in ROWS) >= 25


def test_no_sig_is_misread() -> None:
    misread = [sig for sig, s, e in ROWS if _outcome(sig, s, e) == "misread"]
    assert misread == []


def test_read_rate() -> None:
    """The figure in the README: of the sigs that state a dose, how many are read."""
    stated = [(sig, s, e) for sig, s, e in ROWS if e is not None]
    read = [sig for sig, s, e in stated if _outcome(sig, s, e) == "read"]
    left = [sig for sig, s, e in stated if _outcome(sig, s, e) == "left unknown"]
    print(f"sig table: {len(read)} read, {len(left)} left unknown of {len(stated)}; 0 misread")
    assert len(read) / len(stated) >= 0.95, left
