"""Patient pseudonyms: what the feedback tables hold instead of a patient id.

A keyed HMAC rather than a plain hash, because patient ids are short and guessable: anyone
holding the database could hash every plausible id and match. Without the key they cannot.
The same key must be used by every worker and kept across restarts, or suppressions stop
matching their patient.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["pseudonymise"]


def pseudonymise(key: bytes, patient_id: str) -> str:
    """HMAC-SHA256 of ``patient_id`` under ``key``, as 64 lowercase hex characters.

    Patient ids are only unique within one FHIR server: pass an id qualified by its server
    (or tenant) when the service answers more than one, or two patients share a pseudonym.
    """
    if not key:
        raise ValueError("the pseudonym key must not be empty")
    return hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()
