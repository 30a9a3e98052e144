"""Which CDS clients the service trusts: ``TrustedIssuer`` and its configuration file.

CDS Hooks 2.0 (#trusting-cds-clients) asks services to keep an allowlist of ``iss`` and
``jku`` URLs. One ``TrustedIssuer`` is one entry: the exact ``iss`` a client signs with,
where its public keys are (a JWKS URL, or a JWKS file agreed out of band), the ``jku``
header values it may send, and optionally the ``tenant`` values it may claim.

A key file pins the issuer's keys: the verifier never fetches anything for it, and an
allowed ``jku`` only names that same set (this is how the Sandbox is trusted without a
network call). With a ``jwks_url`` an allowed ``jku`` is fetched like the URL itself.

The configuration is a JSON (or YAML) list; ``load_trusted_issuers`` reports every
problem with the entry and field it is in, so a typo stops start-up with a clear line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from cds.errors import Problem
from cds.security.errors import IssuerConfigError

__all__ = [
    "SANDBOX_ISS",
    "SANDBOX_JKU",
    "SANDBOX_JWKS_FILE",
    "TrustedIssuer",
    "load_trusted_issuers",
    "parse_trusted_issuers",
    "sandbox_issuer",
]

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_JWKS_FILE = Path(__file__).resolve().with_name("sandbox-jwks.json")
"""The Sandbox's public key set (cds-hooks/sandbox ``build/.well-known/jwks.json``)."""

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_FIELDS = ("iss", "jwks_url", "jwks_file", "allowed_jku", "tenants")


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot hold keys: it must be https (plain http only on loopback)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"not a URL: {url!r}"
    if not host:
        return f"not an absolute URL: {url!r}"
    if parts.fragment:
        return f"a key set URL has no fragment: {url!r}"
    if parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK):
        return None
    return f"must be an https URL (http only for localhost): {url!r}"


@dataclass(frozen=True)
class TrustedIssuer:
    """One CDS client the service accepts calls from.

    ``iss`` is compared exactly with the token's ``iss``. Exactly one of ``jwks_url`` and
    ``jwks_file`` may be given; with neither, every token must carry an allowed ``jku``.
    ``tenants`` ``None`` accepts any (or no) ``tenant`` claim; a set requires one of them.
    Invalid values raise ``IssuerConfigError`` naming the field.
    """

    iss: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    allowed_jku: tuple[str, ...] = ()
    tenants: frozenset[str] | None = None

    def __post_init__(self) -> None:
        problems = [Problem(field, message) for field, message in self._problems()]
        if problems:
            raise IssuerConfigError(problems)

    def _problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if not self.iss or self.iss.strip() != self.iss:
            found.append(("iss", "must be a non-empty string without surrounding spaces"))
        if self.jwks_url is not None and self.jwks_file is not None:
            found.append(("jwks_file", "give jwks_url or jwks_file, not both"))
        if self.jwks_url is None and self.jwks_file is None and not self.allowed_jku:
            found.append(("jwks_url", "no key source: give jwks_url, jwks_file or allowed_jku"))
        if self.jwks_url is not None and (problem := _url_problem(self.jwks_url)):
            found.append(("jwks_url", problem))
        for index, jku in enumerate(self.allowed_jku):
            if problem := _url_problem(jku):
                found.append((f"allowed_jku[{index}]", problem))
        if self.tenants is not None and not self.tenants:
            found.append(("tenants", "an empty list refuses every call; leave it out instead"))
        return found


def sandbox_issuer() -> TrustedIssuer:
    """The public CDS Hooks Sandbox (https://sandbox.cds-hooks.org), for demos only.

    The Sandbox signs every call with ES384, kid ``44823f3d-…``, and a ``jku`` header
    naming its well-known JWKS; that ``jku`` is allowed, but the keys come from the file
    shipped here, so no request ever makes the service fetch anything.

    WARNING: the Sandbox is a browser app and its private signing key is published in its
    public source repository (``keys/ecprivkey.pem``). Anyone can sign tokens that pass as
    the Sandbox; trusting it authenticates nothing. Opt in only for testing with the
    public Sandbox, never where real patient data flows.
    """
    return TrustedIssuer(
        iss=SANDBOX_ISS,
        jwks_file=SANDBOX_JWKS_FILE,
        allowed_jku=(SANDBOX_JKU,),
    )


def load_trusted_issuers(path: Path | str) -> list[TrustedIssuer]:
    """Read the trusted-issuer list from a JSON file (or YAML for ``.yaml``/``.yml``).

    A relative ``jwks_file`` is resolved against the configuration file's folder.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IssuerConfigError([Problem(source, f"cannot read: {exc.strerror}")]) from exc
    try:
        data: object = (
            yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)
        )
    except (ValueError, yaml.YAMLError) as exc:
        where = source
        if isinstance(exc, json.JSONDecodeError):
            where = f"{source}:{exc.lineno}:{exc.colno}"
        raise IssuerConfigError([Problem(where, "not valid JSON/YAML")]) from exc
    return parse_trusted_issuers(data, base_dir=path.parent, source=source)


def parse_trusted_issuers(
    data: object, *, base_dir: Path | None = None, source: str = "trusted_issuers"
) -> list[TrustedIssuer]:
    """Build issuers from decoded JSON (a list of objects), e.g. an environment variable.

    Every problem is collected before raising, each named ``source[i].field``.
    """
    if not isinstance(data, list):
        raise IssuerConfigError([Problem(source, "must be a list of issuer objects")])
    issuers: list[TrustedIssuer] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        where = f"{source}[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(Problem(where, "must be an object"))
            continue
        entry_problems, issuer = _parse_entry(entry, where, base_dir)
        problems.extend(entry_problems)
        if issuer is None:
            continue
        if issuer.iss in seen:
            problems.append(Problem(f"{where}.iss", f"duplicate issuer {issuer.iss!r}"))
        seen.add(issuer.iss)
        issuers.append(issuer)
    if problems:
        raise IssuerConfigError(problems)
    return issuers


def _parse_entry(
    entry: Mapping[object, object], where: str, base_dir: Path | None
) -> tuple[list[Problem], TrustedIssuer | None]:
    problems = [
        Problem(f"{where}.{key}", f"unknown field (expected one of {', '.join(_FIELDS)})")
        for key in entry
        if key not in _FIELDS
    ]
    iss = entry.get("iss")
    if not isinstance(iss, str):
        problems.append(Problem(f"{where}.iss", "required, a string"))
    jwks_url = _optional_str(entry, "jwks_url", where, problems)
    jwks_file_text = _optional_str(entry, "jwks_file", where, problems)
    allowed_jku = _str_list(entry, "allowed_jku", where, problems)
    tenants = _str_list(entry, "tenants", where, problems) if "tenants" in entry else None
    jwks_file: Path | None = None
    if jwks_file_text is not None:
        jwks_file = Path(jwks_file_text)
        if base_dir is not None and not jwks_file.is_absolute():
            jwks_file = base_dir / jwks_file
        if not jwks_file.is_file():
            problems.append(Problem(f"{where}.jwks_file", f"no such file: {jwks_file}"))
    if not isinstance(iss, str):
        return problems, None
    try:
        issuer = TrustedIssuer(
            iss=iss,
            jwks_url=jwks_url,
            jwks_file=jwks_file,
            allowed_jku=tuple(allowed_jku or ()),
            tenants=frozenset(tenants) if tenants is not None else None,
        )
    except IssuerConfigError as exc:
        problems.extend(Problem(f"{where}.{p.where}", p.message) for p in exc.problems)
        return problems, None
    return problems, (None if problems else issuer)


def _optional_str(
    entry: Mapping[object, object], key: str, where: str, problems: list[Problem]
) -> str | None:
    value = entry.get(key)
    if value is None or isinstance(value, str):
        return value
    problems.append(Problem(f"{where}.{key}", "must be a string"))
    return None


def _str_list(
    entry: Mapping[object, object], key: str, where: str, problems: list[Problem]
) -> list[str] | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(Problem(f"{where}.{key}", "must be a list of strings"))
        return None
    return value
