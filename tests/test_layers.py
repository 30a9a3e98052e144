"""The package layout is the architecture: imports only go down the tiers below (the
request layers hooks -> fhir -> facts -> engine -> cards among them), another package is
reached only through its ``__init__``, and the inner layers know nothing of HTTP.

Every module under ``cds/`` is read (subpackages too), absolute and relative imports alike;
``violations`` is the one checker, and the last tests plant a violation of each kind in a
small source string to prove it is caught.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cds"

TIERS: list[frozenset[str]] = [
    frozenset({"cds.__main__"}),  # python -m cds
    frozenset({"cds.cli"}),  # the command: serve builds the app with the rules it checked
    frozenset({"cds.app"}),  # the app: wires everything below
    frozenset({"cds.ui"}),  # playground and dashboard pages over hooks and authoring
    frozenset({"cds.reload"}),  # hot reload: authoring's checks on each change
    frozenset({"cds.authoring"}),  # rules check/test/explain: drives hooks like the CLI
    frozenset({"cds.hooks"}),  # the CDS Hooks protocol
    frozenset({"cds.security", "cds.feedback"}),  # client JWTs; cards issued and feedback
    frozenset({"cds.rulebase"}),  # a rules directory loaded whole (facts' and engine's files)
    frozenset({"cds.fhir"}),
    frozenset({"cds.facts"}),
    frozenset({"cds.engine"}),
    frozenset({"cds.cards"}),
    frozenset({"cds.observability"}),  # metrics and logs: any tier above may use them
]
"""Top to bottom: a unit imports only units of lower tiers (never a sibling in its own)."""

SHARED = frozenset({"cds", "cds.errors", "cds.settings", "cds.units"})
"""Importable by every unit; they import only each other."""

DEEP_IMPORT_EXCEPTIONS = {
    "cds.observability.middleware": "HTTP middleware (Starlette), kept out of the package's "
    "__init__ so that a layer importing metrics or logs does not load a web framework",
}
"""Modules of another package that may be imported directly, with the reason."""

REQUEST_LAYERS = ("hooks", "fhir", "facts", "engine", "cards")
WEB = ("fastapi", "starlette", "uvicorn")


@dataclass(frozen=True)
class Imported:
    module: str
    """The module named (relative imports resolved)."""
    names: tuple[str, ...] = ()
    """What ``from module import ...`` takes from it."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, *, is_package: bool = False) -> list[Imported]:
    """Every import in ``source`` (module ``module``), relative ones made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Imported] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(Imported(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found.append(Imported(base, tuple(alias.name for alias in node.names)))
    return found


def unit(module: str) -> str:
    """The package or top-level module a ``cds`` module belongs to (``cds.facts``)."""
    return ".".join(module.split(".")[:2])


def tier(name: str) -> int | None:
    return next((i for i, units in enumerate(TIERS) if name in units), None)


@cache
def exported(package: str) -> frozenset[str]:
    """A package's ``__all__`` (read from its ``__init__``, not imported)."""
    init = PACKAGE.parent / package.replace(".", "/") / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return frozenset(ast.literal_eval(node.value))
    return frozenset()


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """What ``source``, as module ``module``, imports against the rules above."""
    own = unit(module)
    found: list[str] = []
    for imp in imports(source, module, is_package=is_package):
        if imp.module.split(".")[0] in WEB and unit(module) in _inner_layers():
            found.append(f"{module} imports {imp.module}: the inner layers know nothing of HTTP")
        if imp.module.split(".")[0] != "cds" or unit(imp.module) == own:
            continue
        target = unit(imp.module)
        if message := _tier_problem(own, target):
            found.append(f"{module} imports {imp.module}: {message}")
        found.extend(f"{module} imports {imp.module}: {m}" for m in _entrance_problems(imp))
    return found


def _inner_layers() -> set[str]:
    return {f"cds.{name}" for name in REQUEST_LAYERS[1:]}


def _tier_problem(own: str, target: str) -> str | None:
    if target in SHARED:
        return None
    if own in SHARED:
        return f"shared module imports {target}"
    mine, theirs = tier(own), tier(target)
    if mine is None or theirs is None:
        return f"{own if mine is None else target} has no place in TIERS"
    if theirs <= mine:
        return f"{target} is not below {own}"
    return None


def _entrance_problems(imp: Imported) -> list[str]:
    """Another package only through its ``__init__``: not ``cds.facts.model``, and not a
    submodule or name the package does not export."""
    target = unit(imp.module)
    if not is_package(target):
        return []
    if imp.module != target:
        if imp.module in DEEP_IMPORT_EXCEPTIONS:
            return []
        return [f"reach {target} through its __init__"]
    hidden = [n for n in imp.names if n not in exported(target)]
    return [f"{', '.join(hidden)} not in {target}.__all__"] if hidden else []


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_module_imports_follow_the_layers(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    module = module_name(path)
    assert violations(source, module, is_package=path.name == "__init__.py") == []


def test_every_unit_has_a_place() -> None:
    units = {unit(module_name(p)) for p in _modules()}
    placed = set().union(*TIERS) | SHARED
    assert units - placed == set()


def test_subpackages_are_read() -> None:
    assert "cds.feedback.migrations.env" in {module_name(p) for p in _modules()}


def test_the_request_layers_keep_their_order() -> None:
    tiers = [tier(f"cds.{name}") for name in REQUEST_LAYERS]
    assert None not in tiers
    assert tiers == sorted(t for t in tiers if t is not None)
    assert len(set(tiers)) == len(tiers)


def test_only_the_runtime_touches_durable_rules() -> None:
    users = {
        path.relative_to(PACKAGE).as_posix()
        for path in _modules()
        if any(
            imp.module.split(".")[0] in {"durable", "durable_rules_engine"}
            for imp in imports(path.read_text(encoding="utf-8"), module_name(path))
        )
    }
    assert users == {"engine/runtime.py"}


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("cds.facts.x", "from cds.hooks import router", "cds.hooks is not below cds.facts"),
        ("cds.facts.x", "from ..hooks import router", "cds.hooks is not below cds.facts"),
        ("cds.facts.sub.x", "from ...fhir import collect_record", "not below cds.facts"),
        ("cds.cards.x", "import cds.engine", "cds.engine is not below cds.cards"),
        ("cds.security.x", "from cds.feedback import FeedbackStore", "not below cds.security"),
        ("cds.settings", "from cds.fhir import PatientRecord", "shared module imports cds.fhir"),
        ("cds.fhir.x", "from cds.facts.model import Fact", "reach cds.facts through its __init__"),
        ("cds.fhir.x", "import cds.facts.model", "reach cds.facts through its __init__"),
        ("cds.fhir.x", "from cds.facts import model", "model not in cds.facts.__all__"),
        ("cds.hooks.x", "from cds.newpkg import thing", "cds.newpkg has no place in TIERS"),
        ("cds.engine.x", "from fastapi import Request", "inner layers know nothing of HTTP"),
        ("cds.engine.x", "if TYPE_CHECKING:\n    from cds.fhir import collect_record", "below"),
    ],
)
def test_a_planted_violation_is_caught(module: str, source: str, expected: str) -> None:
    (found,) = violations(source, module)
    assert expected in found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("cds.hooks.x", "from cds.facts import Extraction, extract_facts"),
        ("cds.facts.x", "from .model import Fact"),
        ("cds.facts.x", "from cds.facts.model import Fact"),
        ("cds.engine.x", "from cds.errors import RulesError\nfrom cds.settings import Settings"),
        ("cds.app", "from cds.observability.middleware import RequestContextMiddleware"),
        ("cds.hooks.x", "import json\nfrom fastapi import APIRouter"),
    ],
)
def test_what_the_rules_allow_passes(module: str, source: str) -> None:
    assert violations(source, module) == []
