"""The fallback's per-page entry bound and URL normalisation, with httpx.MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from cds.errors import PrefetchUnavailableError
from cds.fhir.client import FetchPolicy, complete_prefetch, normalised

BASE = "https://fhir.example.org/r4"
ENTRY = orjson.dumps({"resource": {"resourceType": "Condition", "id": "c", "note": "x" * 100}})


class CountingStream(httpx.AsyncByteStream):
    """A Bundle of ``entries`` entries, sent in 8 KB chunks; counts what was read."""

    def __init__(self, entries: int) -> None:
        head = b'{"resourceType":"Bundle","type":"searchset","entry":['
        self.body = head + b",".join([ENTRY] * entries) + b"]}"
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 8192):
            self.sent += 8192
            yield self.body[start : start + 8192]


def _fetch(stream: CountingStream, policy: FetchPolicy) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await complete_prefetch(
                client,
                fhir_server=BASE,
                access_token=None,
                context={"patientId": "p"},
                templates={"conditions": "Condition?patient={{context.patientId}}"},
                required=["conditions"],
                prefetch={},
                policy=policy,
            )

    asyncio.run(run())


def test_a_huge_page_is_refused_after_reading_about_the_bound_not_the_whole() -> None:
    """Regression: one page of 50,000 entries and no next link was read and parsed whole."""
    stream = CountingStream(50_000)
    with pytest.raises(PrefetchUnavailableError):
        _fetch(stream, FetchPolicy(max_entries=1000, max_response_bytes=50_000_000))
    assert stream.sent < len(ENTRY) * 1100 + 16_384
    assert stream.sent < len(stream.body) / 20


def test_a_page_at_the_bound_is_read_whole() -> None:
    stream = CountingStream(1000)
    _fetch(stream, FetchPolicy(max_entries=1000))
    assert stream.sent >= len(stream.body)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h.org/r4/%2e%2e/other", "https://h.org/other"),
        ("https://h.org/r4/%2E/x/%2e%2E/y", "https://h.org/r4/y"),
        ("https://h.org/r4/a%20b", "https://h.org/r4/a%20b"),
        ("https://h.org/%2e%2e/x", None),
        ("https://h.org/r4/a%2fb", None),
        ("https://h.org/r4/a%5Cb", None),
    ],
)
def test_normalised(url: str, expected: str | None) -> None:
    result = normalised(httpx.URL(url))
    assert (str(result) if result is not None else None) == expected


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://fhir.example.org/r4/%2e%2e/other", False),
        ("https://fhir.example.org/r4/tenant/%2e%2e", True),
        ("https://fhir.example.org:443/r4", True),
        ("https://fhir.example.org/r4%2f..", False),
        ("https://fhir.example.org/R4", False),
        ("https://fhir.example.org/r4x", False),
    ],
)
def test_the_allowlist_compares_normalised_segments(url: str, allowed: bool) -> None:
    policy = FetchPolicy(allowed_servers=(BASE,))
    target = normalised(httpx.URL(url))
    assert (target is not None and policy.allows(target)) is allowed


def test_server_bases_are_remembered_but_long_hostile_ones_are_not() -> None:
    from cds.fhir.client import _remembered_base, _server_base

    policy = FetchPolicy()
    base = _server_base("https://ehr.example.org/fhir", policy)
    assert base is _server_base("https://ehr.example.org/fhir", policy)
    assert str(base) == "https://ehr.example.org/fhir/"
    before = _remembered_base.cache_info().currsize
    for i in range(100):
        hostile = f"https://ehr.example.org/{'a' * 10_000}{i}"
        assert str(_server_base(hostile, policy)).endswith(f"{i}/")
    assert _remembered_base.cache_info().currsize == before
    denied = FetchPolicy(allowed_servers=("https://other.example.org/fhir",))
    assert _server_base("https://ehr.example.org/fhir", denied) == (
        "fhirServer is not on the allowlist"
    )
