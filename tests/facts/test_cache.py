"""The per-resource fact cache: a warm cache reads exactly what a cold one does, and no
reading is ever served to another patient, another day or another rules version."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from cds.engine import approximate_size
from cds.facts import ComplaintFact, Extraction, Knowledge, MedicationFact, extract_facts
from cds.facts.cache import FactCache, Outcome
from cds.facts.model import LabFact
from cds.facts.validation import validate_observation
from cds.fhir import PatientRecord, collect_record
from cds.hooks import SERVICES, evaluate, parse_request
from cds.rulebase import load_rulebase
from cds.settings import bundled_rules_dir
from tests.conftest import EXAMPLES, for_patient, load_example
from tests.facts.fhir_builders import dose, medication_request

TODAY = dt.date(2026, 11, 20)
REQUIRED = ["medications", "conditions"]


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return Knowledge.load(bundled_rules_dir())


REQUESTS = sorted(p for p in EXAMPLES.glob("*.json") if not p.name.endswith(".expected.json"))


def _record(body: dict[str, Any]) -> PatientRecord:
    return collect_record(
        body["context"].get("draftOrders"),
        body["prefetch"],
        REQUIRED,
        patient_id=body["context"]["patientId"],
    )


def _summary(out: Extraction) -> tuple[Any, ...]:
    return (out.facts, out.issues, out.validated, out.skipped, out.left_out)


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_a_warm_cache_reads_every_example_as_a_cold_one(knowledge: Knowledge, path: Path) -> None:
    body = load_example(path.name)
    record = _record(body)
    uncached = extract_facts(record, knowledge, TODAY)
    cache = FactCache("v1")
    scope = cache.scope(body["context"]["patientId"], TODAY)
    first = extract_facts(record, knowledge, TODAY, scope)
    second = extract_facts(record, knowledge, TODAY, scope)
    assert _summary(first) == _summary(uncached)
    assert _summary(second) == _summary(uncached)
    assert cache.hits >= len(record.draft_orders) + len(record.medication_requests)


def test_keys_differ_by_patient_day_rules_version_and_kind() -> None:
    resource = medication_request(text="amisulpride 200 mg", dosages=[dose(200)])
    keys = {
        FactCache("v1").scope("p1", TODAY).key("order", resource),
        FactCache("v1").scope("p2", TODAY).key("order", resource),
        FactCache("v1").scope("p1", TODAY + dt.timedelta(days=1)).key("order", resource),
        FactCache("v2").scope("p1", TODAY).key("order", resource),
        FactCache("v1").scope("p1", TODAY).key("draft", resource),
    }
    assert len(keys) == 5


def test_same_content_for_another_patient_is_read_afresh(knowledge: Knowledge) -> None:
    """A draft order without a subject is the same JSON for every patient: the cache must
    not hand patient A's reading to patient B."""
    body = load_example("restless-back-amisulpride.json")
    del body["context"]["draftOrders"]["entry"][0]["resource"]["subject"]
    other = for_patient(body, "someone-else")
    cache = FactCache("v1")
    extract_facts(_record(body), knowledge, TODAY, cache.scope("rbs-50m", TODAY))
    hits = cache.hits
    out = extract_facts(_record(other), knowledge, TODAY, cache.scope("someone-else", TODAY))
    assert cache.hits == hits  # nothing of the first patient's was served
    assert _summary(out) == _summary(extract_facts(_record(other), knowledge, TODAY))


def test_a_new_day_reads_dates_again(knowledge: Knowledge) -> None:
    """An order starting tomorrow is planned today and taken tomorrow."""
    tomorrow = TODAY + dt.timedelta(days=1)
    order = medication_request(
        text="amisulpride 200 mg", dosages=[dose(200)], authoredOn=tomorrow.isoformat()
    )
    record = PatientRecord(medication_requests=[order])
    cache = FactCache("v1")
    (today_fact,) = extract_facts(record, knowledge, TODAY, cache.scope("p", TODAY)).facts
    (next_fact,) = extract_facts(record, knowledge, tomorrow, cache.scope("p", tomorrow)).facts
    assert isinstance(today_fact, MedicationFact)
    assert isinstance(next_fact, MedicationFact)
    assert (today_fact.planned, next_fact.planned) == (True, False)


def test_an_order_is_read_again_when_its_medication_changed(knowledge: Knowledge) -> None:
    order = medication_request(medicationReference={"reference": "Medication/m1"})

    def record(drug: str) -> PatientRecord:
        medication = {"resourceType": "Medication", "id": "m1", "code": {"text": drug}}
        return PatientRecord(medication_requests=[order], medications={"Medication/m1": medication})

    scope = FactCache("v1").scope("p", TODAY)
    first = extract_facts(record("amisulpride 200 mg tablet"), knowledge, TODAY, scope)
    second = extract_facts(record("atorvastatin 20 mg tablet"), knowledge, TODAY, scope)
    assert [f.ingredient for f in first.facts if isinstance(f, MedicationFact)] == ["amisulpride"]
    assert second.facts == []


def test_a_reading_is_served_only_while_the_text_budget_covers_it() -> None:
    cache = FactCache("v1")
    scope = cache.scope("p", TODAY)
    resource = {"resourceType": "Condition", "id": "c"}
    key = scope.key("condition", resource)
    scope.put(key, Outcome(text_charged=100))
    assert scope.condition(key, remaining_text=99) is None
    assert scope.condition(key, remaining_text=100) == Outcome(text_charged=100)


def test_the_cache_is_bounded_least_recently_used_out() -> None:
    cache = FactCache("v1", max_entries=3)
    scope = cache.scope("p", TODAY)
    keys = [_key(scope.key("order", {"id": str(i)})) for i in range(5)]
    for key in keys[:3]:
        scope.put(key, Outcome())
    assert cache.get(keys[0]) is not None  # now the most recently used
    for key in keys[3:]:
        scope.put(key, Outcome())
    assert len(cache) == 3
    assert cache.get(keys[0]) is not None
    assert cache.get(keys[1]) is None
    assert cache.get(keys[2]) is None


def _long_complaint(index: int, characters: int = 100_000) -> Outcome:
    """A reading whose display is a whole 100,000-character note (what a Condition
    without code text and with one long note gives)."""
    fact = ComplaintFact(
        region="back",
        coded_restless=False,
        rest_provoked=True,
        relieved_by_movement=True,
        night_worse=False,
        unpleasant_sensation=True,
        urge_to_move=False,
        not_relieved_by_movement=False,
        inner_restlessness=False,
        skin_lesion=False,
        display=f"{index} " + "restless back when lying down " * (characters // 30),
        source=f"Condition/c{index}",
    )
    return Outcome(facts=(fact,), validated=True, text_charged=characters)


def test_the_cache_is_bounded_by_bytes_as_well_as_entries() -> None:
    """Before the byte bound, 16,384 such readings could keep 1.6 GB alive: here 200 of
    them (20 MB) go into a cache of 1 MiB, which keeps what fits, the latest."""
    cache = FactCache("v1", max_entries=10_000, max_bytes=1024 * 1024)
    scope = cache.scope("p", TODAY)
    keys = [_key(scope.key("condition", {"id": str(i)})) for i in range(200)]
    for index, key in enumerate(keys):
        scope.put(key, _long_complaint(index))
        assert cache.size_bytes <= cache.max_bytes
    kept = approximate_size(cache._entries)  # measured, not the cache's own count
    assert kept <= cache.max_bytes
    assert 5 <= len(cache) <= 10  # ~100 KB each
    assert cache.get(keys[-1]) is not None
    assert cache.get(keys[0]) is None


def test_a_reading_heavier_than_the_byte_bound_is_not_kept() -> None:
    cache = FactCache("v1", max_bytes=50_000)
    scope = cache.scope("p", TODAY)
    small, large = (_key(scope.key("condition", {"id": i})) for i in ("small", "large"))
    scope.put(small, Outcome())
    scope.put(large, _long_complaint(1))
    assert cache.get(large) is None
    assert cache.get(small) == Outcome()  # not evicted for nothing
    assert 0 < cache.size_bytes <= 50_000


def test_the_byte_count_follows_replacements_and_evictions() -> None:
    cache = FactCache("v1", max_entries=2)
    scope = cache.scope("p", TODAY)
    keys = [_key(scope.key("condition", {"id": str(i)})) for i in range(3)]
    for key in keys:
        scope.put(key, _long_complaint(0, 1_000))
        scope.put(key, _long_complaint(0, 1_000))  # the same key again: counted once
    assert cache.size_bytes == sum(
        approximate_size(k) + approximate_size(o) for k, (o, _) in cache._entries.items()
    )


def _key(key: bytes | None) -> bytes:
    assert key is not None
    return key


def test_a_rules_reload_reads_with_the_new_rules(tmp_path: Path) -> None:
    """Same request, same day, same worker: after a value-set edit the cached reading of
    the old rules is not used (each rule base has its own cache, keyed by its version)."""
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules)
    body = load_example("restless-back-amisulpride.json")
    service = SERVICES[f"restless-{body['hook']}"]
    old = load_rulebase(rules)
    try:
        for _ in range(2):  # the second call is served from the cache
            cards = evaluate(
                parse_request(body), service, old, source_label="x", override_system="x"
            )
            assert len(cards.cards) == 1
    finally:
        old.close()
    for table in ("drugs.tsv", "drug_roles.tsv"):  # the loader checks the two agree
        path = rules / "valuesets" / table
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(x for x in lines if not x.startswith("amisulpride\t")), "utf-8")
    brands = rules / "valuesets" / "brands.tsv"
    lines = brands.read_text(encoding="utf-8").splitlines(keepends=True)
    brands.write_text("".join(x for x in lines if "\tamisulpride" not in x), "utf-8")
    new = load_rulebase(rules)
    try:
        assert new.version != old.version
        result = evaluate(parse_request(body), service, new, source_label="x", override_system="x")
        assert [f for f in result.extraction.facts if isinstance(f, MedicationFact)] == []
    finally:
        new.close()


def _ferritin(id_: str, day: str, value: Any) -> dict[str, Any]:
    """A ferritin (LOINC 2276-4, rules/valuesets/labs.tsv) of the labs example, redated."""
    body = load_example("labs-low-ferritin-amisulpride.json")
    resource: dict[str, Any] = copy.deepcopy(body["prefetch"]["observations"]["entry"][0])[
        "resource"
    ]
    resource.update(id=id_, effectiveDateTime=f"{day}T08:00:00Z")
    resource["valueQuantity"]["value"] = value
    return resource


def test_lab_readings_and_verdicts_are_served_from_the_cache(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest ferritin is not valid FHIR (a date element holding a number), so the
    older one is used: the second call reads neither again nor validates either again."""
    newest = _ferritin("new", "2026-11-19", 30)
    newest["issued"] = 20_000
    record = PatientRecord(observations=[newest, _ferritin("old", "2026-10-01", 50)])
    uncached = extract_facts(record, knowledge, TODAY)
    validated: list[str] = []

    def counted(raw: Any, where: str) -> Any:
        validated.append(raw["id"])
        return validate_observation(raw, where)

    monkeypatch.setattr("cds.facts.lab_results.validate_observation", counted)
    cache = FactCache("v1")
    scope = cache.scope("p", TODAY)
    first = extract_facts(record, knowledge, TODAY, scope)
    assert validated == ["new", "old"]
    hits = cache.hits
    second = extract_facts(record, knowledge, TODAY, scope)
    assert validated == ["new", "old"]  # both verdicts remembered
    assert cache.hits == hits + 2
    assert _summary(first) == _summary(second) == _summary(uncached)
    (lab,) = [f for f in second.facts if isinstance(f, LabFact)]
    assert (lab.source, lab.value) == ("Observation/old", 50.0)
    assert [i.where for i in second.issues] == ["prefetch Observation #0"]


def test_a_cached_lab_is_read_again_on_a_new_day(knowledge: Knowledge) -> None:
    record = PatientRecord(observations=[_ferritin("f", "2026-11-19", 30)])
    cache = FactCache("v1")
    tomorrow = TODAY + dt.timedelta(days=1)
    for day, age in ((TODAY, 1), (tomorrow, 2), (TODAY, 1)):
        out = extract_facts(record, knowledge, day, cache.scope("p", day))
        (lab,) = [f for f in out.facts if isinstance(f, LabFact)]
        assert lab.age_days == age


def test_labs_of_another_patient_are_not_served(knowledge: Knowledge) -> None:
    record = PatientRecord(observations=[_ferritin("f", "2026-11-19", 30)])
    cache = FactCache("v1")
    extract_facts(record, knowledge, TODAY, cache.scope("p1", TODAY))
    hits = cache.hits
    extract_facts(record, knowledge, TODAY, cache.scope("p2", TODAY))
    assert cache.hits == hits


def test_a_reading_without_facts_is_weighed_without_the_walk_not_below_it() -> None:
    cache = FactCache("v1")
    scope = cache.scope("p", TODAY)
    key = _key(scope.key("condition", {"id": "skipped"}))
    outcome = Outcome(issue="Condition 3 skipped: not current " * 20)
    scope.put(key, outcome)
    walked = approximate_size(key) + approximate_size(outcome)
    assert walked <= cache.size_bytes <= walked + 64
