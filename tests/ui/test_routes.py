"""The UI's data routes and access rules, in process (no browser)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.settings import Settings
from tests.conftest import load_example

EXAMPLE = "restless-back-amisulpride.json"
SERVICE = "restless-order-select"


def _diagnostics(outcome: dict[str, Any]) -> str:
    return " ".join(str(issue.get("diagnostics")) for issue in outcome["issue"])


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_card_markdown_is_rendered_with_html_escaped_and_bad_links_refused(
    client: TestClient,
) -> None:
    texts = ["**bold** <script>alert(1)</script>", "[x](javascript:alert(1)) [ok](https://a.org)"]
    html = client.post("/ui/api/markdown", json={"texts": texts}).json()["html"]
    assert "<strong>bold</strong>" in html[0]
    assert "<script>" not in html[0]
    assert "&lt;script&gt;" in html[0]
    assert 'href="javascript' not in html[1]
    assert 'rel="noopener noreferrer" href="https://a.org"' in html[1]


def test_examples_are_listed_with_their_service_and_served(client: TestClient) -> None:
    listed = {e["name"]: e for e in client.get("/ui/api/examples").json()}
    assert listed["restless-back-amisulpride"]["service"] == SERVICE
    assert not any(name.endswith(".expected") for name in listed)
    assert client.get("/ui/api/examples/restless-back-amisulpride").json() == load_example(EXAMPLE)
    assert client.get("/ui/api/examples/..%2Fpyproject").status_code == 404


def test_explain_names_the_bad_field(client: TestClient) -> None:
    response = client.post("/ui/api/explain", json={"service": SERVICE, "request": {"hook": 1}})
    assert response.status_code == 400
    assert "hookInstance: Field required" in _diagnostics(response.json())
    unknown = client.post("/ui/api/explain", json={"service": "nope", "request": {}})
    assert unknown.status_code == 404


def test_dashboard_counts_a_fired_card_and_its_csv_matches(client: TestClient) -> None:
    cards = client.post(f"/cds-services/{SERVICE}", json=load_example(EXAMPLE)).json()["cards"]
    data = client.get("/ui/api/dashboard").json()
    assert [(r["rule"], r["issued"]) for r in data["rows"]] == [("dose-review.draft-order", 1)]
    assert sum(p["issued"] for p in data["daily"]) == len(cards) == 1

    table = list(csv.DictReader(io.StringIO(client.get("/ui/api/dashboard.csv").text)))
    assert table[0]["rule"] == "dose-review.draft-order"
    assert table[0]["issued"] == "1"
    assert "patient" not in str(data).lower()


def test_dashboard_refuses_a_reversed_range(client: TestClient) -> None:
    response = client.get("/ui/api/dashboard", params={"start": "2026-02-01", "end": "2026-01-01"})
    assert response.status_code == 400
    assert "start: must be on or before end" in _diagnostics(response.json())
    assert client.get("/ui/api/dashboard", params={"start": "yesterday"}).status_code == 400


def test_card_explanation_is_structured_and_scoped_to_its_service(client: TestClient) -> None:
    card = client.post(f"/cds-services/{SERVICE}", json=load_example(EXAMPLE)).json()["cards"][0]
    found = client.get(f"/cds-services/{SERVICE}/cards/{card['uuid']}/explanation").json()
    bound = found["explanation"]["bound"]
    assert bound["complaint"]["region"] == "back"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", bound["complaint"]["onset_day"])  # a date
    assert "display" not in bound["complaint"]
    assert "source" not in bound["order"]
    other = client.get(f"/cds-services/restless-patient-view/cards/{card['uuid']}/explanation")
    assert other.status_code == 404


def test_ui_is_off_by_default_on_a_non_loopback_interface(rules_dir: Path) -> None:
    settings = Settings(rules_dir=rules_dir, host="0.0.0.0", allow_unauthenticated_remote=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/playground").status_code == 404
        assert client.get("/ui/api/examples").status_code == 404


def test_ui_on_a_non_loopback_interface_needs_an_operator_token(rules_dir: Path) -> None:
    with pytest.raises(ValueError, match="ui_token"):
        create_app(Settings(rules_dir=rules_dir, host="0.0.0.0", ui=True))
    settings = Settings(rules_dir=rules_dir, host="0.0.0.0", ui=True, ui_token="s3cret-op")
    with TestClient(create_app(settings)) as client:
        assert client.get("/playground").status_code == 200  # the page itself holds no data
        assert client.get("/ui/api/examples").status_code == 401
        wrong = client.get("/ui/api/examples", headers={"X-Operator-Token": "guess"})
        assert wrong.status_code == 401
        ok = client.get("/ui/api/examples", headers={"X-Operator-Token": "s3cret-op"})
        assert ok.status_code == 200
