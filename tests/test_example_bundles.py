"""Every example's patient is also a valid FHIR transaction Bundle, kept up to date."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.conftest import EXAMPLES, ROOT


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_example_bundles", ROOT / "scripts" / "build_example_bundles.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundles_are_current() -> None:
    """Run `python scripts/build_example_bundles.py` after editing an example."""
    files: dict[Path, str] = _script().expected_files()
    assert files
    stale = [p.name for p, text in files.items() if p.read_text(encoding="utf-8") != text]
    assert stale == []
    assert set((EXAMPLES / "bundles").glob("*.bundle.json")) == set(files)


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES / "bundles").glob("*.bundle.json")), ids=lambda p: p.name
)
def test_bundle_is_a_valid_transaction_with_the_patient_first(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    bundle = Bundle.model_validate(data)  # full FHIR R4 validation of every resource
    assert bundle.type == "transaction"
    entries = data["entry"]
    assert entries[0]["resource"]["resourceType"] == "Patient"
    for entry in entries:
        resource = entry["resource"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        assert resource.get("status") != "draft"
