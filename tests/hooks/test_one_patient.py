"""One patient only: another patient's resources never fire, silence or appear in a card.

Every case runs for the three hooks, with the data in the prefetch and with the data
fetched from a FHIR server. The FHIR server here is a FAKE: a loopback HTTP server that
answers every search with the Bundle the test gives it, as a mis-scoped search or a
proxy that merges results would. A real server (sekmet) scopes its searches correctly
and so cannot show the defect; the fallback against sekmet is tested in tests/fhir/.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from cds.facts.terminology import ICD10CM, RXNORM
from tests.hooks.support import (
    TestClient,
    as_order_sign,
    as_patient_view,
    complaint,
    current_order,
    example,
    service_url,
)

OTHER = "Patient/someone-else"
Json = dict[str, Any]


class _MisScopedFhirServer:
    """FAKE FHIR server: every GET answers with ``bundles[resource type]``, whatever the
    query asked for (the mis-scoping this test is about)."""

    def __init__(self) -> None:
        self.bundles: dict[str, Json] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kind = self.path.split("/fhir/", 1)[-1].split("?", 1)[0]
                body = orjson.dumps(outer.bundles.get(kind, _bundle()))
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/fhir"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def fhir() -> Iterator[_MisScopedFhirServer]:
    server = _MisScopedFhirServer()
    yield server
    server.close()


def _bundle(*resources: Json, included: tuple[Json, ...] = ()) -> Json:
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    entries += [{"resource": r, "search": {"mode": "include"}} for r in included]
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def _of(owner: str, resource: Json, new_id: str) -> Json:
    moved = copy.deepcopy(resource)
    moved["id"] = new_id
    moved["subject"] = {"reference": owner}
    return moved


def _akathisia(subject: str, rid: str) -> Json:
    return {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": ICD10CM, "code": "G25.71"}], "text": "akathisia"},
        "subject": {"reference": subject},
    }


HOOKS: dict[str, Callable[[Json], Json]] = {
    "order-select": lambda body: body,
    "order-sign": as_order_sign,
    "patient-view": as_patient_view,
}


def _call(
    client: TestClient,
    fhir: _MisScopedFhirServer,
    hook: str,
    via: str,
    *,
    medications: Json,
    conditions: Json,
) -> list[Json]:
    body = HOOKS[hook](example())
    if via == "prefetch":
        body["prefetch"] = {"medications": medications, "conditions": conditions}
    else:
        fhir.bundles = {"MedicationRequest": medications, "Condition": conditions}
        body.pop("prefetch")
        body["fhirServer"] = fhir.base_url
    response = client.post(service_url(body), json=body)
    assert response.status_code == 200, response.text
    cards: list[Json] = response.json()["cards"]
    return cards


def _rules(cards: list[Json]) -> list[str]:
    return [c["extension"]["restless-cds-rule"] for c in cards]


VIAS = ["prefetch", "fhir-server"]
BASELINE = {
    "order-select": ["dose-review.draft-order"],
    "order-sign": ["dose-review.draft-order"],
    "patient-view": ["dose-review.current-drug"],
}


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_the_patients_own_record_gives_the_card(
    client: TestClient, fhir: _MisScopedFhirServer, hook: str, via: str
) -> None:
    """The control: with only this patient's data, the published card."""
    base = example()
    cards = _call(
        client,
        fhir,
        hook,
        via,
        medications=_bundle(current_order(base)),
        conditions=_bundle(complaint(base)),
    )
    assert _rules(cards) == BASELINE[hook]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_another_patients_drug_neither_fires_nor_is_cited(
    client: TestClient, fhir: _MisScopedFhirServer, hook: str, via: str
) -> None:
    base = example()
    theirs = _of(OTHER, current_order(base), "their-amisulpride")
    cards = _call(
        client, fhir, hook, via, medications=_bundle(theirs), conditions=_bundle(complaint(base))
    )
    assert "their-amisulpride" not in json.dumps(cards)
    if hook == "patient-view":
        assert cards == []  # no drug of this patient at all
    else:  # only this patient's draft remains: a drug not yet taken, never "dose review"
        assert _rules(cards) == ["observation.new-drug"]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_another_patients_akathisia_does_not_silence_this_patients_card(
    client: TestClient, fhir: _MisScopedFhirServer, hook: str, via: str
) -> None:
    base = example()
    conditions = _bundle(complaint(base), _akathisia(OTHER, "their-akathisia"))
    cards = _call(
        client, fhir, hook, via, medications=_bundle(current_order(base)), conditions=conditions
    )
    assert _rules(cards) == BASELINE[hook]
    assert "their-akathisia" not in json.dumps(cards)


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_another_patients_complaint_fires_nothing(
    client: TestClient, fhir: _MisScopedFhirServer, hook: str, via: str
) -> None:
    base = example()
    theirs = _of(OTHER, complaint(base), "their-back-itching")
    cards = _call(
        client,
        fhir,
        hook,
        via,
        medications=_bundle(current_order(base)),
        conditions=_bundle(theirs),
    )
    assert cards == []


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_included_medication_is_read_only_through_this_patients_orders(
    client: TestClient, fhir: _MisScopedFhirServer, hook: str, via: str
) -> None:
    """Another patient's order names an included sertraline Medication: it is never read;
    this patient's order of an included amisulpride Medication is."""
    base = example()
    ours = copy.deepcopy(current_order(base))
    ours["medicationReference"] = {"reference": "Medication/amisulpride-200"}
    del ours["medicationCodeableConcept"]
    theirs = _of(OTHER, ours, "their-sertraline-order")
    theirs["medicationReference"] = {"reference": "Medication/sertraline-50"}
    medications = _bundle(
        ours,
        theirs,
        included=(
            _medication("amisulpride-200", "46303", "amisulpride"),
            _medication("sertraline-50", "36437", "sertraline"),
        ),
    )
    cards = _call(
        client, fhir, hook, via, medications=medications, conditions=_bundle(complaint(base))
    )
    assert _rules(cards) == BASELINE[hook]
    dumped = json.dumps(cards).lower()
    assert "sertraline" not in dumped
    assert "their-sertraline-order" not in dumped


def _medication(rid: str, code: str, name: str) -> Json:
    return {
        "resourceType": "Medication",
        "id": rid,
        "code": {"coding": [{"system": RXNORM, "code": code, "display": name}]},
    }


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("hook", list(HOOKS))
def test_chart_resources_without_a_subject_are_not_read(
    client: TestClient, fhir: _MisScopedFhirServer, hook: str, via: str
) -> None:
    base = example()
    order, condition = copy.deepcopy(current_order(base)), copy.deepcopy(complaint(base))
    del order["subject"], condition["subject"]
    cards = _call(
        client, fhir, hook, via, medications=_bundle(order), conditions=_bundle(condition)
    )
    assert cards == []


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/rbs-50m",
        "https://fhir.example.org/r4/Patient/rbs-50m",
        "Patient/rbs-50m/",
        "Patient/rbs-50m/_history/7",
        "https://fhir.example.org/r4/Patient/rbs-50m/_history/2",
    ],
)
def test_the_same_patient_written_differently_is_this_patient(
    client: TestClient, fhir: _MisScopedFhirServer, reference: str
) -> None:
    base = example()
    order, condition = copy.deepcopy(current_order(base)), copy.deepcopy(complaint(base))
    order["subject"] = condition["subject"] = {"reference": reference}
    cards = _call(
        client,
        fhir,
        "order-select",
        "prefetch",
        medications=_bundle(order),
        conditions=_bundle(condition),
    )
    assert _rules(cards) == ["dose-review.draft-order"]


@pytest.mark.parametrize(
    "reference",
    ["Patient/rbs-50m2", "Patient/RBS-50M", "Group/rbs-50m", "urn:uuid:rbs-50m", "rbs-50m"],
)
def test_near_misses_are_another_patient(
    client: TestClient, fhir: _MisScopedFhirServer, reference: str
) -> None:
    base = example()
    condition = copy.deepcopy(complaint(base))
    condition["subject"] = {"reference": reference}
    body = as_patient_view(example())
    body["prefetch"] = {
        "medications": _bundle(current_order(base)),
        "conditions": _bundle(condition),
    }
    assert client.post(service_url(body), json=body).json()["cards"] == []


def test_a_draft_order_of_another_patient_is_not_the_order_being_placed(
    client: TestClient,
) -> None:
    body = example()
    body["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {"reference": OTHER}
    cards = client.post(service_url(body), json=body).json()["cards"]
    assert _rules(cards) == ["dose-review.current-drug"]  # the chart's drug, no draft
    assert "suggestions" not in cards[0]


def test_a_draft_order_without_a_subject_belongs_to_the_hook_patient(
    client: TestClient,
) -> None:
    body = example()
    del body["context"]["draftOrders"]["entry"][0]["resource"]["subject"]
    cards = client.post(service_url(body), json=body).json()["cards"]
    assert _rules(cards) == ["dose-review.draft-order"]


def test_skipped_resources_are_logged_by_position_without_their_ids(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    base = example()
    theirs = _of(OTHER, current_order(base), "their-secret-order")
    body = example()
    body["prefetch"]["medications"]["entry"].append({"resource": theirs})
    with caplog.at_level("INFO", logger="cds"):
        client.post(service_url(body), json=body)
    text = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    assert "prefetch.medications.entry[1]" in text
    assert "MedicationRequest of another patient" in text
    (answered,) = [r for r in caplog.records if r.getMessage() == "hook answered"]
    assert getattr(answered, "skipped", None) == {"other-patient": 1}
    assert "their-secret-order" not in text
    assert "someone-else" not in text
