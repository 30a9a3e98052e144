"""``restless-cds explain``: facts with their sources, firings in order, reasons."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cds.authoring.explain import explain_request, format_explanation
from cds.cli import main
from cds.rulebase import RuleBase
from tests.conftest import EXAMPLES

RESTLESS_BACK = EXAMPLES / "restless-back-amisulpride.json"
MECHANICAL = EXAMPLES / "mechanical-back-pain-amisulpride.json"


def _report(rulebase: RuleBase, path=RESTLESS_BACK):
    return explain_request(
        path.read_bytes(), rulebase, source_label="restless-cds", override_system="urn:x"
    )


def test_facts_name_the_resource_they_came_from(rulebase: RuleBase) -> None:
    report = _report(rulebase)
    sources = {(f["fact"], f["source"]) for f in report["facts"]}
    assert sources == {
        ("medication", "MedicationRequest/draft-amisulpride-800"),
        ("medication", "MedicationRequest/amisulpride-600"),
        ("complaint", "Condition/back-itching"),
    }


def test_firings_in_order_with_bindings_and_derived_facts(rulebase: RuleBase) -> None:
    fired = _report(rulebase)["fired"]
    order = [f["rule"] for f in fired]
    assert order.index("link.onset-on-current-drug") < order.index("dose-review.draft-order")
    link = next(f for f in fired if f["rule"] == "link.onset-on-current-drug")
    assert link["derived"]["days_after_start"] == 14
    assert link["bound"]["complaint"] == "rest_provoked_complaint Condition/back-itching"
    assert fired[-1]["rule"] == "dose-review.draft-order"
    # stage 1 derives exposure (and any mimic), 2 the complaint and link, 3 the card
    assert fired[-1]["stage"] == 3


def test_unfired_rules_name_their_first_unmet_condition(rulebase: RuleBase) -> None:
    reasons = {r["rule"]: r["reason"] for r in _report(rulebase)["not_fired"]}
    assert reasons["observation.no-time-link"].startswith("condition 3 (absent temporal_link")
    assert reasons["observation.no-time-link"].endswith("such a fact exists")
    assert reasons["akathisia.on-provoking-drug"].startswith("condition 1 (akathisia as")
    assert "dose-review.draft-order" not in reasons


def test_no_card_case_says_why(rulebase: RuleBase) -> None:
    report = _report(rulebase, MECHANICAL)
    assert report["cards"] == []
    reasons = {r["rule"]: r["reason"] for r in report["not_fired"]}
    assert "no fact matches" in reasons["complaint.rest-provoked-relieved-by-moving"]
    assert reasons["dose-review.current-drug"].startswith("condition 1 (temporal_link")
    assert "rest_provoked_complaint as complaint" in reasons["observation.no-time-link"]


def test_text_and_json_output() -> None:
    runner = CliRunner()
    text = runner.invoke(main, ["explain", str(RESTLESS_BACK)])
    assert text.exit_code == 0, text.output
    assert "Rules that did not fire:" in text.output
    assert "[warning] Restless back on amisulpride" in text.output
    as_json = runner.invoke(main, ["explain", "--json", str(RESTLESS_BACK)])
    assert json.loads(as_json.output)["cards"][0]["rule"] == "dose-review.draft-order"


def test_format_lists_every_section(rulebase: RuleBase) -> None:
    text = format_explanation(_report(rulebase))
    for heading in ("Facts extracted (3):", "Rules fired, in order:", "Cards (1):"):
        assert heading in text
