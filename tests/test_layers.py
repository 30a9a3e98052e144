"""The package layout is the architecture: imports only go hooks -> fhir -> facts ->
engine -> cards, and the inner layers know nothing of HTTP."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cds"
LAYERS = ["hooks", "fhir", "facts", "engine", "cards"]
SHARED = {"cds.errors", "cds.settings", "cds.units", "cds"}
WEB = ("fastapi", "starlette", "uvicorn")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer_modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_layers_after_it(layer: str) -> None:
    allowed = {f"cds.{name}" for name in LAYERS[LAYERS.index(layer) :]}
    if layer == "hooks":
        allowed.add("cds.rulebase")  # the loader of facts' and engine's rule files
        allowed.add("cds.security")  # client JWT verification, a protocol concern
        allowed.add("cds.feedback")  # cards issued and their feedback (persistence)
    for module in _layer_modules(layer):
        for name in _imports(module):
            if not name.startswith("cds"):
                continue
            top = ".".join(name.split(".")[:2])
            shared = name in SHARED or top == "cds.observability"  # metrics, logs: any layer
            assert top in allowed or shared, f"{module.name} imports {name}"


@pytest.mark.parametrize("layer", ["fhir", "facts", "engine", "cards"])
def test_inner_layers_know_nothing_of_http(layer: str) -> None:
    for module in _layer_modules(layer):
        web = {n for n in _imports(module) if n.split(".")[0] in WEB}
        assert not web, f"{module.name} imports {web}"


def test_only_the_runtime_touches_durable_rules() -> None:
    users = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(n.split(".")[0] in {"durable", "durable_rules_engine"} for n in _imports(path))
    }
    assert users == {"engine/runtime.py"}
