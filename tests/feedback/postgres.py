"""A throwaway PostgreSQL server for the feedback tests, started from the local binaries.

No server needs to be installed as a service or running: the session fixture
``postgres_url`` finds ``initdb``, ``pg_ctl`` and ``postgres`` (on PATH, or Debian's
``/usr/lib/postgresql/<version>/bin``), initialises a cluster in a temporary directory,
starts it on a free loopback port with its unix socket in that directory, creates one
database and yields its URL (a random password guards TCP); at the end it stops the server
and deletes the directory.
Durability is switched off (``fsync``, ``synchronous_commit``): the data dies with the test
session anyway.

PostgreSQL refuses to run as root. Under root (CI containers) the binaries run as an
unprivileged user instead (``postgres`` when the Debian package created it, else
``nobody``) through ``subprocess``'s ``user``/``group`` arguments, so neither ``su`` nor
``runuser`` (nor PAM) is involved; the temporary directory is made in a world-traversable
place and handed to that user.

Without the binaries (or without psycopg) the tests that need the server are skipped
with a reason naming what is missing; a server that is present but fails to start is an
error, with the end of its log, never a skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "POSTGRES_BINARIES",
    "find_postgres_bin_dir",
    "missing_reason",
    "postgres_url",
    "reset_database",
]

POSTGRES_BINARIES = ("initdb", "pg_ctl", "postgres")
DEBIAN_PREFIX = Path("/usr/lib/postgresql")
"""Where Debian's postgresql package puts each version's binaries (not on PATH)."""
SUPERUSER = "cds_test"
DATABASE = "cds_feedback_test"
START_ATTEMPTS = 3
"""A free port can be taken between choosing it and the server binding it: try again."""

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "32MB",
    "logging_collector": "off",
}


def find_postgres_bin_dir() -> Path | None:
    """The first directory holding all of ``POSTGRES_BINARIES``: PATH, then Debian's
    versioned directories, newest first."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    if DEBIAN_PREFIX.is_dir():
        versions = [path for path in DEBIAN_PREFIX.iterdir() if (path / "bin").is_dir()]
        versions.sort(key=lambda path: _version_key(path.name), reverse=True)
        candidates.extend(path / "bin" for path in versions)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in POSTGRES_BINARIES):
            return directory
    return None


def missing_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    if find_postgres_bin_dir() is None:
        return (
            f"PostgreSQL tests need {', '.join(POSTGRES_BINARIES)} (on PATH or under "
            f"{DEBIAN_PREFIX}/*/bin): not found; apt-get install postgresql"
        )
    if importlib.util.find_spec("psycopg") is None:
        return 'PostgreSQL tests need psycopg: pip install "psycopg[binary]>=3.1,<4"'
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


@dataclass(frozen=True)
class _RunAs:
    """Who runs the server: ourselves, or (as root) an unprivileged account."""

    uid: int | None = None
    gid: int | None = None
    name: str | None = None

    @classmethod
    def for_current_user(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(entry.pw_uid, entry.pw_gid, name)
        raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")

    def run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        if self.uid is None:
            return subprocess.run(
                args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
            )
        return subprocess.run(
            args,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            user=self.uid,
            group=self.gid,
            extra_groups=[],
        )

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def _traversable_by_others(path: Path) -> bool:
    return all(
        parent.stat().st_mode & stat.S_IXOTH for parent in [path.resolve(), *path.resolve().parents]
    )


def _make_workdir(run_as: _RunAs) -> Path:
    base = Path(tempfile.gettempdir())
    if run_as.uid is not None and not _traversable_by_others(base):
        base = Path("/tmp")
    workdir = Path(tempfile.mkdtemp(prefix="cds-pg-", dir=base))
    run_as.own(workdir)
    return workdir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _check(result: subprocess.CompletedProcess[str], what: str, log: Path | None = None) -> None:
    if result.returncode == 0:
        return
    detail = (result.stdout + result.stderr).strip()
    if log is not None and log.exists():
        detail += "\n--- server log ---\n" + log.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{detail}")


@dataclass
class _Server:
    bin_dir: Path
    run_as: _RunAs
    workdir: Path
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """The superuser's, over TCP: with ``trust`` any local user could connect as superuser
    (and run programs as the server's account) while the tests run. The unix socket stays
    ``trust``: it sits in the private temporary directory."""

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    def init(self) -> None:
        password_file = self.workdir / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        self.run_as.own(password_file)
        initdb = [
            str(self.bin_dir / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(password_file),
            "--auth-host",
            "scram-sha-256",
            "--auth-local",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        ]
        _check(self.run_as.run(initdb, self.workdir), "initdb")

    def start(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = _free_port()
            settings = {
                **SERVER_SETTINGS,
                "port": str(self.port),
                "unix_socket_directories": f"'{self.workdir}'",
            }
            # appended: on a retry the later port line wins
            with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))
            pg_ctl = [str(self.bin_dir / "pg_ctl"), "--pgdata", str(self.data)]
            started = self.run_as.run(
                [*pg_ctl, "--log", str(self.log), "--wait", "--timeout", "30", "start"],
                self.workdir,
            )
            if started.returncode == 0:
                return
            if attempt == START_ATTEMPTS:
                _check(started, "pg_ctl start", self.log)

    def stop(self) -> None:
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "--pgdata", str(self.data)]
        self.run_as.run([*pg_ctl, "--mode", "immediate", "--wait", "stop"], self.workdir)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"


def _admin_execute(url: str, *statements: str) -> None:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as connection:
        for statement in statements:
            connection.execute(statement.encode())


def reset_database(url: str) -> None:
    """Empty the test database (its ``public`` schema) so the next store starts from zero."""
    _admin_execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database on a private PostgreSQL server, for the whole session."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    bin_dir = find_postgres_bin_dir()
    assert bin_dir is not None
    run_as = _RunAs.for_current_user()
    server = _Server(bin_dir, run_as, _make_workdir(run_as))
    started = False
    try:
        server.init()
        server.start()
        started = True
        _admin_execute(server.url("postgres"), f"CREATE DATABASE {DATABASE}")
        yield server.url(DATABASE)
    finally:
        if started:
            server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
