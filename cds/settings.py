"""The one settings object: environment variables (``RESTLESS_CDS_*``) and CLI flags.

Never instantiated at import; ``create_app`` receives a ``Settings`` and keeps it on
``app.state`` so tests build apps with their own settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

__all__ = [
    "HANDOFF_VARIABLE",
    "LOOPBACK_HOSTS",
    "ConfigError",
    "Settings",
    "bundled_rules_dir",
    "default_data_dir",
    "load_settings",
    "open_defaults",
    "settings_from_handoff",
    "settings_handoff",
]

HANDOFF_VARIABLE = "RESTLESS_CDS_SETTINGS_FILE"
"""Names the private file (mode 0600) through which ``serve`` hands its settings, secrets
included, to its worker processes: the path is in the environment, the secrets are not."""

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def bundled_rules_dir() -> Path:
    """Where the rules shipped with the package live, wherever the command is started.

    A wheel carries them as ``cds/_bundled_rules``; an editable install (a checkout)
    reads the ``rules/`` folder at the top of the repository.
    """
    package_dir = Path(__file__).resolve().parent
    packaged = package_dir / "_bundled_rules"
    if packaged.is_dir():
        return packaged
    return package_dir.parent / "rules"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/restless-cds`` (default ``~/.local/share/restless-cds``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "restless-cds"


class Settings(BaseSettings):
    """Service configuration; every field can be set as ``RESTLESS_CDS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RESTLESS_CDS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    rules_dir: Path = Field(default_factory=bundled_rules_dir)
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    """``json``: one JSON object per line; ``console``: for people; ``auto``: console on a
    terminal, JSON otherwise."""
    graceful_shutdown_seconds: float = Field(default=10.0, gt=0, le=300)
    """How long a stopping worker waits for requests in flight and card writes."""
    store_timeout_seconds: float = Field(default=0.5, gt=0, le=30)
    """Budget of the hook's suppression read; past it the cards are shown unsuppressed."""
    feedback_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    """Budget of a feedback call's store work; past it the answer is 503 with Retry-After."""
    suppression_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    """How long a worker reuses a patient's suppressions read from the store; feedback to
    another worker or replica takes effect here within this time (this worker's own
    feedback at once). 0 reads the store for every call with cards."""
    card_write_interval_seconds: float = Field(default=0.02, gt=0, le=1)
    """Issued cards are written in one transaction per this interval (one writer thread)."""
    card_write_queue_size: int = Field(default=10_000, ge=1, le=1_000_000)
    """Cards waiting to be written; beyond it (database down or slow) new records are
    dropped, counted (``cds_card_records_dropped_total``) and logged."""
    card_retention_days: float = Field(default=90.0, ge=0)
    """Issued cards (with their feedback and explanation) older than this are pruned in
    the background and by ``restless-cds feedback prune``; 0 keeps them for ever.
    Suppressions go when they expire."""
    prune_interval_seconds: float = Field(default=3600.0, gt=0)
    """How often each worker prunes (the first time one interval after start-up)."""
    header_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """A connection whose request head is not complete within this time is closed."""
    body_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """A request body not fully received within this time gets 408."""
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    reload_interval_seconds: float = Field(default=2.0, ge=0)
    """How often to look for edited rule files; 0 turns hot reload off."""
    public_base_url: str | None = None
    """The service's URL as clients call it (e.g. ``https://cds.example.org``): each
    call's JWT ``aud`` must equal it plus the path called."""
    trusted_issuers_file: Path | None = None
    """JSON or YAML list of trusted CDS clients: iss, jwks_url or jwks_file, allowed_jku,
    tenants. With any issuer configured, every call must carry a valid bearer JWT."""
    trust_cds_hooks_sandbox: bool = False
    """Trust https://sandbox.cds-hooks.org with its shipped public key (demos only: its
    private key is public)."""
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    allow_unauthenticated_remote: bool = False
    """Serve unsigned calls on a non-loopback interface when no issuer is configured
    (only behind a proxy that authenticates clients)."""
    cors_allow_origins: list[str] = Field(default_factory=lambda: ["*"])
    """Browser clients (the CDS Hooks Sandbox) allowed to call; ``*`` for any."""
    fhir_allowed_servers: list[str] | None = None
    """FHIR server base URLs (prefixes) the fallback may call; unset: any http(s) server,
    [] turns the fallback off. Set it in production."""
    fhir_connect_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    fhir_request_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    fhir_overall_timeout_seconds: float = Field(default=8.0, gt=0, le=120)
    fhir_optional_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    """How long an optional prefetch key (the labs) may be fetched for; past it the labs
    are left out and the cards go without them."""
    fhir_optional_remember_seconds: float = Field(default=60.0, ge=0, le=3600)
    """For how long a worker reuses an optional answer it fetched (same server, query and
    token) and leaves alone a server whose optional fetch failed; 0: fetch every time."""
    fhir_max_pages: int = Field(default=10, ge=1, le=100)
    fhir_max_entries: int = Field(default=1000, ge=1, le=100_000)
    fhir_max_concurrency: int = Field(default=4, ge=1, le=32)
    database_url: str | None = None
    """SQLAlchemy URL of the feedback store, e.g. ``postgresql+psycopg://user@host/db``
    for several workers or hosts; unset: the SQLite file at ``database_path``."""
    database_path: Path = Field(default_factory=lambda: default_data_dir() / "restless-cds.db")
    """The embedded SQLite file (created on first run) when no database_url is set; by
    default in the user's data folder, so ``serve`` and ``feedback report`` find the same
    store wherever they are started (both print where it is)."""
    pseudonym_key: SecretStr | None = None
    """Key of the patient pseudonyms in the feedback store; unset with SQLite: a random
    key kept in ``<database_path>.key`` (created on first run). Required with a URL."""
    ui: bool | None = None
    """Serve /playground and /dashboard; unset: only when listening on loopback."""
    ui_token: SecretStr | None = None
    """Operator token the UI's data routes require (header X-Operator-Token); required
    to serve the UI on a non-loopback interface."""
    source_label: str = "restless-cds"
    override_system_uri: str = "urn:restless-cds:override-reason"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def loopback_only(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def public_base_urls(self) -> tuple[str, ...]:
        """Every accepted public base URL: ``public_base_url`` may list several,
        comma-separated (e.g. the localhost and 127.0.0.1 spellings of a demo)."""
        listed = (self.public_base_url or "").split(",")
        return tuple(u.strip().rstrip("/") for u in listed if u.strip())

    @property
    def feedback_store_label(self) -> str:
        """Where the feedback store is, for start-up and report messages (no password)."""
        if self.database_url is None:
            return str(self.database_path.resolve())
        # here, not at the top: every command reads settings, few need SQLAlchemy
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        return make_url(self.database_url).render_as_string(hide_password=True)

    @property
    def feedback_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.database_path}"

    def patient_pseudonym_key(self) -> bytes:
        """The pseudonym key: configured, or (SQLite only) kept beside the database."""
        if self.pseudonym_key is not None:
            return self.pseudonym_key.get_secret_value().encode()
        if self.database_url is not None:
            raise ValueError("pseudonym_key must be set when database_url is set")
        key_file = self.database_path.with_suffix(".key")
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
        return key_file.read_text(encoding="utf-8").strip().encode()

    @property
    def authenticates_clients(self) -> bool:
        return self.trusted_issuers_file is not None or self.trust_cds_hooks_sandbox

    @model_validator(mode="after")
    def _auth_needs_public_url(self) -> Settings:
        if self.authenticates_clients and not self.public_base_url:
            raise ValueError("public_base_url is required when trusted issuers are configured")
        if self.public_base_url:
            self.public_base_url = self.public_base_url.rstrip("/")
        return self


class ConfigError(Exception):
    """A setting is invalid; the message is one line naming it."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``overrides``, or ``ConfigError`` in one line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        where = f"RESTLESS_CDS_{name.split('.')[0].upper()}" if first["loc"] else name
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"invalid setting {where}: {first['msg']}{more}") from None
    except SettingsError as exc:  # e.g. a list setting that is not valid JSON
        field = re.search(r'field "(\w+)"', str(exc))
        where = f"RESTLESS_CDS_{field.group(1).upper()}" if field else "(environment)"
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        message = f"invalid setting {where}: not valid JSON for a list{cause}"
        raise ConfigError(message.replace("\n", " ")) from None


def open_defaults(settings: Settings) -> list[str]:
    """One warning per default left open while serving beyond loopback."""
    if settings.loopback_only:
        return []
    warnings = []
    if not settings.authenticates_clients:
        warnings.append(
            f"serving on {settings.host} with no trusted CDS client issuers: calls are not "
            "authenticated (set RESTLESS_CDS_TRUSTED_ISSUERS_FILE)"
        )
    if "*" in settings.cors_allow_origins:
        warnings.append(
            "CORS allows any origin (set RESTLESS_CDS_CORS_ALLOW_ORIGINS to the EHR origins)"
        )
    if settings.fhir_allowed_servers is None:
        warnings.append(
            "the FHIR fallback may call any server with the EHR's token "
            "(set RESTLESS_CDS_FHIR_ALLOWED_SERVERS)"
        )
    return warnings


def _handoff_json(settings: Settings) -> str:
    data = settings.model_dump(mode="json")
    if settings.pseudonym_key is not None:  # model_dump masks it as "**********"
        data["pseudonym_key"] = settings.pseudonym_key.get_secret_value()
    return json.dumps(data)


@contextlib.contextmanager
def settings_handoff(settings: Settings) -> Iterator[Path]:
    """Write ``settings`` to a private file for worker processes, named by
    ``HANDOFF_VARIABLE`` in the environment, and delete it afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="restless-cds-"))  # mode 0700
    path = directory / "settings.json"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(_handoff_json(settings))
        os.environ[HANDOFF_VARIABLE] = str(path)
        yield path
    finally:
        os.environ.pop(HANDOFF_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


def settings_from_handoff() -> Settings:
    """The settings ``serve`` handed down, else the environment's."""
    path = os.environ.get(HANDOFF_VARIABLE)
    if not path:
        return load_settings()
    return Settings(**json.loads(Path(path).read_text(encoding="utf-8")))
