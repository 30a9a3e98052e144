#!/usr/bin/env python3
"""Write each fhir_examples/ request's patient as a FHIR transaction Bundle.

``fhir_examples/bundles/NAME.bundle.json`` holds the Patient, Conditions, Medications and
stored MedicationRequests of ``NAME.json`` as PUTs, so the same patient can be loaded into
a sandbox FHIR server and driven from the CDS Hooks Sandbox. Draft orders are left out:
they are what the clinician orders in the Sandbox. Standard library only; deterministic.

Usage: python scripts/build_example_bundles.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "fhir_examples"
BUNDLES = EXAMPLES / "bundles"
STORED = ("Patient", "Condition", "Medication", "MedicationRequest", "Observation")


def _resources(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") != "Bundle":
        return [value]
    return [
        e["resource"] for e in value.get("entry") or [] if isinstance(e, dict) and "resource" in e
    ]


def _example_name(patient_id: str) -> dict[str, Any]:
    """A name that is plainly fictional, so the Sandbox's patient banner shows something."""
    given = patient_id.removeprefix("ex-")
    return {"use": "anonymous", "family": "Example", "given": [given], "text": f"{given} Example"}


def bundle_for(request: dict[str, Any]) -> dict[str, Any]:
    """The transaction Bundle of one example request."""
    patient_id = request["context"]["patientId"]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    patient = (request.get("prefetch") or {}).get("patient")
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        patient = {"resourceType": "Patient", "id": patient_id}
    if not patient.get("name"):
        patient = {**patient, "name": [_example_name(patient_id)]}
    found[("Patient", patient_id)] = patient
    for value in (request.get("prefetch") or {}).values():
        for resource in _resources(value):
            kind, rid = resource.get("resourceType"), resource.get("id")
            if kind in STORED and isinstance(rid, str) and kind != "Patient":
                found[(kind, rid)] = resource
    entries = [
        {
            "fullUrl": f"urn:restless-cds:{kind}/{rid}",
            "resource": resource,
            "request": {"method": "PUT", "url": f"{kind}/{rid}"},
        }
        for (kind, rid), resource in sorted(found.items(), key=lambda kv: STORED.index(kv[0][0]))
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def expected_files() -> dict[Path, str]:
    files = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.name.endswith(".expected.json"):
            continue
        request = json.loads(path.read_text(encoding="utf-8"))
        name = path.name.removesuffix(".json")
        text = json.dumps(bundle_for(request), indent=2, ensure_ascii=False) + "\n"
        files[BUNDLES / f"{name}.bundle.json"] = text
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a bundle is stale")
    args = parser.parse_args()
    files = expected_files()
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text("utf-8") != text]
    extra = sorted(set(BUNDLES.glob("*.bundle.json")) - set(files))
    if args.check:
        for path in [*stale, *extra]:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale or extra else 0
    BUNDLES.mkdir(exist_ok=True)
    for path in stale:
        path.write_text(files[path], encoding="utf-8")
    for path in extra:
        path.unlink()
    print(f"{len(files)} bundles, {len(stale)} written, {len(extra)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
