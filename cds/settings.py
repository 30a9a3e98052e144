"""The one settings object: environment variables (``RESTLESS_CDS_*``) and CLI flags.

Never instantiated at import; ``create_app`` receives a ``Settings`` and keeps it on
``app.state`` so tests build apps with their own settings.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LOOPBACK_HOSTS", "Settings", "bundled_rules_dir"]

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


class Settings(BaseSettings):
    """Service configuration; every field can be set as ``RESTLESS_CDS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RESTLESS_CDS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    rules_dir: Path = Field(default_factory=bundled_rules_dir)
    log_level: str = "info"
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    reload_interval_seconds: float = Field(default=2.0, ge=0)
    """How often to look for edited rule files; 0 turns hot reload off."""
    allow_unauthenticated_remote: bool = False
    """Serve unsigned calls on a non-loopback interface (JWT client auth is not built yet)."""
    cors_allow_origins: list[str] = Field(default_factory=lambda: ["*"])
    """Browser clients (the CDS Hooks Sandbox) allowed to call; ``*`` for any."""
    source_label: str = "restless-cds"
    override_system_uri: str = "urn:restless-cds:override-reason"

    @property
    def loopback_only(self) -> bool:
        return self.host in LOOPBACK_HOSTS
