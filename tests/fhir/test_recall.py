"""OptionalRecall: a worker's memory of optional answers and failing servers, on a clock
the test moves (no sleeping)."""

from __future__ import annotations

from cds.fhir.recall import OptionalRecall

BASE = "https://fhir.example.org/r4/"
QUERY = "Observation?patient=p-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_recalled_for_the_same_server_query_and_token() -> None:
    recall = OptionalRecall(60, clock=Clock())
    recall.for_call(BASE, "tok-a").remember(QUERY, {"resourceType": "Bundle"})
    assert recall.for_call(BASE, "tok-a").answer(QUERY) == {"resourceType": "Bundle"}


def test_another_token_server_or_patient_is_not_served_the_answer() -> None:
    recall = OptionalRecall(60, clock=Clock())
    recall.for_call(BASE, "tok-a").remember(QUERY, {"resourceType": "Bundle"})
    assert recall.for_call(BASE, "tok-b").answer(QUERY) is None
    assert recall.for_call(BASE, None).answer(QUERY) is None
    assert recall.for_call("https://other.example.org/r4/", "tok-a").answer(QUERY) is None
    assert recall.for_call(BASE, "tok-a").answer("Observation?patient=p-2") is None


def test_answers_and_resting_servers_are_forgotten_after_the_period() -> None:
    clock = Clock()
    recall = OptionalRecall(60, clock=clock)
    call = recall.for_call(BASE, "tok-a")
    call.remember(QUERY, {"resourceType": "Bundle"})
    call.failed()
    clock.now += 59
    assert call.answer(QUERY) is not None
    assert call.resting()
    clock.now += 2
    assert call.answer(QUERY) is None
    assert not call.resting()


def test_zero_remembers_nothing() -> None:
    recall = OptionalRecall(0, clock=Clock())
    call = recall.for_call(BASE, "tok-a")
    call.remember(QUERY, {"resourceType": "Bundle"})
    call.failed()
    assert call.answer(QUERY) is None
    assert not call.resting()


def test_the_memory_is_bounded() -> None:
    recall = OptionalRecall(60, capacity=8, clock=Clock())
    call = recall.for_call(BASE, "tok-a")
    for i in range(100):
        call.remember(f"Observation?patient=p-{i}", {"i": i})
    kept = [i for i in range(100) if call.answer(f"Observation?patient=p-{i}") is not None]
    assert len(kept) == 8
    assert kept == list(range(92, 100))  # the newest stay


def test_the_token_is_not_kept_in_clear() -> None:
    recall = OptionalRecall(60, clock=Clock())
    call = recall.for_call(BASE, "tok-9f3a7c-never-keep-me")
    call.remember(QUERY, {})
    assert "tok-9f3a7c-never-keep-me" not in repr(vars(call)) + repr(dict(recall._answers))
