"""cds.cards.doses on its own: the R4 list elements and the refusals."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.cards.doses import _R4_LISTS, DraftProduct, scale_order
from tests.facts.fhir_builders import dose, medication_request

TABLET = DraftProduct("venlafaxine", "venlafaxine 75 MG Oral Tablet", 75.0, None, "39786")


def test_the_r4_list_elements_are_the_models_list_fields() -> None:
    """Wrapping a singleton must cover exactly the elements R4 defines as 0..*."""
    lists = {
        field.alias or name
        for name, field in MedicationRequest.model_fields.items()
        if "List" in str(field.annotation) and not (field.alias or name).startswith("_")
    }
    lists.discard("fhir_comments")
    assert lists == _R4_LISTS


def _draft(*dosages: dict[str, Any]) -> dict[str, Any]:
    return medication_request(id="d", status="draft", text="venlafaxine", dosages=list(dosages))


@pytest.mark.parametrize("factor", [0.0, -1.0, math.nan, math.inf])
def test_a_factor_that_is_no_factor_is_refused(factor: float) -> None:
    assert scale_order(_draft(dose(150)), factor, TABLET) is None


def test_a_unit_outside_the_table_refuses_the_whole_order() -> None:
    """Scaling the mg instruction but not the puffs one would state a false total."""
    draft = _draft(dose(150), dose(2, "puff"))
    assert scale_order(draft, 0.5, TABLET) is None


def test_a_dose_that_rounds_to_nothing_is_refused() -> None:
    assert scale_order(_draft(dose(0.001)), 0.1, TABLET) is None


def test_the_draft_is_never_modified() -> None:
    draft = _draft(dose(2, "{tablet}"))
    before = repr(draft)
    scaled = scale_order(draft, 0.5, TABLET)
    assert scaled is not None
    assert scaled.form == "units"
    assert repr(draft) == before
