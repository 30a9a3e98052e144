"""``feedback report`` and ``feedback reset-suppressions`` name the store they use and find
it by settings, not by the folder they are run from."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cds.cli import main
from cds.feedback import FeedbackRecord, FeedbackStore, IssuedCardRecord
from cds.settings import Settings, default_data_dir

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def test_the_default_store_is_in_the_user_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESTLESS_CDS_DATABASE_PATH")
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert default_data_dir() == Path("/srv/data/restless-cds")
    assert Settings().database_path == Path("/srv/data/restless-cds/restless-cds.db")


def _overridden_card(database: Path) -> None:
    card = IssuedCardRecord(
        card_uuid="c1", service_id="restless-order-select", rule_id="r1", rules_version="v1",
        hook_instance="h1", issued_at=NOW, patient_pseudonym="p" * 64, suppress_days=3.0,
        suppress_reasons=("already-addressed",),
    )  # fmt: skip
    with FeedbackStore(f"sqlite:///{database}") as store:
        store.record_cards([card])
        store.add_feedback(
            "restless-order-select",
            [
                FeedbackRecord(
                    card_uuid="c1",
                    outcome="overridden",
                    outcome_timestamp=NOW,
                    accepted_suggestions=(),
                    override_system="urn:x",
                    override_code="already-addressed",
                    override_display=None,
                    has_comment=False,
                )
            ],
        )
        assert store.suppressed_rules("p" * 64, NOW) == {"r1"}


def test_report_and_reset_name_the_store_and_define_their_terms() -> None:
    database = Path(os.environ["RESTLESS_CDS_DATABASE_PATH"])  # set per test by conftest
    _overridden_card(database)
    runner = CliRunner()
    report = runner.invoke(main, ["feedback", "report"])
    assert report.exit_code == 0, report.output
    assert f"feedback store: {database.resolve()}" in report.output
    assert "acceptance = accepted / (accepted + overridden)" in report.output

    reset = runner.invoke(main, ["feedback", "reset-suppressions"])
    assert reset.exit_code == 0, reset.output
    assert "1 suppression(s) lifted" in reset.output
    with FeedbackStore(f"sqlite:///{database}") as store:
        assert store.suppressed_rules("p" * 64, NOW) == set()


def test_prune_deletes_old_cards_by_the_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    database = Path(os.environ["RESTLESS_CDS_DATABASE_PATH"])
    _overridden_card(database)  # issued at NOW, silenced for 3 days
    runner = CliRunner()
    kept = runner.invoke(main, ["feedback", "prune", "--older-than-days", "0"])
    assert kept.exit_code == 0, kept.output
    assert "every card kept" in kept.output
    assert "expired and deleted: 1 suppression(s)" in kept.output  # it ended at NOW + 3 days
    monkeypatch.setenv("RESTLESS_CDS_CARD_RETENTION_DAYS", "1")
    pruned = runner.invoke(main, ["feedback", "prune"])
    assert pruned.exit_code == 0, pruned.output
    assert f"feedback store: {database.resolve()}" in pruned.output
    assert "1 card(s) issued before" in pruned.output
    assert "with 1 feedback item(s)" in pruned.output
    with FeedbackStore(f"sqlite:///{database}") as store:
        assert store.report() == []
    refused = runner.invoke(main, ["feedback", "prune", "--older-than-days", "-1"])
    assert refused.exit_code == 2
