"""Non-finite numbers in a hook request are refused by name (HTTP 400).

Regression: ``NaN`` and ``1e999`` in a draft order's dose came back as JSON ``null``
inside a suggestion (the parser reads them; JSON has no such numbers).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.hooks.support import (
    TestClient,
    assert_cards_response,
    assert_no_null_or_empty,
    assert_operation_outcome,
    expressions,
    service_url,
)

DRAFT_DOSE = (
    "context.draftOrders.entry.0.resource.dosageInstruction.0.doseAndRate.0.doseQuantity.value"
)
PLACEHOLDER = 424242.25


def _with_raw_number(body: dict[str, Any], where: str, literal: str) -> bytes:
    """The body as JSON text with ``literal`` written where ``where`` points."""
    target: Any = body
    *parents, leaf = where.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[leaf] = PLACEHOLDER
    text = json.dumps(body)
    assert text.count(str(PLACEHOLDER)) == 1
    return text.replace(str(PLACEHOLDER), literal).encode()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1E400"])
def test_a_non_finite_draft_dose_is_a_400_naming_the_field(
    client: TestClient, request_body: dict[str, Any], literal: str
) -> None:
    """Regression: these came back as null inside the dose review's suggestions."""
    body = _with_raw_number(request_body, DRAFT_DOSE, literal)
    response = client.post(
        service_url(request_body), content=body, headers={"content-type": "application/json"}
    )
    issues = assert_operation_outcome(response, 400)
    assert expressions(issues) == [DRAFT_DOSE]


def test_a_non_finite_number_in_prefetch_is_named_too(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    where = (
        "prefetch.medications.entry.0.resource.dosageInstruction.0.doseAndRate.0.doseQuantity.value"
    )
    body = _with_raw_number(request_body, where, "NaN")
    response = client.post(
        service_url(request_body), content=body, headers={"content-type": "application/json"}
    )
    assert expressions(assert_operation_outcome(response, 400)) == [where]


def test_large_finite_doses_never_give_null(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    body = _with_raw_number(request_body, DRAFT_DOSE, "1e300")
    response = client.post(
        service_url(request_body), content=body, headers={"content-type": "application/json"}
    )
    assert_cards_response(response)
    assert_no_null_or_empty(response.json())
