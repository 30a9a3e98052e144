"""Global state department: every durable-rules handle, sid pool and ruleset lives here.

durable-rules keeps process-wide C state, so this is the one module allowed module-level
mutable state (see shared/design/DURABLE_RULES.md for each workaround):

- the C module is driven directly; ``durable.lang`` / ``Host`` start timer threads that
  segfault after ``delete_state`` and run actions late;
- sessions are named from a fixed pool of sids whose FNV-1a hashes differ (the engine
  matches sids and fact ids by a 32-bit hash only), at most one request per sid;
- every fact carries a unique ``id`` (duplicates raise MessageObservedException, #250);
- rules are evaluated in strata: each stratum's rules start with a gate condition and the
  gate fact is asserted last, so ``$not`` is order-independent (#94); a lowest-priority
  ``__end__`` rule per stratum asserts the next gate, and the last one proves the batch
  ran to the end (and keeps ``delete_state`` from crashing on a session with no action);
- rulesets are never re-registered under a name (#157): reload registers a new name and
  retires the old one once no session uses it.

``reset()`` retires everything; tests call it so no state leaks between them.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import durable_rules_engine as _dre

from cds.errors import EngineError, EvaluationLimitError

__all__ = [
    "GATE_FACT",
    "MAX_FACTS_PER_SESSION",
    "MAX_FACT_PROPERTIES",
    "ActionHandler",
    "EngineRuleset",
    "checked_value",
    "fnv1a32",
    "live_rulesets",
    "register_ruleset",
    "reset",
]

GATE_FACT = "__gate__"
"""Fact type of the stratum gates; never a rule author's fact type."""

MAX_FACTS_PER_SESSION = 4000
"""Fact ids are ``"1"``..``"4000"``; ``tests/engine`` proves their hashes all differ."""

MAX_FACT_PROPERTIES = 250
"""durable-rules truncates a batch after a fact of 255+ properties, and crashes if more
facts follow it; facts are refused well below that (``sid`` and ``id`` included)."""

SID_POOL_SIZE = 256
"""Concurrent sessions per ruleset (the engine allows 1024)."""

MAX_ENGINE_INT = 2**63 - 1
"""The engine stores integers in 64 bits."""

_SMALLEST_PLAIN_FLOAT = 1e-4
_LARGEST_PLAIN_FLOAT = 1e16
"""Python writes a float outside [1e-4, 1e16) in exponent form (``1e-05``, ``1e+16``);
durable-rules' JSON reader crashes the process (SIGSEGV) or refuses the batch on it."""

_RESULT_OK = 0
_RESULT_NOT_HANDLED = 1
_RESULT_OBSERVED = 2

ActionHandler = Callable[[str, dict[str, dict[str, Any]]], list[dict[str, Any]]]
"""Called for each rule firing with the rule name and its bound facts by alias; returns
derived facts (without ``sid``/``id``) to assert into the same session."""


def fnv1a32(text: str) -> int:
    """The 32-bit FNV-1a hash durable-rules uses to match sids and fact ids."""
    value = 0x811C9DC5
    for byte in text.encode():
        value ^= byte
        value = (value * 16777619) & 0xFFFFFFFF
    return value


def checked_value(fact_type: object, name: str, value: Any) -> Any:
    """``value`` if the engine can take it; ``EvaluationLimitError`` naming it if not.

    The guard every fact passes on its way in (base and derived): a non-finite float, a
    float Python would write in exponent form, or an integer past 64 bits would crash or
    silently corrupt the C engine, so no caller of this module can hand one over.
    """
    if isinstance(value, float):
        size = abs(value)
        plain = value == 0 or _SMALLEST_PLAIN_FLOAT <= size < _LARGEST_PLAIN_FLOAT
        if not math.isfinite(value) or not plain:
            raise EvaluationLimitError(
                f"'{fact_type}.{name}' is {value!r}: the rule engine takes finite numbers "
                f"between {_SMALLEST_PLAIN_FLOAT:g} and {_LARGEST_PLAIN_FLOAT:g} (or 0)"
            )
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ENGINE_INT:
        raise EvaluationLimitError(f"'{fact_type}.{name}' is an integer over 64 bits")
    return value


def _distinct_hash_names(prefix: str, count: int) -> list[str]:
    names: list[str] = []
    seen: set[int] = set()
    index = 0
    while len(names) < count:
        name = f"{prefix}{index}"
        index += 1
        digest = fnv1a32(name)
        if digest not in seen:
            seen.add(digest)
            names.append(name)
    return names


@dataclass
class EngineRuleset:
    """A ruleset registered with the C engine, with its own pool of session ids."""

    name: str
    stages: int
    handle: int
    _free_sids: list[str] = field(repr=False)
    _in_flight: int = 0
    _holds: int = 0
    _retired: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def retired(self) -> bool:
        return self._retired

    def hold(self) -> bool:
        """Keep this ruleset from being deleted until ``release``: a request holds the
        rules it started with to its end. False (nothing held) once it is retired."""
        with self._lock:
            if self._retired:
                return False
            self._holds += 1
            return True

    def release(self) -> None:
        """End a ``hold``; a retired ruleset is deleted when nothing uses it any more."""
        with self._lock:
            self._holds -= 1
            delete_now = self._retired and self._holds == 0 and self._in_flight == 0
        if delete_now:
            _delete(self)

    @contextmanager
    def _session_id(self) -> Iterator[_Lease]:
        with self._lock:
            if self._retired and self._holds == 0:
                raise EngineError(f"ruleset {self.name} is retired")
            if not self._free_sids:
                raise EngineError("no free rule-engine session; retry shortly")
            lease = _Lease(self._free_sids.pop())
            self._in_flight += 1
        try:
            yield lease
        finally:
            with self._lock:
                if lease.clean:
                    self._free_sids.append(lease.sid)
                self._in_flight -= 1
                delete_now = self._retired and self._in_flight == 0 and self._holds == 0
            if delete_now:
                _delete(self)

    def run(self, facts: list[dict[str, Any]], on_action: ActionHandler) -> int:
        """Evaluate one request's facts in a fresh session; returns the facts asserted.

        ``facts`` are flat dicts with a ``fact`` type key. Raises ``EngineError`` if the
        engine rejects a fact, the action handler fails, or the last stratum never ends.
        """
        with self._session_id() as lease:
            return _run_session(self, lease, facts, on_action)

    def retire(self) -> None:
        """Stop new sessions; the C ruleset is deleted once the last session ends."""
        with self._lock:
            self._retired = True
            delete_now = self._in_flight == 0 and self._holds == 0
        if delete_now:
            _delete(self)


@dataclass
class _Lease:
    """A sid lent to one session; a sid whose state may be left in the engine is not
    returned to the pool, so no later request can see its facts."""

    sid: str
    clean: bool = False


_registry: dict[str, EngineRuleset] = {}
_registry_lock = threading.Lock()


def register_ruleset(name: str, definition: dict[str, Any], stages: int) -> EngineRuleset:
    """Register a compiled durable-rules definition under a name never used before."""
    with _registry_lock:
        if name in _registry:
            raise EngineError(f"ruleset {name} is already registered")
        try:
            handle = _dre.create_ruleset(name, json.dumps(definition))
        except Exception as exc:  # the C module raises its own untyped errors
            raise EngineError(f"durable-rules rejected ruleset {name}: {exc}") from exc
        ruleset = EngineRuleset(
            name=name,
            stages=stages,
            handle=handle,
            _free_sids=_distinct_hash_names("s", SID_POOL_SIZE),
        )
        _registry[name] = ruleset
        return ruleset


def live_rulesets() -> list[str]:
    """Names of the rulesets currently registered (for tests and diagnostics)."""
    with _registry_lock:
        return sorted(_registry)


def reset() -> None:
    """Retire every ruleset; used by tests so engine state never leaks between them."""
    with _registry_lock:
        rulesets = list(_registry.values())
    for ruleset in rulesets:
        ruleset.retire()


def _delete(ruleset: EngineRuleset) -> None:
    with _registry_lock:
        if _registry.get(ruleset.name) is not ruleset:
            return
        del _registry[ruleset.name]
    _dre.delete_ruleset(ruleset.handle)


def _check(result: tuple[int, int], what: str) -> int:
    code = result[0]
    if code == _RESULT_OK:
        return result[1]
    if code == _RESULT_NOT_HANDLED:
        raise EngineError(f"{what}: a fact matched no rule")
    if code == _RESULT_OBSERVED:
        raise EngineError(f"{what}: duplicate fact id")
    raise EngineError(f"{what}: engine result code {code}")


def _run_session(
    ruleset: EngineRuleset,
    lease: _Lease,
    facts: list[dict[str, Any]],
    on_action: ActionHandler,
) -> int:
    handle, sid = ruleset.handle, lease.sid
    counter = 0

    def stamp(fact: dict[str, Any]) -> dict[str, Any]:
        nonlocal counter
        counter += 1
        if counter > MAX_FACTS_PER_SESSION:
            raise EvaluationLimitError(
                f"more than {MAX_FACTS_PER_SESSION} facts (given and derived) in one session"
            )
        kind = fact.get("fact")
        stamped = {k: checked_value(kind, k, v) for k, v in fact.items()}
        stamped.update(sid=sid, id=str(counter))
        if len(stamped) > MAX_FACT_PROPERTIES:
            raise EvaluationLimitError(
                f"a '{fact.get('fact')}' fact has {len(stamped)} properties; "
                f"the engine takes at most {MAX_FACT_PROPERTIES}"
            )
        return stamped

    try:
        batch = [stamp(f) for f in facts]
        batch.append(stamp({"fact": GATE_FACT, "stage": 1}))
    except EvaluationLimitError:
        lease.clean = True  # refused before anything reached the engine
        raise
    started = finished = False
    try:
        state_handle = _check(_dre.assert_facts(handle, json.dumps(batch)), "assert")
        first = _dre.start_action_for_state(handle, state_handle)
        message = json.loads(first[1]) if first else None
        while message:
            started = True
            rule_name, bindings = next(iter(message.items()))
            stage = _end_stage(rule_name)
            if stage is None:
                derived = on_action(rule_name, bindings)
            elif stage < ruleset.stages:
                derived = [{"fact": GATE_FACT, "stage": stage + 1}]
            else:
                derived = []
                finished = True
            for fact in derived:
                _check(_dre.assert_fact(handle, json.dumps(stamp(fact))), rule_name)
            following = _dre.complete_and_start_action(handle, state_handle)
            message = json.loads(following) if following else None
    except Exception as exc:
        if started and not finished:
            _dre.abandon_action(handle, state_handle)
        if isinstance(exc, EngineError | EvaluationLimitError):
            raise
        raise EngineError(f"rule evaluation failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if started:
            _dre.delete_state(handle, sid)
            lease.clean = True
    if not finished:
        raise EngineError("rule evaluation ended before its last stage")
    return counter


def end_rule_name(stage: int) -> str:
    """Name of the lowest-priority rule that closes ``stage``."""
    return f"__end__{stage}"


def _end_stage(rule_name: str) -> int | None:
    if rule_name.startswith("__end__"):
        return int(rule_name.removeprefix("__end__"))
    return None
