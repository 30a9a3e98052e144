"""The two errors of CDS client authentication.

``AuthenticationError`` is the only thing ``JwtVerifier.verify`` raises for a bad call, so
the HTTP layer maps one type to 401. Its message says why, for the log; it is built from
fixed phrases and short, escaped header or claim values, never from the token itself, and
is not meant for the caller (who learns only that the token was refused).

``IssuerConfigError`` is a start-up problem: the trusted-issuer configuration or a key file
is unusable. It carries ``Problem``s naming the entry and field, like ``RulesError``.
"""

from __future__ import annotations

from cds.errors import CdsError, Problem

__all__ = ["AuthenticationError", "IssuerConfigError", "shown"]

_SHOWN_MAX = 80


class AuthenticationError(CdsError):
    """The call's bearer JWT is missing or not acceptable (HTTP 401)."""


class IssuerConfigError(CdsError):
    """The trusted-issuer configuration or one of its key sets cannot be used."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def shown(value: object) -> str:
    """A header or claim value fit for a log line: ``repr`` (escapes newlines), truncated.

    Values come from the caller; a long one is cut so a log line stays a line.
    """
    text = repr(value)
    if len(text) > _SHOWN_MAX:
        return text[: _SHOWN_MAX - 3] + "..."
    return text
