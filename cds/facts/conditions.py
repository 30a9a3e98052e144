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

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cds.facts.model import ComplaintFact, FindingFact, epoch_day
from cds.facts.phrases import PhraseLibrary, TextFeatures
from cds.facts.terminology import ConditionConcept, Terminology

__all__ = [
    "MAX_TEXT_CHARS_PER_REQUEST",
    "MAX_TEXT_CHARS_PER_RESOURCE",
    "TextBudget",
    "condition_facts",
    "is_candidate",
    "is_current",
]

_log = logging.getLogger(__name__)

MAX_TEXT_CHARS_PER_RESOURCE = 100_000
"""Free text read from one Condition (code text, displays, body sites, notes); the rest is
not read. Complaint descriptions are a few sentences; this keeps a pasted document from
costing more than ~0.1 s."""
MAX_TEXT_CHARS_PER_REQUEST = 400_000
"""Free text read from all Conditions of one request together."""

CURRENT_CLINICAL = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
POSSIBLE_VERIFICATION = frozenset({"provisional", "differential"})
COMPLAINT_CATEGORIES = {
    "restless_syndrome": "legs",
    "back_complaint": "back",
    "limb_complaint": "limbs",
    "sensory_complaint": "unspecified",
}
_RESTLESS_CATEGORY = "restless_syndrome"
_AKATHISIA = "inner_restlessness"


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


@dataclass
class TextBudget:
    """How much free text one request may still have read (one per request)."""

    remaining: int = MAX_TEXT_CHARS_PER_REQUEST
    cut: int = 0

    def take(self, texts: list[str]) -> list[str]:
        """``texts`` cut to the per-resource cap and what is left of the request's; each
        cut is logged (sizes only, never the text)."""
        allowed = min(MAX_TEXT_CHARS_PER_RESOURCE, self.remaining)
        total = sum(len(t) for t in texts)
        sizes = [0] * len(texts)
        # shortest first: a pasted document is cut, the code text and short notes are not
        for i in sorted(range(len(texts)), key=lambda i: len(texts[i])):
            sizes[i] = min(len(texts[i]), allowed)
            allowed -= sizes[i]
        kept = [t[:n] for t, n in zip(texts, sizes, strict=True) if n > 0]
        used = sum(sizes)
        self.remaining -= used
        if used < total:
            self.cut += 1
            _log.warning(
                "condition text cut: read %d of %d characters (limits %d a resource, %d a request)",
                used,
                total,
                MAX_TEXT_CHARS_PER_RESOURCE,
                MAX_TEXT_CHARS_PER_REQUEST,
            )
        return kept


def _texts(resource: Mapping[str, Any], budget: TextBudget | None = None) -> list[str]:
    """Code text and displays, body-site text and notes: what a clinician wrote."""
    texts = _concept_texts(resource.get("code"))
    for site in resource.get("bodySite") or []:
        texts.extend(_concept_texts(site))
    texts.extend(n.get("text") for n in resource.get("note") or [] if isinstance(n, Mapping))
    present = [t for t in texts if isinstance(t, str) and t]
    return (budget or TextBudget()).take(present)


def _language(resource: Mapping[str, Any]) -> str | None:
    language = resource.get("language")
    return language if isinstance(language, str) else None


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
    resource: Mapping[str, Any],
    terminology: Terminology,
    phrases: PhraseLibrary,
    budget: TextBudget | None = None,
) -> bool:
    """Worth validating: current, and coded in our value sets or naming a body region."""
    if not is_current(resource):
        return False
    if _concepts(resource, terminology):
        return True
    texts = _texts(resource, budget)
    return _has_subject(phrases.read(*texts, language=_language(resource)))


def _has_subject(read: TextFeatures) -> bool:
    """A body region, or akathisia in words (which names none: "paces all day")."""
    return bool(read.regions) or _AKATHISIA in read.features | read.hedged


def condition_facts(
    condition: Any,
    raw: Mapping[str, Any],
    terminology: Terminology,
    phrases: PhraseLibrary,
    budget: TextBudget | None = None,
) -> Iterable[ComplaintFact | FindingFact]:
    """Facts from one validated R4B Condition (``raw`` is the same resource as JSON)."""
    source = f"Condition/{condition.id}" if condition.id else "Condition"
    onset = _onset_day(condition)
    texts = _texts(raw, budget)
    display = texts[0] if texts else "condition"
    concepts = _concepts(raw, terminology)
    complaint_regions = {
        COMPLAINT_CATEGORIES[c.category] for c in concepts if c.category in COMPLAINT_CATEGORIES
    }
    read = phrases.read(*texts, language=_language(raw))
    possible = bool(_status_codes(raw.get("verificationStatus")) & POSSIBLE_VERIFICATION)
    for concept in concepts:
        if concept.category not in COMPLAINT_CATEGORIES:
            for region in sorted(read.regions) or ["unspecified"]:
                yield FindingFact(
                    concept.category, concept.concept, region, display, source, onset, possible
                )
    coded_otherwise = bool(concepts) and not complaint_regions
    regions = set(read.regions) or complaint_regions
    if not regions and _has_subject(read):
        regions = {"unspecified"}  # akathisia in words names no body region
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
            not_relieved_by_movement=_not_relieved(read),
            inner_restlessness="inner_restlessness" in read.features,
            skin_lesion=read.stated_for("skin_lesion", region),
            display=display,
            source=source,
            onset_day=onset,
            daytime_worse="daytime_worse" in read.features,
            mimic=min(read.mimics, default="none"),
            possible_akathisia=_AKATHISIA in read.hedged,
        )


def _not_relieved(read: TextFeatures) -> bool:
    """Moving is said not to help ("not relieved by walking", "walking doesn't help"),
    and relief is stated nowhere in the resource."""
    if "relieved_by_movement" in read.features:
        return False
    return "relieved_by_movement" in read.denied or "not_relieved_by_movement" in read.features


def _onset_day(condition: Any) -> int | None:
    if condition.onsetDateTime is not None:
        return epoch_day(condition.onsetDateTime)
    if condition.onsetPeriod is not None and condition.onsetPeriod.start is not None:
        return epoch_day(condition.onsetPeriod.start)
    return epoch_day(condition.recordedDate)
