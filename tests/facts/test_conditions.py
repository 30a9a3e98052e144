"""Condition -> complaint and finding facts; only current conditions count."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fhir.resources.R4B.condition import Condition

from cds.facts import ComplaintFact, FindingFact, PhraseLibrary, Terminology, epoch_day
from cds.facts.conditions import condition_facts, is_candidate, is_current
from tests.conftest import load_example
from tests.facts.fhir_builders import ICD10CM, SNOMED, condition

Facts = list[ComplaintFact | FindingFact]


def facts(raw: dict[str, Any], terminology: Terminology, library: PhraseLibrary) -> Facts:
    model = Condition.model_validate(raw)
    return list(condition_facts(model, raw, terminology, library))


def complaints(found: Facts) -> list[ComplaintFact]:
    return [f for f in found if isinstance(f, ComplaintFact)]


def findings(found: Facts) -> list[FindingFact]:
    return [f for f in found if isinstance(f, FindingFact)]


def restless_back_condition() -> dict[str, Any]:
    example = load_example("restless-back-amisulpride.json")
    resource: dict[str, Any] = example["prefetch"]["conditions"]["entry"][0]["resource"]
    return resource


# --- is_current ------------------------------------------------------------------------


@pytest.mark.parametrize("clinical", ["active", "recurrence", "relapse"])
def test_current_clinical_statuses(clinical: str) -> None:
    assert is_current(condition(clinical=clinical))


@pytest.mark.parametrize("clinical", ["resolved", "inactive", "remission"])
def test_past_clinical_statuses(clinical: str) -> None:
    assert not is_current(condition(clinical=clinical))


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_or_erroneous_does_not_count(verification: str) -> None:
    assert not is_current(condition(clinical="active", verification=verification))
    assert not is_current(condition(clinical=None, verification=verification))


@pytest.mark.parametrize("verification", ["unconfirmed", "provisional", "differential", None])
def test_unconfirmed_still_counts(verification: str | None) -> None:
    assert is_current(condition(verification=verification))


def test_no_clinical_status_counts_without_abatement() -> None:
    assert is_current(condition(clinical=None))


@pytest.mark.parametrize(
    "abatement",
    [
        {"abatementDateTime": "2026-10-01"},
        {"abatementString": "resolved last spring"},
        {"abatementPeriod": {"start": "2026-09-01"}},
    ],
)
def test_no_clinical_status_with_abatement_does_not_count(abatement: dict[str, Any]) -> None:
    assert not is_current(condition(clinical=None, **abatement))


def test_clinical_status_wins_over_abatement() -> None:
    assert is_current(condition(clinical="recurrence", abatementDateTime="2026-01-01"))


def test_clinical_status_without_code_is_as_if_absent() -> None:
    assert is_current(condition(clinical=None, clinicalStatus={"text": "ongoing"}))
    assert not is_current(
        condition(clinical=None, clinicalStatus={"text": "ongoing"}, abatementAge={"value": 40})
    )


# --- is_candidate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(restless_back_condition(), id="restless-back-example"),
        pytest.param(condition(codes=[(ICD10CM, "G25.81")]), id="coded-rls"),
        pytest.param(condition(codes=[(ICD10CM, "R21")]), id="coded-rash"),
        pytest.param(condition(text="crawling in the legs at night"), id="uncoded-with-region"),
        pytest.param(condition(text="pain", bodySite=[{"text": "lumbar"}]), id="body-site"),
        pytest.param(condition(text="sensation", notes=["arms restless"]), id="note"),
    ],
)
def test_candidates(raw: dict[str, Any], terminology: Terminology, library: PhraseLibrary) -> None:
    assert is_candidate(raw, terminology, library)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(condition(text="Essential hypertension"), id="no-code-no-region"),
        pytest.param(condition(codes=[(SNOMED, "38341003")]), id="code-not-in-value-sets"),
        pytest.param(condition(text="no back pain"), id="negated-region"),
        pytest.param(condition(text="carries a backpack"), id="region-inside-a-word"),
        pytest.param(
            condition(clinical="resolved", codes=[(ICD10CM, "G25.81")]), id="resolved-rls"
        ),
        pytest.param(
            condition(verification="refuted", text="restless legs"), id="refuted-complaint"
        ),
        pytest.param(condition(), id="no-code-at-all"),
    ],
)
def test_not_candidates(
    raw: dict[str, Any], terminology: Terminology, library: PhraseLibrary
) -> None:
    assert not is_candidate(raw, terminology, library)


# --- condition_facts ---------------------------------------------------------------------


def test_restless_back_complaint(terminology: Terminology, library: PhraseLibrary) -> None:
    # coded as itching (a sensory complaint), but its text places it in the back
    assert facts(restless_back_condition(), terminology, library) == [
        ComplaintFact(
            region="back",
            coded_restless=False,
            rest_provoked=True,
            relieved_by_movement=True,
            night_worse=False,
            unpleasant_sensation=True,
            urge_to_move=False,
            not_relieved_by_movement=False,
            inner_restlessness=False,
            skin_lesion=False,  # "No rash on examination."
            display="Itching and ant-crawling sensation in the back when lying down",
            source="Condition/back-itching",
            onset_day=epoch_day(dt.date(2026, 11, 5)),
        )
    ]


@pytest.mark.parametrize(
    "coding",
    [(SNOMED, "32914008"), (ICD10CM, "G25.81"), (ICD10CM, "G47.61")],
    ids=["snomed-rls", "icd-rls", "icd-plmd"],
)
def test_coded_restless_syndrome_is_in_the_legs(
    coding: tuple[str, str], terminology: Terminology, library: PhraseLibrary
) -> None:
    (complaint,) = facts(condition(codes=[coding]), terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert complaint.region == "legs"
    assert complaint.coded_restless
    assert complaint.display == "condition"  # nothing was written


def test_coded_restless_syndrome_with_text(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    raw = condition(
        codes=[(ICD10CM, "G25.81")], text="Restless legs syndrome", notes=["worse at night"]
    )
    (complaint,) = facts(raw, terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert (complaint.region, complaint.coded_restless) == ("legs", True)
    assert complaint.night_worse
    assert complaint.urge_to_move
    assert not complaint.rest_provoked
    assert complaint.display == "Restless legs syndrome"


def test_uncoded_complaint_is_not_coded_restless(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    (complaint,) = facts(condition(text="restless legs at night"), terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert not complaint.coded_restless


def test_akathisia_is_a_finding_not_a_complaint(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    raw = condition(
        id="aka",
        codes=[(ICD10CM, "G25.71")],
        text="Akathisia: inner restlessness, cannot sit still",
        onsetDateTime="2026-11-10",
    )
    assert facts(raw, terminology, library) == [
        FindingFact(
            category="akathisia",
            concept="Akathisia, drug-induced (differential for RLS)",
            region="unspecified",  # the text names no body region
            display="Akathisia: inner restlessness, cannot sit still",
            source="Condition/aka",
            onset_day=epoch_day(dt.date(2026, 11, 10)),
        )
    ]


@pytest.mark.parametrize(
    ("coding", "category"),
    [
        ((ICD10CM, "R21"), "skin_lesion"),
        ((SNOMED, "64144002"), "skin_lesion"),
        ((ICD10CM, "D50.9"), "secondary_cause"),
        ((SNOMED, "193462001"), "sleep_complaint"),
    ],
)
def test_other_coded_conditions_are_findings(
    coding: tuple[str, str], category: str, terminology: Terminology, library: PhraseLibrary
) -> None:
    found = facts(condition(codes=[coding]), terminology, library)
    assert complaints(found) == []
    assert [f.category for f in findings(found)] == [category]


@pytest.mark.parametrize(
    ("coding", "region"),
    [
        ((SNOMED, "161891005"), "back"),  # Backache
        ((ICD10CM, "M54.50"), "back"),
        ((SNOMED, "90834002"), "limbs"),  # Pain in limb
        ((SNOMED, "418290006"), "unspecified"),  # Itching
    ],
)
def test_coded_complaint_without_text_takes_its_category_region(
    coding: tuple[str, str], region: str, terminology: Terminology, library: PhraseLibrary
) -> None:
    (complaint,) = facts(condition(codes=[coding]), terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert complaint.region == region
    assert not complaint.coded_restless


def test_text_region_replaces_the_category_region(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    raw = condition(codes=[(SNOMED, "90834002")], text="pain in both legs when sitting")
    (complaint,) = facts(raw, terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert (complaint.region, complaint.rest_provoked) == ("legs", True)


def test_one_complaint_per_region(terminology: Terminology, library: PhraseLibrary) -> None:
    raw = condition(text="creeping in the legs and arms at night")
    found = complaints(facts(raw, terminology, library))
    assert [c.region for c in found] == ["arms", "legs"]
    assert all(c.unpleasant_sensation and c.night_worse for c in found)


def test_negated_features_stay_false(terminology: Terminology, library: PhraseLibrary) -> None:
    raw = condition(
        text="Back discomfort when lying down",
        notes=["Not relieved by walking. Denies itching. No restlessness."],
    )
    (complaint,) = facts(raw, terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert complaint.rest_provoked
    assert not complaint.relieved_by_movement
    assert not complaint.unpleasant_sensation
    assert not complaint.urge_to_move


def test_uncoded_condition_without_region_gives_nothing(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    assert facts(condition(text="itching at night"), terminology, library) == []


def test_source_without_id(terminology: Terminology, library: PhraseLibrary) -> None:
    (complaint,) = facts(condition(id=None, text="back itching"), terminology, library)
    assert complaint.source == "Condition"


# --- onset_day ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "day"),
    [
        pytest.param({"onsetDateTime": "2026-11-05"}, dt.date(2026, 11, 5), id="onsetDateTime"),
        pytest.param(
            {"onsetDateTime": "2026-11-05T22:00:00+01:00"}, dt.date(2026, 11, 5), id="datetime"
        ),
        pytest.param(
            {"onsetPeriod": {"start": "2026-11-03", "end": "2026-11-09"}},
            dt.date(2026, 11, 3),
            id="onsetPeriod",
        ),
        pytest.param({"recordedDate": "2026-11-07"}, dt.date(2026, 11, 7), id="recordedDate"),
        pytest.param(
            {"onsetDateTime": "2026-11-05", "recordedDate": "2026-11-07"},
            dt.date(2026, 11, 5),
            id="onset-before-recorded",
        ),
        pytest.param(
            {"onsetPeriod": {"end": "2026-11-09"}, "recordedDate": "2026-11-07"},
            dt.date(2026, 11, 7),
            id="period-without-start",
        ),
        pytest.param(
            {"onsetString": "a fortnight ago", "recordedDate": "2026-11-07"},
            dt.date(2026, 11, 7),
            id="onsetString",
        ),
    ],
)
def test_onset_day(
    extra: dict[str, Any], day: dt.date, terminology: Terminology, library: PhraseLibrary
) -> None:
    (complaint,) = facts(condition(text="back itching", **extra), terminology, library)
    assert complaint.onset_day == epoch_day(day)


def test_no_dates_no_onset(terminology: Terminology, library: PhraseLibrary) -> None:
    (complaint,) = facts(condition(text="back itching"), terminology, library)
    assert complaint.onset_day is None


def test_partial_onset_date_takes_its_start(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    """Regression (cds.facts.model.epoch_day): "2026-11" gives no onset at all, and the
    recordedDate is not used instead, so the complaint cannot be linked to a drug."""
    raw = condition(text="back itching", onsetDateTime="2026-11", recordedDate="2026-11-20")
    (complaint,) = facts(raw, terminology, library)
    assert complaint.onset_day == epoch_day(dt.date(2026, 11, 1))


def test_nonspecific_agitation_is_not_a_coded_restless_syndrome(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    """R45.1 'Restlessness and agitation' must not read psychiatric agitation as RLS."""
    found = facts(condition(codes=[(ICD10CM, "R45.1")]), terminology, library)
    assert complaints(found) == []
    assert [f.category for f in findings(found)] == ["agitation"]


# --- akathisia and skin-lesion signs in complaint text --------------------------------


def test_restless_back_note_denies_a_rash(terminology: Terminology, library: PhraseLibrary) -> None:
    (complaint,) = facts(restless_back_condition(), terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert not complaint.skin_lesion  # "No rash on examination."
    assert not complaint.not_relieved_by_movement  # "Relieved on getting up and walking"
    assert not complaint.inner_restlessness


def test_restlessness_not_relieved_by_walking(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    raw = condition(
        id="legs",
        text="Restless legs when sitting",
        notes=["Not relieved by walking. Inner restlessness, paces the ward."],
        onsetDateTime="2026-11-12",
    )
    assert facts(raw, terminology, library) == [
        ComplaintFact(
            region="legs",
            coded_restless=False,
            rest_provoked=True,
            relieved_by_movement=False,
            night_worse=False,
            unpleasant_sensation=False,
            urge_to_move=True,
            not_relieved_by_movement=True,
            inner_restlessness=True,
            skin_lesion=False,
            display="Restless legs when sitting",
            source="Condition/legs",
            onset_day=epoch_day(dt.date(2026, 11, 12)),
        )
    ]


@pytest.mark.parametrize(
    ("text", "notes"),
    [
        pytest.param("Restless legs when sitting", [], id="relief-not-mentioned"),
        pytest.param("Restless legs, relieved by walking", [], id="relieved"),
        pytest.param(
            "Restless legs", ["Not relieved by walking.", "Relieved by walking."], id="both"
        ),
    ],
)
def test_relief_not_mentioned_or_affirmed_is_not_denied(
    terminology: Terminology, library: PhraseLibrary, text: str, notes: list[str]
) -> None:
    (complaint,) = facts(condition(text=text, notes=notes), terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert not complaint.not_relieved_by_movement


def test_itchy_rash_on_the_back(terminology: Terminology, library: PhraseLibrary) -> None:
    (complaint,) = facts(condition(text="itchy rash on the back"), terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert (complaint.region, complaint.skin_lesion, complaint.unpleasant_sensation) == (
        "back",
        True,
        True,
    )


@pytest.mark.parametrize(
    "notes", [["no rash"], ["No rash on examination."], ["skin intact, no lesions"], []]
)
def test_back_itch_without_a_rash(
    terminology: Terminology, library: PhraseLibrary, notes: list[str]
) -> None:
    (complaint,) = facts(condition(text="back itching", notes=notes), terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert not complaint.skin_lesion


def test_no_rash_does_not_deny_relief(terminology: Terminology, library: PhraseLibrary) -> None:
    """Regression (cds.facts.phrases, see test_phrases): the "no" of "no rash" also denies the
    relief that follows it, so this restless legs syndrome reads as akathisia
    (urge_to_move and not_relieved_by_movement) and rule 25 silences every RLS card."""
    raw = condition(text="Restless legs at night, no rash, relieved by walking")
    (complaint,) = facts(raw, terminology, library)
    assert isinstance(complaint, ComplaintFact)
    assert complaint.urge_to_move
    assert not complaint.not_relieved_by_movement


# --- findings: the region their text names; never complaints --------------------------


@pytest.mark.parametrize(
    ("text", "regions"),
    [
        pytest.param("Pruritic rash on the back", ["back"], id="back"),
        pytest.param("Rash on both arms and legs", ["arms", "legs"], id="two-regions"),
        pytest.param("Rash", ["unspecified"], id="no-region"),
        pytest.param("Rash, not on the back", ["unspecified"], id="negated-region"),
    ],
)
def test_finding_region_from_text(
    terminology: Terminology, library: PhraseLibrary, text: str, regions: list[str]
) -> None:
    raw = condition(id="rash", codes=[(ICD10CM, "R21")], text=text, onsetDateTime="2026-11-01")
    found = facts(raw, terminology, library)
    assert complaints(found) == []
    assert found == [
        FindingFact(
            category="skin_lesion",
            concept="Pruritic rash",
            region=region,
            display=text,
            source="Condition/rash",
            onset_day=epoch_day(dt.date(2026, 11, 1)),
        )
        for region in regions
    ]


def test_finding_region_from_body_site(terminology: Terminology, library: PhraseLibrary) -> None:
    raw = condition(codes=[(SNOMED, "64144002")], bodySite=[{"text": "lumbar"}])
    (finding,) = facts(raw, terminology, library)
    assert isinstance(finding, FindingFact)
    assert (finding.category, finding.region) == ("skin_lesion", "back")


@pytest.mark.parametrize(
    "coding",
    [(ICD10CM, "G25.71"), (SNOMED, "230333002")],
    ids=["icd-akathisia", "snomed-akathisia"],
)
def test_akathisia_coded_restless_legs_is_not_a_complaint(
    coding: tuple[str, str], terminology: Terminology, library: PhraseLibrary
) -> None:
    raw = condition(
        id="aka",
        codes=[coding],
        text="restless legs",
        notes=["worse when sitting, relieved by walking, worse at night"],
    )
    found = facts(raw, terminology, library)
    assert complaints(found) == []
    assert [(f.category, f.region, f.display) for f in findings(found)] == [
        ("akathisia", "legs", "restless legs")
    ]


@pytest.mark.parametrize(
    ("coding", "category"),
    [
        ((ICD10CM, "R45.1"), "agitation"),
        ((ICD10CM, "D50.9"), "secondary_cause"),
        ((ICD10CM, "R21"), "skin_lesion"),
    ],
)
def test_condition_coded_otherwise_never_becomes_a_complaint(
    coding: tuple[str, str], category: str, terminology: Terminology, library: PhraseLibrary
) -> None:
    raw = condition(codes=[coding], text="back itching when lying down, relieved by walking")
    found = facts(raw, terminology, library)
    assert complaints(found) == []
    assert [(f.category, f.region) for f in findings(found)] == [(category, "back")]


def test_complaint_and_finding_codes_give_both(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    """A complaint code beside another code keeps the complaint (and adds the finding)."""
    raw = condition(codes=[(ICD10CM, "G25.81"), (ICD10CM, "D50.9")], text="restless legs")
    found = facts(raw, terminology, library)
    assert [(c.region, c.coded_restless) for c in complaints(found)] == [("legs", True)]
    assert [(f.category, f.region) for f in findings(found)] == [("secondary_cause", "legs")]


def test_skin_lesion_belongs_to_the_region_it_is_stated_for(
    terminology: Terminology, library: PhraseLibrary
) -> None:
    """Regression (cds.facts.conditions.condition_facts): skin_lesion is read from the whole
    Condition and set on the complaint of every region it names, so eczema noted on the
    legs gives the back complaint skin_lesion too, and rule 25's skin_explanation for
    "back" silences the restless back cards. Only the legs are explained by the eczema."""
    raw = condition(
        text="Back itching when lying down, relieved by walking",
        notes=["Eczema on both legs."],
    )
    found = {c.region: c.skin_lesion for c in complaints(facts(raw, terminology, library))}
    assert found["back"] is False
