"""Facts for the bundled rules (``rules/``), built with the real fact dataclasses."""

from __future__ import annotations

from typing import Any

from cds.facts import ComplaintFact, MedicationFact, to_engine


def medication(
    ingredient: str,
    *,
    draft: bool = False,
    start_day: int | None = 100,
    mg_per_day: float | None = 600.0,
    source: str | None = None,
    provoking: bool = True,
) -> dict[str, Any]:
    return to_engine(
        MedicationFact(
            ingredient=ingredient,
            drug_class="antipsychotic",
            subclass="benzamide",
            provoking=provoking,
            status="draft" if draft else "active",
            draft=draft,
            recognised_by="rxnorm",
            display=f"{ingredient} tablet",
            source=source or f"MedicationRequest/{ingredient}-{'draft' if draft else 'active'}",
            mg_per_day=mg_per_day,
            start_day=start_day,
        )
    )


def complaint(region: str = "back", onset_day: int | None = 110, source: str = "Condition/c1"):
    return to_engine(
        ComplaintFact(
            region=region,
            coded_restless=False,
            rest_provoked=True,
            relieved_by_movement=True,
            night_worse=False,
            unpleasant_sensation=True,
            urge_to_move=False,
            display=f"{region} itch when lying down",
            source=source,
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
