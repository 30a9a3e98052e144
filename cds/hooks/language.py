"""The request's language: the HTTP ``Content-Language`` of a hook call.

CDS Hooks has no language field; ``Content-Language`` (RFC 9110) is how an HTTP request says
the language of its content. It is the default for Conditions whose text states none (see
``cds/fhir/records.py``); a resource's own ``language`` still wins.
"""

from __future__ import annotations

from cds.errors import Problem, RequestError
from cds.fhir import language_tag

__all__ = ["content_language"]

HEADER = "Content-Language"


def content_language(header: str | None) -> str | None:
    """The first language tag of a ``Content-Language`` header ("es-MX, en" -> "es-MX"),
    None when the header is absent or empty; a tag that is not BCP 47-shaped is a 400."""
    if header is None:
        return None
    first = header.split(",", 1)[0].strip()
    if not first:
        return None
    tag = language_tag(first)
    if tag is None:
        message = "not a language tag (BCP 47, for example 'es' or 'es-MX')"
        raise RequestError([Problem(HEADER, message)])
    return tag
