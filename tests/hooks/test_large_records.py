"""Long-stay records: hundreds of orders and complaints are evaluated, not refused.

Regression: a patient with about 70 recognised orders and 70 matching Conditions always
got 503 "retry" (durable-rules joined every exposure with every complaint and overflowed
the session's fact bound); a request that truly cannot be evaluated now gets a permanent
422 naming the reason, and is counted.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from cds.cards import RULE_EXTENSION
from cds.engine import runtime
from tests.hooks.support import (
    TestClient,
    assert_cards_response,
    assert_operation_outcome,
    complaint,
    current_order,
    service_url,
)


def long_stay(request: dict[str, Any], orders: int, complaints: int) -> dict[str, Any]:
    """The restless back call with ``orders`` monthly renewals of amisulpride (the last
    one active) and ``complaints`` notes of the same complaint, a day apart."""
    template_order, template_complaint = current_order(request), complaint(request)
    start = dt.date(2026, 10, 22) - dt.timedelta(days=30 * (orders - 1))
    entries = []
    for index in range(orders):
        order = copy.deepcopy(template_order)
        order["id"] = f"renewal-{index}"
        order["authoredOn"] = (start + dt.timedelta(days=30 * index)).isoformat()
        if index < orders - 1:
            order["status"] = "completed"
            order["dispenseRequest"] = {
                "validityPeriod": {
                    "start": order["authoredOn"],
                    "end": (start + dt.timedelta(days=30 * index + 29)).isoformat(),
                }
            }
        entries.append({"resource": order})
    notes = []
    for index in range(complaints):
        note = copy.deepcopy(template_complaint)
        note["id"] = f"note-{index}"
        note["onsetDateTime"] = (dt.date(2026, 11, 5) + dt.timedelta(days=index % 20)).isoformat()
        notes.append({"resource": note})
    request["prefetch"]["medications"]["entry"] = entries
    request["prefetch"]["conditions"]["entry"] = notes
    return request


@pytest.mark.parametrize(("orders", "complaints"), [(70, 70), (500, 500)])
def test_a_long_stay_record_is_evaluated(
    client: TestClient, request_body: dict[str, Any], orders: int, complaints: int
) -> None:
    """Regression: 70 x 70 was a 503 "retry" forever; 500 x 500 is evaluated too."""
    body = long_stay(request_body, orders, complaints)
    response = client.post(service_url(body), json=body)
    assert response.status_code == 200, response.text
    [card] = assert_cards_response(response)
    # years of continuous therapy: the complaint is new, the draft raises the dose
    assert card["extension"][RULE_EXTENSION] == "dose-review.dose-increase"
    assert "amisulpride" in card["summary"]
    assert "600" in card["detail"]  # the current dose, from the active order


def test_a_request_past_the_engine_bound_is_a_permanent_422_and_counted(
    client: TestClient, request_body: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the engine's bound was reported as 503 with Retry-After, which a
    client retries forever. The bound is lowered here (to 12 facts) so a small request
    reaches it; the real bound is ``MAX_FACTS_PER_SESSION``."""
    monkeypatch.setattr(runtime, "MAX_FACTS_PER_SESSION", 12)
    orders = request_body["prefetch"]["medications"]["entry"]
    for dose in range(10, 20):  # distinct doses: distinct episodes, none merged
        order = copy.deepcopy(orders[0]["resource"])
        order["id"] = f"dose-{dose}"
        order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = dose
        orders.append({"resource": order})
    refused = client.app.state.refused_evaluations  # type: ignore[attr-defined]
    before = refused.total()
    response = client.post(service_url(request_body), json=request_body)
    [issue] = assert_operation_outcome(response, 422)
    assert "Retry-After" not in response.headers
    assert issue["code"] == "too-costly"
    assert "more than 12 facts" in issue["diagnostics"]
    assert refused.total() == before + 1
