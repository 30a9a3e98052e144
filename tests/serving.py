"""``restless-cds serve`` as an operator starts it: a real process (uvicorn, its workers)
on a free loopback port, its log captured to a file for the tests to read."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Served", "free_port", "serve"]

COMMAND = [sys.executable, "-c", "from cds.cli import main; main()", "serve"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15) -> float:
        """SIGTERM; the seconds it took the process to exit."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return time.monotonic() - started


@contextlib.contextmanager
def serve(
    tmp_path: Path, *args: str, env: dict[str, str], host: str = "127.0.0.1"
) -> Iterator[Served]:
    """Start ``serve`` with ``args`` and ``env`` (added to a RESTLESS_CDS_-free
    environment); yield once ``/healthz`` answers; stop it afterwards."""
    port = free_port(host)
    log_file = tmp_path / f"serve-{port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RESTLESS_CDS_")}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # the default store lives under XDG_DATA_HOME: never the machine's own (another
    # checkout may have migrated it past this one's migrations)
    environment["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    environment.update(env)
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            [*COMMAND, "--host", host, "--port", str(port), *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=tmp_path,
        )
    served = Served(f"http://{host}:{port}", process, log_file)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited at start-up:\n{served.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer within 30 s:\n{served.log()}")
            time.sleep(0.1)
        yield served
    finally:
        served.stop()
