"""A real FHIR R4 server for the fallback's integration tests: sekmet-fhir on loopback.

``sekmet-fhir`` (PyPI, a test extra) is a small FHIR R4 server on FastAPI and SQLite. The
fixture writes its settings file (YAML; JSON is YAML) into a temporary directory, starts
``python -m sekmet.cli serve --config FILE`` there as a subprocess on a free 127.0.0.1
port, waits until ``/fhir/metadata`` answers, loads the patient of
``fhir_examples/restless-back-amisulpride.json`` with one transaction Bundle of PUTs, and
stops the server when the session ends.

Settings that matter: ``base_url`` is what the server writes into ``next`` links, so it
must name the same host and port the tests call; ``server_auth`` accepts only a static
bearer token generated per session (so 401 can be tested); the workflow simulator is off
(it would react to MedicationRequests by writing resources); the traffic log is off.

Import the fixture into a test module (``from tests.fhir.fhir_server import
sekmet_fhir_server``); it registers as ``fhir_server``. Without sekmet-fhir installed,
or when it does not start, the tests using it are skipped and the reason says why.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import load_example

EXAMPLE = "restless-back-amisulpride.json"
PAGING_PATIENT = "paging-1"
PAGING_ORDERS = 3
START_TIMEOUT = 20.0
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@dataclass(frozen=True)
class FhirTestServer:
    """A running server: its FHIR base URL, the token it accepts, what was loaded."""

    base_url: str
    token: str
    example: dict[str, Any]
    resources: tuple[dict[str, Any], ...]

    @property
    def patient_id(self) -> str:
        patient_id: str = self.example["context"]["patientId"]
        return patient_id


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _resources_of(example: dict[str, Any]) -> list[dict[str, Any]]:
    """The example's stored resources: its prefetch, without the draft orders."""
    found = []
    for value in example["prefetch"].values():
        if value.get("resourceType") == "Bundle":
            found += [entry["resource"] for entry in value.get("entry", [])]
        else:
            found.append(value)
    return found


def _paging_patient() -> list[dict[str, Any]]:
    """Not in the example: a second patient with several orders of one Medication, so a
    search with ``_count=1`` has pages and an ``_include`` repeated on each."""
    subject = {"reference": f"Patient/{PAGING_PATIENT}"}
    medication = {
        "resourceType": "Medication",
        "id": "paracetamol-500",
        "code": {"coding": [{"system": RXNORM, "code": "161", "display": "acetaminophen"}]},
    }
    orders = [
        {
            "resourceType": "MedicationRequest",
            "id": f"paging-order-{n}",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "medicationReference": {"reference": "Medication/paracetamol-500"},
        }
        for n in range(1, PAGING_ORDERS + 1)
    ]
    return [{"resourceType": "Patient", "id": PAGING_PATIENT}, medication, *orders]


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [
        {
            "fullUrl": f"urn:restless-cds:{r['resourceType']}/{r['id']}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _settings(base_url: str, port: int, data_dir: Path, token: str) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(data_dir),
        "server_auth": {"types": ["bearer"], "tokens": [token]},
        "simulator": {"enabled": False},
        "log_inbound": False,
    }


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: Path) -> str | None:
    """None once the server answers, else why it did not."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-800:]
            return f"sekmet exited with {process.returncode}: {tail}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/metadata", timeout=1.0).status_code == 200:
                return None
        time.sleep(0.1)
    return f"sekmet did not answer within {START_TIMEOUT:.0f} s"


def _die_with_parent() -> None:
    """Runs in the child (Linux): SIGTERM it if the test run dies without its teardown."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session", name="fhir_server")
def sekmet_fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirTestServer]:
    if importlib.util.find_spec("sekmet") is None:
        pytest.skip("sekmet-fhir is not installed (pip install -e '.[test]')")
    workdir = tmp_path_factory.mktemp("sekmet")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/fhir"
    token = secrets.token_urlsafe(24)
    config = workdir / "settings.yaml"
    config.write_text(json.dumps(_settings(base_url, port, workdir / "data", token)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}
    log = workdir / "sekmet.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sekmet.cli", "serve", "--config", str(config)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
    try:
        problem = _wait_until_up(process, base_url, log)
        if problem is not None:
            pytest.skip(f"cannot start the sekmet-fhir FHIR server: {problem}")
        example = load_example(EXAMPLE)
        resources = [*_resources_of(example), *_paging_patient()]
        response = httpx.post(
            base_url,
            json=transaction(resources),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
            timeout=10.0,
        )
        assert response.status_code == 200, f"loading failed: HTTP {response.status_code}"
        yield FhirTestServer(base_url, token, example, tuple(resources))
    finally:
        _stop(process)
