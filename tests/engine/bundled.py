"""Facts for the bundled rules (``rules/``), built with the real fact dataclasses."""

from __future__ import annotations

from typing import Any

from cds.facts import ComplaintFact, FindingFact, MedicationFact, to_engine
from cds.facts.medications import CURRENT_STATUSES

SUBCLASS = {
    "antipsychotic": "benzamide",
    "antidepressant": "SSRI",
    "dopaminergic": "dopamine precursor",
}


def medication(
    ingredient: str,
    *,
    draft: bool = False,
    start_day: int | None = 100,
    mg_per_day: float | None = 600.0,
    source: str | None = None,
    provoking: bool = True,
    drug_class: str = "antipsychotic",
    status: str | None = None,
    end_day: int | None = None,
) -> dict[str, Any]:
    """A medication fact; ``status`` defaults to draft or active, and ``current`` follows
    it the way ``medication_facts`` sets it (stopped and completed orders are past)."""
    status = status or ("draft" if draft else "active")
    return to_engine(
        MedicationFact(
            ingredient=ingredient,
            drug_class=drug_class,
            subclass=SUBCLASS.get(drug_class, "other"),
            provoking=provoking,
            status=status,
            draft=draft,
            current=status in CURRENT_STATUSES,
            recognised_by="rxnorm",
            display=f"{ingredient} tablet",
            source=source or f"MedicationRequest/{ingredient}-{'draft' if draft else status}",
            mg_per_day=mg_per_day,
            start_day=start_day,
            end_day=end_day,
        )
    )


def complaint(
    region: str = "back",
    onset_day: int | None = 110,
    source: str = "Condition/c1",
    **features: bool,
) -> dict[str, Any]:
    """A rest-provoked complaint relieved by moving (IRLSSG 2 and 3) unless ``features``
    say otherwise (e.g. ``relieved_by_movement=False, not_relieved_by_movement=True``)."""
    flags: dict[str, Any] = {
        "coded_restless": False,
        "rest_provoked": True,
        "relieved_by_movement": True,
        "night_worse": False,
        "unpleasant_sensation": True,
        "urge_to_move": False,
        "not_relieved_by_movement": False,
        "inner_restlessness": False,
        "skin_lesion": False,
    }
    unknown = set(features) - set(flags)
    assert not unknown, f"not ComplaintFact flags: {unknown}"
    flags.update(features)
    return to_engine(
        ComplaintFact(
            region=region,
            display=f"{region} itch when lying down",
            source=source,
            onset_day=onset_day,
            **flags,
        )
    )


def finding(
    category: str,
    concept: str,
    *,
    region: str = "unspecified",
    source: str | None = None,
    onset_day: int | None = None,
) -> dict[str, Any]:
    return to_engine(
        FindingFact(
            category=category,
            concept=concept,
            region=region,
            display=concept,
            source=source or f"Condition/{category}-{region}",
            onset_day=onset_day,
        )
    )


def draft_order_case(drug: str = "amisulpride", region: str = "back") -> list[dict[str, Any]]:
    """A patient on ``drug`` since day 100, a rest-provoked complaint from day 110 and a
    draft order raising the dose: the bundled rules answer with one dose-review card."""
    return [
        medication(drug, start_day=100, mg_per_day=600.0),
        medication(drug, draft=True, start_day=None, mg_per_day=800.0),
        complaint(region, onset_day=110, source=f"Condition/{drug}-{region}"),
    ]
