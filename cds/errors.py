"""The exception tree of restless-cds; only ``cds.hooks`` maps it to HTTP.

    CdsError
    ├── RequestError            the hook request cannot be used (HTTP 400)
    ├── AuthenticationError     (cds.security) the client's JWT is missing or invalid (401)
    ├── IssuerConfigError       (cds.security) the trusted-issuer file is invalid (start-up)
    ├── UnknownCardError        (cds.feedback) feedback names a card never issued (HTTP 400)
    ├── UnknownServiceError     no service with that id (HTTP 404)
    ├── PrefetchUnavailableError data the rules need is neither prefetched nor fetchable (412)
    ├── RulesError              a rules directory is invalid; carries file:line problems
    ├── EngineError             durable-rules failed or is saturated (HTTP 503)
    └── EvaluationLimitError    this request exceeds what the engine can evaluate (HTTP 422)

Third-party errors (pydantic, durable-rules, YAML) are translated where they are caught,
chained with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CdsError",
    "EngineError",
    "EvaluationLimitError",
    "InputIssue",
    "PrefetchUnavailableError",
    "Problem",
    "RequestError",
    "RulesError",
    "UnknownServiceError",
]


class CdsError(Exception):
    """Base of every error this service raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem with a request field or a rule file location."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class InputIssue:
    """A part of the input that was skipped; says where, never what the data was.

    Not an error: the request goes on without it (the ``fhir`` layer notes resources it
    cannot file, ``facts`` the ones it cannot read or validate)."""

    where: str
    message: str


class RequestError(CdsError):
    """The request body is not a usable CDS Hooks call; ``problems`` name the fields."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class UnknownServiceError(CdsError):
    """No CDS service is registered under the requested id."""


class PrefetchUnavailableError(CdsError):
    """The rules need data that was neither prefetched nor retrievable (CDS Hooks 412)."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__("required prefetch data unavailable: " + ", ".join(missing))
        self.missing = missing


class RulesError(CdsError):
    """A rules directory failed validation; ``problems`` are ``file:line:col`` located."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class EngineError(CdsError):
    """The rule engine failed or has no free session; the request may be retried."""


class EvaluationLimitError(CdsError):
    """This request cannot be evaluated, and retrying will not change that: too many facts
    for one engine session, or a number the engine cannot represent (HTTP 422)."""
