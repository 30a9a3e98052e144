"""``create_app(settings)``: settings on the app, the rule base in the lifespan, errors
mapped to OperationOutcomes (CDS Hooks 2.0 #http-status-codes)."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from cds.app import GC_THRESHOLDS, create_app
from cds.authoring import load_checked_rulebase
from cds.engine import runtime
from cds.errors import EngineError, RulesError
from cds.settings import Settings, bundled_rules_dir
from tests.hooks.support import (
    TestClient,
    assert_cards_response,
    assert_operation_outcome,
    example,
    service_url,
)


def _card(client: TestClient) -> dict[str, Any]:
    request = example()
    (card,) = assert_cards_response(client.post(service_url(request), json=request))
    return card


def test_the_rule_base_lives_exactly_as_long_as_the_lifespan(settings: Settings) -> None:
    """Req 4, 5: discovery is served once start-up has loaded the rules, and names that
    rules version. The app is built without rules; shutdown retires the ruleset, so
    apps and tests never share engine state."""
    app = create_app(settings)
    before = set(runtime.live_rulesets())
    assert app.state.settings is settings
    assert not hasattr(app.state, "rules")

    with TestClient(app) as client:
        version = app.state.rules.current.version
        during = set(runtime.live_rulesets()) - before
        services = client.get("/cds-services").json()["services"]

    assert len(during) == 1
    assert {s["extension"]["restless-cds-rules-version"] for s in services} == {version}
    assert set(runtime.live_rulesets()) == before


def test_an_invalid_rules_directory_stops_start_up(tmp_path: Path) -> None:
    """No CDS Hooks requirement (app wiring): invalid rules never serve, the lifespan
    raises ``RulesError``."""
    app = create_app(Settings(rules_dir=tmp_path))

    with pytest.raises(RulesError), TestClient(app):
        pass


def test_create_app_refuses_what_rules_check_refuses(tmp_path: Path) -> None:
    """However uvicorn is started (``cds.app:create_app --factory`` included), start-up
    runs the checks ``serve`` runs: a malformed value-set code compiles but stops it."""
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules)
    drugs = rules / "valuesets" / "drugs.tsv"
    drugs.write_text(drugs.read_text(encoding="utf-8").replace("\tN05AL05", "\tN05AL5"), "utf-8")
    app = create_app(Settings(rules_dir=rules))

    with pytest.raises(RulesError) as raised, TestClient(app):
        pass
    assert any("malformed ATC code 'N05AL5'" in p.message for p in raised.value.problems)


def test_a_rule_base_handed_in_is_served_once_then_loaded_afresh(settings: Settings) -> None:
    """``serve`` with one worker loads the rules once, before uvicorn: the first lifespan
    serves that rule base (no second ruleset) and retires it at shutdown; a second
    lifespan of the same app loads the rules itself."""
    loaded = load_checked_rulebase(settings.rules_dir)
    app = create_app(settings, rulebase=loaded)
    before = set(runtime.live_rulesets())

    with TestClient(app) as client:
        assert app.state.rules.current is loaded
        assert set(runtime.live_rulesets()) == before
        assert _card(client)
    assert loaded.engine.name not in runtime.live_rulesets()

    with TestClient(app) as client:
        assert app.state.rules.current is not loaded
        assert app.state.rules.current.version == loaded.version
        assert _card(client)


def test_a_serving_worker_turns_the_paused_collector_back_on(settings: Settings) -> None:
    """``serve`` starts with the garbage collector off; the worker's lifespan
    (``tune_gc``) freezes what start-up built and turns it back on, with the thresholds."""
    thresholds = gc.get_threshold()
    gc.disable()
    try:
        with TestClient(create_app(settings, tune_gc=True)) as client:
            assert gc.isenabled()
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0
            assert _card(client)
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_card_source_and_override_system_come_from_settings(rules_dir: Path) -> None:
    """Req 90, 98, 105, 217: source.label and the overrideReasons system are settings."""
    settings = Settings(
        rules_dir=rules_dir,
        source_label="Ward 3 pharmacy CDS",
        override_system_uri="https://cds.example.org/override",
    )
    with TestClient(create_app(settings)) as client:
        card = _card(client)

    assert card["source"] == {"label": "Ward 3 pharmacy CDS"}
    assert {r["system"] for r in card["overrideReasons"]} == {"https://cds.example.org/override"}


def test_settings_come_from_the_environment_when_not_given(
    monkeypatch: pytest.MonkeyPatch, rules_dir: Path
) -> None:
    """Req 105 via settings (app wiring): ``create_app()`` reads ``RESTLESS_CDS_*``."""
    monkeypatch.setenv("RESTLESS_CDS_RULES_DIR", str(rules_dir))
    monkeypatch.setenv("RESTLESS_CDS_SOURCE_LABEL", "from-environment")

    with TestClient(create_app()) as client:
        assert _card(client)["source"]["label"] == "from-environment"


def test_two_apps_run_side_by_side_with_their_own_settings(rules_dir: Path) -> None:
    """Req 105 via settings (app wiring): no module state; two apps, two rulesets,
    each answering with its own source label."""
    first = create_app(Settings(rules_dir=rules_dir, source_label="first"))
    second = create_app(Settings(rules_dir=rules_dir, source_label="second"))

    with TestClient(first) as one, TestClient(second) as two:
        labels = [_card(one)["source"]["label"], _card(two)["source"]["label"]]
        assert first.state.rules.current.engine.name != second.state.rules.current.engine.name

    assert labels == ["first", "second"]


def test_an_unexpected_error_is_a_bare_500_operation_outcome(settings: Settings) -> None:
    """Req 14, 76: a bug gives a 500 OperationOutcome without the exception's text."""
    app: FastAPI = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("patient rbs-50m secret detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")

    issues = assert_operation_outcome(response, 500)
    assert [i["code"] for i in issues] == ["exception"]
    assert "secret" not in response.text
    assert "rbs-50m" not in response.text


class _FailingEngine:
    name = "failing"

    def evaluate(self, facts: Sequence[Any]) -> Any:
        raise EngineError("no free rule-engine session; retry shortly")

    def close(self) -> None:
        """Nothing registered, nothing to retire."""


@dataclasses.dataclass
class _Holder:
    current: Any

    @contextlib.contextmanager
    def lease(self) -> Iterator[Any]:
        yield self.current


def test_an_engine_failure_is_a_503_with_retry_after(settings: Settings) -> None:
    """Req 14, 76: a saturated or failing engine is transient: 503 and Retry-After."""
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        real = app.state.rules
        app.state.rules = _Holder(dataclasses.replace(real.current, engine=_FailingEngine()))
        request = example()
        response = client.post(service_url(request), json=request)
        app.state.rules = real

    issues = assert_operation_outcome(response, 503)
    assert [i["code"] for i in issues] == ["transient"]
    assert response.headers["retry-after"].isdigit()
