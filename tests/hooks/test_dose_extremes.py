"""Numbers at the edges of a dose: the call stays a 200 with a card, and the process
survives (the rule engine is C code shared by every request)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from tests.hooks.support import EXAMPLE, TestClient, assert_cards_response, draft_order, service_url


def _dosage(request: dict[str, Any]) -> dict[str, Any]:
    dosage: dict[str, Any] = draft_order(request)["dosageInstruction"][0]
    return dosage


@pytest.mark.parametrize(
    "change",
    [
        {
            "asNeededBoolean": True,
            "maxDosePerPeriod": {
                "numerator": {"value": 800, "unit": "mg"},
                "denominator": {"value": 0, "unit": "d"},
            },
        },
        {"timing": {"repeat": {"frequency": 2, "period": 0, "periodUnit": "d"}}},
        {"timing": {"repeat": {"frequency": 0, "period": 1, "periodUnit": "d"}}},
        {"doseAndRate": [{"doseQuantity": {"value": 0, "unit": "mg"}}]},
        {"doseAndRate": [{"doseQuantity": {"value": 1e-300, "unit": "mg"}}]},
    ],
    ids=["per-zero-days", "period-zero", "frequency-zero", "dose-zero", "dose-denormal"],
)
def test_a_dose_that_cannot_be_computed_is_unknown_not_a_500(
    client: TestClient, request_body: dict[str, Any], change: dict[str, Any]
) -> None:
    """Req 74, 76: a zero period or a zero denominator is an unknown dose; the
    complaint and the drug still give the card."""
    _dosage(request_body).update(change)

    (card,) = assert_cards_response(client.post(service_url(request_body), json=request_body))

    assert "amisulpride" in card["summary"]


_CALLS = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from cds.app import create_app
from cds.settings import Settings

request = json.loads(open(sys.argv[1], encoding="utf-8").read())
with TestClient(create_app(Settings()), raise_server_exceptions=False) as client:
    for value in json.loads(sys.argv[2]):
        entry = request["context"]["draftOrders"]["entry"][0]["resource"]
        entry["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = value
        response = client.post("/cds-services/restless-order-select", json=request)
        print(json.dumps({"value": value, "status": response.status_code}), flush=True)
"""


def test_huge_doses_neither_crash_the_process_nor_fail_the_call() -> None:
    """Req 74, 76: doses of 1e16 mg and more (typing slips, unit mix-ups) reach the rule
    engine as JSON numbers in exponent form. Each call must stay a 200 and the process
    must live: run in a child process so a crash fails this test, not the suite."""
    values = [1e15, 1e16, 1e17, 1e20, 1e300, 1e16, 1e20]
    result = subprocess.run(
        [sys.executable, "-c", _CALLS, str(EXAMPLES / EXAMPLE), json.dumps(values)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    answered = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, f"exit {result.returncode} after {answered}"
    assert [a["status"] for a in answered] == [200] * len(values), answered
