"""CDS client authentication: verifying the bearer JWT of each call.

CDS Hooks 2.0 (#trusting-cds-clients) has every client sign a short-lived JWT naming the
endpoint it calls (``aud``); the service checks it against an allowlist of issuers and
their keys. Typical use, once per process and once per call::

    verifier = JwtVerifier(load_trusted_issuers(path) + [sandbox_issuer()])
    claims = await verifier.verify(bearer_token(authorization), audience=endpoint_url)

Everything a caller can get wrong raises ``AuthenticationError`` (HTTP 401; its message
is for the log only). Configuration problems raise ``IssuerConfigError`` at start-up.
The replay cache is per process: see ``cds.security.replay``.
"""

from cds.security.errors import AuthenticationError, IssuerConfigError
from cds.security.issuers import (
    SANDBOX_ISS,
    SANDBOX_JKU,
    SANDBOX_JWKS_FILE,
    TrustedIssuer,
    load_trusted_issuers,
    parse_trusted_issuers,
    sandbox_issuer,
)
from cds.security.jwks import ALLOWED_ALGORITHMS
from cds.security.verifier import Claims, JwtVerifier, bearer_token, service_audience

__all__ = [
    "ALLOWED_ALGORITHMS",
    "SANDBOX_ISS",
    "SANDBOX_JKU",
    "SANDBOX_JWKS_FILE",
    "AuthenticationError",
    "Claims",
    "IssuerConfigError",
    "JwtVerifier",
    "TrustedIssuer",
    "bearer_token",
    "load_trusted_issuers",
    "parse_trusted_issuers",
    "sandbox_issuer",
    "service_audience",
]
