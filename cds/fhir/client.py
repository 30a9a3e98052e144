"""The FHIR-server fallback: required prefetch the EHR did not send is fetched from
``fhirServer`` with the hook's access token (#fhir-resource-access).

``records.collect_record`` applies the prefetch policy (an absent key or an
OperationOutcome must be fetched, ``null`` means no data); this module does the fetching
beforehand, so the route calls ``complete_prefetch`` and then evaluates as usual. A search
that comes back paged (fetched, or sent that way in the prefetch) is followed to its last
page and merged, because the rules read negations ("no akathisia on record") that a
partial list would make wrong; for the same reason a key whose pages exceed the bounds is
reported unavailable rather than truncated. The entry bound holds for every page, a lone
page included, and is checked while a large page streams in.

Every URL is normalised (``normalised``: encoded dot segments resolved, ambiguous paths
refused) before it is compared with the allowlist by whole segments, and the normalised
URL is the one requested; next links pass the same check.

Everything that can go wrong with a remote server (no ``fhirServer``, a server off the
allowlist, 401/403/404/5xx, a timeout, a refused connection, a body that is not a FHIR
resource, a next link to another origin) ends in ``PrefetchUnavailableError`` naming the
keys, which the hooks layer answers with 412.

The access token is transient: it lives in one call's request headers and nowhere else.
It is never put on the shared ``httpx.AsyncClient``, never logged (logs carry key names,
page counts and status codes, not URLs, which hold patient ids) and never put in an
exception message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import ijson
import orjson

from cds.errors import PrefetchUnavailableError
from cds.fhir._templates import render_template
from cds.fhir.recall import CallRecall, OptionalRecall
from cds.settings import Settings

__all__ = [
    "DEFAULT_POLICY",
    "FetchPolicy",
    "complete_prefetch",
    "fetch_policy",
    "keys_to_complete",
]

log = logging.getLogger("cds.fhir")

FHIR_JSON = "application/fhir+json"
_SCHEMES = ("http", "https")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalised(url: httpx.URL) -> httpx.URL | None:
    """``url`` with its dot segments resolved, percent-encoded ones (``%2e%2e``) included,
    or None when its path is ambiguous: an encoded ``/`` or a backslash in a segment
    (servers disagree on them), or ``..`` above the root.

    httpx resolves literal ``..`` but sends ``%2e%2e`` as it is, and the server decodes
    and resolves it: ``<allowed>/%2e%2e/%2e%2e/other/fhir`` reached a path outside the
    allowed base with the bearer token. Every URL is normalised before it is compared
    and the normalised one is what is requested.
    """
    raw_path, query_mark, query = url.raw_path.decode("ascii").partition("?")
    kept: list[str] = []
    for segment in raw_path.split("/")[1:]:
        decoded = unquote(segment)
        if "/" in decoded or "\\" in decoded:
            return None
        if decoded == ".":
            continue
        if decoded == "..":
            if not kept:
                return None
            kept.pop()
            continue
        kept.append(segment)
    path = "/" + "/".join(kept)
    return url.copy_with(raw_path=(path + query_mark + query).encode("ascii"))


def _http_url(value: str) -> httpx.URL | None:
    """``value`` as an absolute, normalised http(s) URL without credentials, query or
    fragment."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return None
    if url.scheme not in _SCHEMES or not url.host:
        return None
    if url.userinfo or url.query or url.fragment:
        return None
    return normalised(url)


@dataclass(frozen=True)
class FetchPolicy:
    """How far the fallback may go; one per app, built from the settings.

    ``allowed_servers`` lists base-URL prefixes (``https://ehr.example.org/fhir``) a
    ``fhirServer`` must fall under, compared by scheme, host, port and whole path
    segments; ``None`` allows any http(s) server, an empty tuple turns the fallback off.
    ``request_timeout`` bounds one HTTP request end to end (connect, headers, body);
    ``overall_timeout`` bounds the whole completion, all keys and pages together;
    ``optional_timeout`` bounds an optional key (the labs): the clinician is waiting, and
    the advice stands without it.
    """

    allowed_servers: tuple[str, ...] | None = None
    connect_timeout: float = 1.0
    request_timeout: float = 3.0
    overall_timeout: float = 8.0
    optional_timeout: float = 0.5
    max_pages: int = 10
    max_entries: int = 1000
    max_concurrency: int = 4
    max_response_bytes: int = 10_000_000

    def __post_init__(self) -> None:
        timeouts = (
            self.connect_timeout,
            self.request_timeout,
            self.overall_timeout,
            self.optional_timeout,
        )
        if min(timeouts) <= 0:
            raise ValueError("FetchPolicy timeouts must be positive")
        bounds = (self.max_pages, self.max_entries, self.max_concurrency, self.max_response_bytes)
        if min(bounds) < 1:
            raise ValueError("FetchPolicy bounds must be at least 1")
        for prefix in self.allowed_servers or ():
            if _http_url(prefix) is None:
                raise ValueError(f"allowed FHIR server is not a plain http(s) URL: {prefix!r}")

    def allows(self, url: httpx.URL) -> bool:
        """Whether ``url`` is on the allowlist (always, when there is none)."""
        if self.allowed_servers is None:
            return True
        return any(_under(url, prefix) for prefix in self.allowed_servers)


DEFAULT_POLICY = FetchPolicy()

_COUNT_ENTRIES_FROM_BYTES = 32 * 1024
"""A page this small is parsed whole and its entries counted after; past it, entries are
counted while the body streams in, so a page of 50,000 entries is refused after reading
about as many bytes as the entry bound's worth, not parsed whole into memory first."""


class _EntryCounter:
    """Counts a Bundle's top-level ``entry`` items as the body streams in (ijson, yajl C
    backend); raises ``_KeyUnavailableError`` past ``limit`` or on text that is not JSON."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        sink = self._sink()
        next(sink)  # a generator takes values only once started
        self._parser = ijson.parse_coro(sink)

    def _sink(self) -> Generator[None, tuple[str, str, object], None]:
        while True:
            prefix, event, _ = yield
            if event == "start_map" and prefix == "entry.item":
                self.count += 1
                if self.count > self.limit:
                    raise _KeyUnavailableError(f"more than {self.limit} entries in one page")

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.send(chunk)
        except ijson.JSONError:
            raise _KeyUnavailableError("response is not JSON") from None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _segments(url: httpx.URL) -> list[str]:
    """The decoded path segments, without the empty one a trailing ``/`` leaves."""
    raw_path = url.raw_path.decode("ascii").partition("?")[0]
    segments = [unquote(s) for s in raw_path.split("/")[1:]]
    return segments[:-1] if segments and segments[-1] == "" else segments


def _under(url: httpx.URL, prefix: str | httpx.URL) -> bool:
    """Same scheme, host and port, and the prefix's path segments begin the URL's, each
    equal (never a string prefix: ``/fhir`` does not allow ``/fhir-other``). Both are
    normalised first; a URL that cannot be is under nothing."""
    allowed = normalised(httpx.URL(prefix) if isinstance(prefix, str) else prefix)
    target = normalised(url)
    if allowed is None or target is None or _origin(target) != _origin(allowed):
        return False
    base, path = _segments(allowed), _segments(target)
    return path[: len(base)] == base


def _is_error(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


def _next_link(value: Any) -> str | None:
    """The ``next`` page URL of a Bundle, if it has one."""
    if not isinstance(value, Mapping) or value.get("resourceType") != "Bundle":
        return None
    links = value.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None


def keys_to_complete(prefetch: Mapping[str, Any] | None, required: Sequence[str]) -> list[str]:
    """The required keys the fallback has work for: absent, an OperationOutcome (the
    EHR's query failed), or a Bundle with a next page. ``null`` is "no data": none."""
    prefetch = prefetch or {}
    return [
        key
        for key in required
        if key not in prefetch or _is_error(prefetch[key]) or _next_link(prefetch[key])
    ]


class _KeyUnavailableError(Exception):
    """One key cannot be completed; ``reason`` is safe to log (no URL, no token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _expected_type(query: str) -> str:
    """``Type/id`` is a read of that type; anything else is a search: a Bundle."""
    path, query_mark, _ = query.partition("?")
    parts = path.split("/")
    if not query_mark and len(parts) == 2 and parts[1][:1] not in ("", "$", "_"):
        return parts[0]
    return "Bundle"


def _entries(bundle: Mapping[str, Any]) -> list[Any]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise _KeyUnavailableError("Bundle entry is not a list")
    return entries


def _resource(body: bytes, expected: str) -> dict[str, Any]:
    """Parse a response body; it must be a FHIR resource of the expected type."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _KeyUnavailableError("response is not JSON") from None
    if not isinstance(value, dict) or value.get("resourceType") != expected:
        raise _KeyUnavailableError(f"response is not a FHIR {expected}")
    if expected == "Bundle":
        _entries(value)
    return value


class _Call:
    """One completion: the server, the token-bearing headers, the concurrency bound.

    Made per call and dropped with it, so the token never outlives the hook request.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        base: httpx.URL,
        access_token: str | None,
        policy: FetchPolicy,
    ) -> None:
        self.client = client
        self.base = base
        self.policy = policy
        self.headers = {"Accept": FHIR_JSON}
        if access_token:
            self.headers["Authorization"] = f"Bearer {access_token}"
        self.timeout = httpx.Timeout(policy.request_timeout, connect=policy.connect_timeout)
        self.slots = asyncio.Semaphore(policy.max_concurrency)

    def checked(self, url: httpx.URL, *, under_base: bool) -> httpx.URL:
        """The normalised ``url`` if the token may go there: under the ``fhirServer``
        base (a query), or on its origin and the allowlist (a next link)."""
        target = normalised(url)
        if target is None:
            raise _KeyUnavailableError("URL path is ambiguous (encoded / or \\, or .. above /)")
        if _origin(target) != _origin(self.base):
            raise _KeyUnavailableError("URL leaves the FHIR server's origin")
        if under_base and not _under(target, self.base):
            raise _KeyUnavailableError("URL leaves the fhirServer base path")
        if not self.policy.allows(target):
            raise _KeyUnavailableError("URL is not on the allowlist")
        return target

    async def get(self, key: str, url: httpx.URL, expected: str) -> dict[str, Any]:
        async with self.slots:
            try:
                async with asyncio.timeout(self.policy.request_timeout):
                    body = await self._body(key, url)
            except (TimeoutError, httpx.TimeoutException):
                raise _KeyUnavailableError("request timed out") from None
            except httpx.HTTPError as exc:
                raise _KeyUnavailableError(f"request failed ({type(exc).__name__})") from None
        resource = _resource(body, expected)
        if expected == "Bundle" and len(_entries(resource)) > self.policy.max_entries:
            # every page, not only a paged search: one page with no next link is bounded too
            raise _KeyUnavailableError(f"more than {self.policy.max_entries} entries in one page")
        return resource

    async def _body(self, key: str, url: httpx.URL) -> bytes:
        # redirects are not followed: a 3xx could send the token to another host
        async with self.client.stream(
            "GET", url, headers=self.headers, timeout=self.timeout, follow_redirects=False
        ) as response:
            log.debug("prefetch %s: HTTP %d", key, response.status_code)
            if response.status_code != 200:
                raise _KeyUnavailableError(f"HTTP {response.status_code}")
            chunks, size = [], 0
            counter: _EntryCounter | None = None
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.policy.max_response_bytes:
                    raise _KeyUnavailableError(
                        f"response over {self.policy.max_response_bytes} bytes"
                    )
                chunks.append(chunk)
                if counter is not None:
                    counter.feed(chunk)
                elif size > _COUNT_ENTRIES_FROM_BYTES:
                    counter = _EntryCounter(self.policy.max_entries)
                    for earlier in chunks:
                        counter.feed(earlier)
        return b"".join(chunks)

    def page_url(self, link: str) -> httpx.URL:
        """A next link, resolved against the base; only on the ``fhirServer`` origin and
        under an allowed server, checked as the ``fhirServer`` itself is."""
        try:
            url = self.base.join(link)
        except httpx.InvalidURL:
            raise _KeyUnavailableError("next link is not a URL") from None
        if url.scheme not in _SCHEMES or url.userinfo:
            raise _KeyUnavailableError("next link is not a plain http(s) URL")
        return self.checked(url, under_base=False)

    async def fetch(self, key: str, query: str) -> Any:
        try:
            url = httpx.URL(str(self.base) + query.lstrip("/"))
        except httpx.InvalidURL:
            raise _KeyUnavailableError("the rendered template is not a URL") from None
        first = await self.get(key, self.checked(url, under_base=True), _expected_type(query))
        return await self.remaining_pages(key, first)

    async def remaining_pages(self, key: str, first: Mapping[str, Any]) -> Any:
        """``first`` with the entries of every following page, in one Bundle."""
        link = _next_link(first)
        if link is None:
            return first
        entries: list[Any] = []
        seen: set[str] = set()
        pages = 0
        page: Mapping[str, Any] = first
        while True:
            pages += 1
            for entry in _entries(page):
                full_url = entry.get("fullUrl") if isinstance(entry, Mapping) else None
                if isinstance(full_url, str):
                    if full_url in seen:
                        continue  # an _include'd resource repeated on several pages
                    seen.add(full_url)
                entries.append(entry)
            if len(entries) > self.policy.max_entries:
                raise _KeyUnavailableError(f"more than {self.policy.max_entries} entries")
            if link is None:
                break
            if pages >= self.policy.max_pages:
                raise _KeyUnavailableError(f"more than {self.policy.max_pages} pages")
            page = await self.get(key, self.page_url(link), "Bundle")
            link = _next_link(page)
        log.debug("prefetch %s: %d pages merged", key, pages)
        merged = {k: v for k, v in first.items() if k not in ("link", "entry")}
        merged["entry"] = entries
        return merged


def _server_base(fhir_server: str | None, policy: FetchPolicy) -> httpx.URL | str:
    """The base URL (path ending in ``/``) to resolve queries against, or why not.

    Remembered for short values (an EHR has one or a few servers, each parsed on every
    call otherwise: ~0.1 ms of a 0.8 ms call; ``httpx.URL`` is immutable); a long value
    is parsed each time, so hostile ones cannot fill memory."""
    if fhir_server is not None and len(fhir_server) <= _REMEMBERED_URL_LENGTH:
        return _remembered_base(fhir_server, policy)
    return _parsed_base(fhir_server, policy)


_REMEMBERED_URL_LENGTH = 512


@functools.lru_cache(maxsize=64)
def _remembered_base(fhir_server: str, policy: FetchPolicy) -> httpx.URL | str:
    return _parsed_base(fhir_server, policy)


def _parsed_base(fhir_server: str | None, policy: FetchPolicy) -> httpx.URL | str:
    if not fhir_server:
        return "no fhirServer in the request"
    url = _http_url(fhir_server)
    if url is None:
        return "fhirServer is not a plain http(s) URL (or its path is ambiguous)"
    if not policy.allows(url):
        return "fhirServer is not on the allowlist"
    # rebuilt from the raw path: decoding and re-encoding would turn %252e into %2e
    return url.copy_with(raw_path=url.raw_path.rstrip(b"/") + b"/")


async def complete_prefetch(
    client: httpx.AsyncClient,
    *,
    fhir_server: str | None,
    access_token: str | None,
    context: Mapping[str, Any],
    templates: Mapping[str, str],
    required: Sequence[str],
    prefetch: Mapping[str, Any] | None,
    policy: FetchPolicy = DEFAULT_POLICY,
    optional: Sequence[str] = (),
    recall: OptionalRecall | None = None,
) -> dict[str, Any]:
    """A copy of ``prefetch`` in which every required key that was absent or an
    OperationOutcome holds what the FHIR server returns for its template (a read's
    resource, a search's Bundle, all pages merged), and every required Bundle with a
    next link holds all its pages. Other keys are left as they were.

    Raises ``PrefetchUnavailableError`` naming each required key that cannot be completed;
    when that is known before any request (no usable ``fhirServer``, a template token the
    context lacks), no request is made. An ``optional`` key is completed the same way
    when it can be, within ``policy.optional_timeout``, and from ``recall`` when this
    worker fetched it lately; when it cannot be (or its server failed lately), it is left
    out of the result (a partial list would read as "not on record") and the call goes on.
    """
    result = dict(prefetch or {})
    keys = keys_to_complete(result, required)
    extra = [k for k in keys_to_complete(result, optional) if k not in keys]
    if not keys and not extra:
        return result
    base = _server_base(fhir_server, policy)
    if isinstance(base, str):
        if not keys:
            log.info("optional prefetch %s left out: %s", ", ".join(extra), base)
            return _without(result, extra)
        log.warning("prefetch %s unavailable: %s", ", ".join(keys), base)
        raise PrefetchUnavailableError(keys)
    result, extra = _optional_ready(result, extra, templates, context)
    queries, unresolved = _queries(keys + extra, result, templates, context)
    if unresolved:
        log.warning(
            "prefetch %s unavailable: no template or a token missing from the context",
            ", ".join(unresolved),
        )
        raise PrefetchUnavailableError(unresolved)
    memory = recall.for_call(str(base), access_token) if recall is not None else None
    if memory is not None and extra:
        extra = _recalled(memory, result, extra, queries)
    if not keys and not extra:
        return result
    call = _Call(client, base, access_token, policy)
    jobs = {key: _job(call, key, queries.get(key), result.get(key)) for key in keys}
    for key in extra:
        job = _job(call, key, queries.get(key), result.get(key))
        jobs[key] = _within(job, policy.optional_timeout)
    fetched, failed = await _run(jobs, policy.overall_timeout)
    if failed - set(extra):
        raise PrefetchUnavailableError([k for k in keys if k in failed and k not in extra])
    if memory is not None:
        _remember(memory, extra, queries, fetched)
    result.update(fetched)
    result = _without(result, [key for key in extra if key in failed])
    log.info("prefetch fallback completed %s", ", ".join(k for k in jobs if k in fetched))
    return result


def _queries(
    keys: Sequence[str],
    result: Mapping[str, Any],
    templates: Mapping[str, str],
    context: Mapping[str, Any],
) -> tuple[dict[str, str], list[str]]:
    """The rendered query of each key that is not a paged Bundle to continue, and the
    keys that have neither."""
    queries: dict[str, str] = {}
    unresolved = []
    for key in keys:
        if _next_link(result.get(key)):
            continue
        template = templates.get(key)
        query = render_template(template, context) if template is not None else None
        if query is None:
            unresolved.append(key)
        else:
            queries[key] = query
    return queries, unresolved


def _job(call: _Call, key: str, query: str | None, given: Any) -> Coroutine[Any, Any, Any]:
    return call.fetch(key, query) if query is not None else call.remaining_pages(key, given)


async def _within(job: Coroutine[Any, Any, Any], seconds: float) -> Any:
    """``job``, or ``_KeyUnavailableError`` past ``seconds`` (an optional key's budget)."""
    try:
        async with asyncio.timeout(seconds):
            return await job
    except TimeoutError:
        raise _KeyUnavailableError(f"optional, over its {seconds:.1f} s budget") from None


def _recalled(
    memory: CallRecall, result: dict[str, Any], extra: list[str], queries: Mapping[str, str]
) -> list[str]:
    """Fill ``result`` with the optional answers this worker remembers; the optional keys
    still to fetch. While the server rests after a failure, none: they are left out."""
    if memory.resting():
        log.debug("optional prefetch %s left out: the server failed lately", ", ".join(extra))
        for key in extra:
            result.pop(key, None)
        return []
    still = []
    for key in extra:
        known = memory.answer(queries[key]) if key in queries else None
        if known is None:
            still.append(key)
        else:
            result[key] = known
    return still


def _remember(
    memory: CallRecall, extra: Sequence[str], queries: Mapping[str, str], fetched: Mapping[str, Any]
) -> None:
    for key in extra:
        if key not in fetched:
            memory.failed()
        elif key in queries:
            memory.remember(queries[key], fetched[key])


def _without(prefetch: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """``prefetch`` without ``keys``: optional data that could not be completed."""
    return {k: v for k, v in prefetch.items() if k not in keys}


def _optional_ready(
    result: dict[str, Any],
    extra: list[str],
    templates: Mapping[str, str],
    context: Mapping[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    """The optional keys that can be fetched (a template whose tokens the context has,
    or a next page); the others are left out of the result."""
    ready = [
        key
        for key in extra
        if _next_link(result.get(key))
        or (key in templates and render_template(templates[key], context) is not None)
    ]
    return _without(result, [k for k in extra if k not in ready]), ready


async def _run(
    jobs: Mapping[str, Coroutine[Any, Any, Any]], timeout: float
) -> tuple[dict[str, Any], set[str]]:
    """Run one coroutine per key within ``timeout``; their values and the failed keys.

    Every task is cancelled on the way out, so nothing keeps running (or keeps the
    token) after the hook request has its answer or is itself cancelled.
    """
    tasks = {key: asyncio.create_task(job) for key, job in jobs.items()}
    try:
        await asyncio.wait(tasks.values(), timeout=timeout)
    finally:
        unfinished = [t for t in tasks.values() if not t.done()]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
    fetched: dict[str, Any] = {}
    failed: set[str] = set()
    unexpected: BaseException | None = None
    for key, task in tasks.items():
        if task.cancelled():
            log.warning("prefetch %s unavailable: over %.1f s in all", key, timeout)
            failed.add(key)
        elif isinstance(error := task.exception(), _KeyUnavailableError):
            log.warning("prefetch %s unavailable: %s", key, error.reason)
            failed.add(key)
        elif error is not None:
            unexpected = unexpected or error
        else:
            fetched[key] = task.result()
    if unexpected is not None:
        raise unexpected  # a bug, not a remote failure: let it be a 500
    return fetched, failed


def fetch_policy(settings: Settings) -> FetchPolicy:
    """The FHIR-server fallback's limits, from the one settings object."""
    allowed = (
        None if settings.fhir_allowed_servers is None else tuple(settings.fhir_allowed_servers)
    )
    return FetchPolicy(
        allowed_servers=allowed,
        connect_timeout=settings.fhir_connect_timeout_seconds,
        request_timeout=settings.fhir_request_timeout_seconds,
        overall_timeout=settings.fhir_overall_timeout_seconds,
        optional_timeout=settings.fhir_optional_timeout_seconds,
        max_pages=settings.fhir_max_pages,
        max_entries=settings.fhir_max_entries,
        max_concurrency=settings.fhir_max_concurrency,
    )
