"""Many patients at once against a real ``restless-cds serve`` process: the per-resource
fact cache, the engine-result reuse, the suppression cache and the batched card writer
are shared by every call of a worker, so each answer is checked against its own patient
(card or none, the draft's dose, the complaint quoted, a card uuid of its own)."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import for_patient, load_example
from tests.serving import Served, serve

SERVICE = "/cds-services/restless-order-select"
PATIENTS = 50
ROUNDS = 3


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    env = {
        "RESTLESS_CDS_DATABASE_PATH": str(tmp_path / "feedback.db"),
        "RESTLESS_CDS_RELOAD_INTERVAL_SECONDS": "0",
    }
    with serve(tmp_path, env=env) as served:
        yield served


def _complaint(i: int) -> str:
    return f"Itching and ant-crawling sensation in the back when lying down, patient {i}"


def _has_complaint(i: int) -> bool:
    return i % 3 != 0


def _daily_dose(i: int) -> int:
    return 2 * (400 + 10 * (i % 7))  # twice daily in the example


def _request(i: int) -> dict[str, Any]:
    """Patient ``i``'s record: the example's resources, the same hook instance for all."""
    body = for_patient(copy.deepcopy(load_example("restless-back-amisulpride.json")), f"pt-{i}")
    body["hookInstance"] = "one-instance-for-every-patient"
    body["prefetch"]["observations"] = None  # labs looked for, none: no FHIR server call
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 400 + 10 * (i % 7)
    conditions = body["prefetch"]["conditions"]["entry"]
    if _has_complaint(i):
        conditions[0]["resource"]["code"]["text"] = _complaint(i)
    else:
        body["prefetch"]["conditions"]["entry"] = []
    return body


def _check(i: int, response: httpx.Response) -> str | None:
    """Patient ``i``'s card uuid; fails on anything meant for another patient."""
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    if not _has_complaint(i):
        assert cards == [], f"patient {i} has no complaint"
        return None
    [card] = cards
    assert f"this order {_daily_dose(i)} mg/day" in card["detail"], (i, card["detail"])
    assert f'patient {i}"' in card["detail"], (i, card["detail"])
    uuid: str = card["uuid"]
    return uuid


async def _round(url: str) -> list[str | None]:
    limits = httpx.Limits(max_connections=PATIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        order = list(range(PATIENTS))[::-1]  # a different order from the first round
        responses = await asyncio.gather(*(client.post(SERVICE, json=_request(i)) for i in order))
    found = dict(zip(order, responses, strict=True))
    return [_check(i, found[i]) for i in range(PATIENTS)]


def test_concurrent_calls_for_many_patients_each_get_their_own_answer(
    server: Served, tmp_path: Path
) -> None:
    rounds = [asyncio.run(_round(server.url)) for _ in range(ROUNDS)]
    first = rounds[0]
    issued = [uuid for uuid in first if uuid is not None]
    assert len(set(issued)) == len(issued) == sum(map(_has_complaint, range(PATIENTS)))
    assert all(later == first for later in rounds[1:])  # same patient, same instance
    deadline = time.monotonic() + 15
    while True:
        with sqlite3.connect(tmp_path / "feedback.db") as connection:
            rows = connection.execute("SELECT card_uuid FROM issued_cards").fetchall()
        if len(rows) >= len(issued) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(row[0] for row in rows) == sorted(issued)  # one record each, no repeats
