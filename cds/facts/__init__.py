"""FHIR resources -> flat facts: which resources to read (validated with fhir.resources),
drug recognition, dose normalisation, complaint text.

Knows nothing of HTTP or of durable-rules; its facts are frozen dataclasses, turned into
the engine's flat dicts by ``to_engine``.
"""

from cds.facts.aggregate import aggregate_facts
from cds.facts.cache import FactCache, RequestScope
from cds.facts.conditions import TextBudget, condition_facts
from cds.facts.conditions import is_candidate as is_condition_candidate
from cds.facts.dosage import mg_per_day
from cds.facts.extract import Extraction, extract_facts, joined
from cds.facts.json_walk import MAX_DEPTH as MAX_JSON_DEPTH
from cds.facts.json_walk import PathHit, first_hit
from cds.facts.knowledge import Knowledge
from cds.facts.labs import LAB_PREFETCH_KEY, LabCodes
from cds.facts.medications import candidate_drugs, medication_facts
from cds.facts.memo import ChartMemo, ChartReading
from cds.facts.model import (
    FACT_SCHEMA,
    ComplaintFact,
    Fact,
    FindingFact,
    MedicationFact,
    epoch_day,
    to_engine,
)
from cds.facts.phrases import PhraseBook, PhraseFile, PhraseLibrary, TextFeatures
from cds.facts.terminology import Terminology
from cds.facts.validation import validate_condition, validate_medication_request
from cds.facts.valuesets import load_valuesets

__all__ = [
    "FACT_SCHEMA",
    "LAB_PREFETCH_KEY",
    "MAX_JSON_DEPTH",
    "ChartMemo",
    "ChartReading",
    "ComplaintFact",
    "Extraction",
    "Fact",
    "FactCache",
    "FindingFact",
    "Knowledge",
    "LabCodes",
    "MedicationFact",
    "PathHit",
    "PhraseBook",
    "PhraseFile",
    "PhraseLibrary",
    "RequestScope",
    "Terminology",
    "TextBudget",
    "TextFeatures",
    "aggregate_facts",
    "candidate_drugs",
    "condition_facts",
    "epoch_day",
    "extract_facts",
    "first_hit",
    "is_condition_candidate",
    "joined",
    "load_valuesets",
    "medication_facts",
    "mg_per_day",
    "to_engine",
    "validate_condition",
    "validate_medication_request",
]
