"""Condition -> complaint and finding facts.

A Condition counts only while it is current: clinicalStatus active, recurrence or
relapse (a Condition with no clinicalStatus counts unless it has an abatement), and
verificationStatus neither refuted nor entered-in-error. Back and limb complaints become
``complaint`` facts with the IRLSSG features their text states (and the akathisia and
skin-lesion signs it states or denies); other coded conditions in our value sets
(akathisia, skin lesions, secondary causes, sleep, agitation) become ``finding`` facts,
with the body region their text names, and never complaints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cds.facts.model import ComplaintFact, FindingFact, epoch_day
from cds.facts.phrases import PhraseBook
from cds.facts.terminology import ConditionConcept, Terminology

__all__ = ["condition_facts", "is_candidate", "is_current"]

CURRENT_CLINICAL = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
COMPLAINT_CATEGORIES = {
    "restless_syndrome": "legs",
    "back_complaint": "back",
    "limb_complaint": "limbs",
    "sensory_complaint": "unspecified",
}
_RESTLESS_CATEGORY = "restless_syndrome"


def _status_codes(value: Any) -> set[str]:
    if not isinstance(value, Mapping):
        return set()
    codings = [c for c in value.get("coding") or [] if isinstance(c, Mapping)]
    return {c["code"] for c in codings if isinstance(c.get("code"), str)}


def is_current(resource: Mapping[str, Any]) -> bool:
    """Whether a raw Condition describes something the patient has now."""
    if _status_codes(resource.get("verificationStatus")) & EXCLUDED_VERIFICATION:
        return False
    clinical = _status_codes(resource.get("clinicalStatus"))
    if clinical:
        return bool(clinical & CURRENT_CLINICAL)
    return not any(key.startswith("abatement") for key in resource)


def _concept_texts(concept: Any) -> list[Any]:
    if not isinstance(concept, Mapping):
        return []
    codings = [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    return [concept.get("text"), *(c.get("display") for c in codings)]


def _texts(resource: Mapping[str, Any]) -> list[str]:
    """Code text and displays, body-site text and notes: what a clinician wrote."""
    texts = _concept_texts(resource.get("code"))
    for site in resource.get("bodySite") or []:
        texts.extend(_concept_texts(site))
    texts.extend(n.get("text") for n in resource.get("note") or [] if isinstance(n, Mapping))
    return [t for t in texts if isinstance(t, str) and t]


def _concepts(resource: Mapping[str, Any], terminology: Terminology) -> list[ConditionConcept]:
    code = resource.get("code")
    if not isinstance(code, Mapping):
        return []
    found = []
    for coding in code.get("coding") or []:
        if isinstance(coding, Mapping):
            concept = terminology.condition(coding.get("system"), coding.get("code"))
            if concept is not None:
                found.append(concept)
    return found


def is_candidate(
    resource: Mapping[str, Any], terminology: Terminology, phrases: PhraseBook
) -> bool:
    """Worth validating: current, and coded in our value sets or naming a body region."""
    if not is_current(resource):
        return False
    if _concepts(resource, terminology):
        return True
    texts = _texts(resource)
    return phrases.mentions_region(*texts) and bool(phrases.read(*texts).regions)


def condition_facts(
    condition: Any,
    raw: Mapping[str, Any],
    terminology: Terminology,
    phrases: PhraseBook,
) -> Iterable[ComplaintFact | FindingFact]:
    """Facts from one validated R4B Condition (``raw`` is the same resource as JSON)."""
    source = f"Condition/{condition.id}" if condition.id else "Condition"
    onset = _onset_day(condition)
    texts = _texts(raw)
    display = texts[0] if texts else "condition"
    concepts = _concepts(raw, terminology)
    complaint_regions = {
        COMPLAINT_CATEGORIES[c.category] for c in concepts if c.category in COMPLAINT_CATEGORIES
    }
    read = phrases.read(*texts)
    for concept in concepts:
        if concept.category not in COMPLAINT_CATEGORIES:
            for region in sorted(read.regions) or ["unspecified"]:
                yield FindingFact(concept.category, concept.concept, region, display, source, onset)
    coded_otherwise = bool(concepts) and not complaint_regions
    regions = set(read.regions) or complaint_regions
    if coded_otherwise or not regions:
        return  # a Condition coded as akathisia, a rash, ... is that, not a complaint
    coded_restless = any(c.category == _RESTLESS_CATEGORY for c in concepts)
    for region in sorted(regions):
        yield ComplaintFact(
            region=region,
            coded_restless=coded_restless,
            rest_provoked="rest_provoked" in read.features,
            relieved_by_movement="relieved_by_movement" in read.features,
            night_worse="night_worse" in read.features,
            unpleasant_sensation="unpleasant_sensation" in read.features,
            urge_to_move="urge_to_move" in read.features,
            not_relieved_by_movement="relieved_by_movement" in read.denied,
            inner_restlessness="inner_restlessness" in read.features,
            skin_lesion=read.stated_for("skin_lesion", region),
            display=display,
            source=source,
            onset_day=onset,
        )


def _onset_day(condition: Any) -> int | None:
    if condition.onsetDateTime is not None:
        return epoch_day(condition.onsetDateTime)
    if condition.onsetPeriod is not None and condition.onsetPeriod.start is not None:
        return epoch_day(condition.onsetPeriod.start)
    return epoch_day(condition.recordedDate)
