"""Prefetch templates -> FHIR queries relative to ``fhirServer`` (#prefetch-tokens).

Only the three context tokens this service can vouch for are filled in. Anything else in
``{{...}}`` (``userPractitionerId``, FHIRPath, a typo) leaves the template unresolved, so
its key is reported as unavailable rather than fetched with a literal ``{{`` in the URL.
Values are percent-encoded as a whole (``/`` too): an id can never add a path segment or a
query parameter. An empty value, or one of dots only (``.``, ``..``), is refused outright:
an HTTP client would resolve a dot segment into another path on the server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["TOKENS", "render_template"]

TOKENS = frozenset({"context.patientId", "context.userId", "context.encounterId"})
_TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def _value(token: str, context: Mapping[str, Any]) -> str | None:
    if token not in TOKENS:
        return None
    value = context.get(token.removeprefix("context."))
    if not isinstance(value, str) or value.strip(".") == "":
        return None
    return quote(value, safe="")


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """The query with every token replaced, or None when a token cannot be filled."""
    unresolved = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal unresolved
        value = _value(match.group(1), context)
        if value is None:
            unresolved = True
            return ""
        return value

    rendered = _TOKEN.sub(substitute, template)
    if unresolved or "{{" in rendered or "}}" in rendered:
        return None
    return rendered
