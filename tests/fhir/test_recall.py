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


def test_the_memory_is_bounded_by_the_size_of_the_answers() -> None:
    recall = OptionalRecall(60, max_bytes=8_000, clock=Clock())
    call = recall.for_call(BASE, "tok-a")
    answer = {"resourceType": "Bundle", "entry": [{"x": "y" * 900}]}  # ~930 bytes
    for i in range(100):
        call.remember(f"Observation?patient=p-{i}", answer)
    kept = [i for i in range(100) if call.answer(f"Observation?patient=p-{i}") is not None]
    assert 1 <= len(kept) <= 8
    assert kept == list(range(100 - len(kept), 100))  # the newest stay


def test_an_answer_too_big_to_keep_is_fetched_again() -> None:
    recall = OptionalRecall(60, max_bytes=8_000, clock=Clock())
    call = recall.for_call(BASE, "tok-a")
    call.remember(QUERY, {"entry": ["x" * 2_000]})  # over an eighth of the budget
    assert call.answer(QUERY) is None


def test_long_server_urls_cost_no_more_than_short_ones() -> None:
    recall = OptionalRecall(60, max_servers=4, clock=Clock())
    for i in range(50):
        recall.for_call(f"https://x.example.org/{'a' * 100_000}{i}/", None).failed()
    assert len(recall._resting) == 4
    assert all(len(key) == 16 for key in recall._resting)


def test_the_token_is_not_kept_in_clear() -> None:
    recall = OptionalRecall(60, clock=Clock())
    call = recall.for_call(BASE, "tok-9f3a7c-never-keep-me")
    call.remember(QUERY, {})
    assert "tok-9f3a7c-never-keep-me" not in repr(call) + repr(dict(recall._answers))
