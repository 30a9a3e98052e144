"""Helpers for engine tests: write a small rules directory, compile it, locate problems."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from cds.engine import CompiledRules, FactSchema, compile_rules, load_located_yaml
from cds.errors import Problem, RulesError

SCHEMA: FactSchema = {
    "med": {"drug": str, "day": int, "draft": bool, "dose": float},
    "symptom": {"region": str, "day": int, "severe": bool},
}
"""A small base fact schema, independent of the bundled rules."""

CONFIG = """\
version: "test-1"
settings:
  window: 5
  fraction: 0.5
  label: standard
"""

CARDS = """\
cards:
  drug_card:
    indicator: info
    summary: "About {drug}"
    detail: "Something about {drug}."
"""
"""A card template needing only ``drug``; append to a rule file that uses it."""


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write_rules(
    directory: Path, files: Mapping[str, str], config: str = CONFIG
) -> tuple[Path, list[Path]]:
    """Write ``config.yaml`` and the rule files (dedented); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "config.yaml"
    config_path.write_text(dedent(config), encoding="utf-8")
    paths = []
    for name, text in files.items():
        path = directory / name
        path.write_text(dedent(text), encoding="utf-8")
        paths.append(path)
    return config_path, paths


def compile_texts(
    directory: Path,
    files: Mapping[str, str],
    config: str = CONFIG,
    schema: FactSchema = SCHEMA,
) -> CompiledRules:
    config_path, paths = write_rules(directory, files, config)
    return compile_rules(
        load_located_yaml(config_path), [load_located_yaml(p) for p in paths], schema
    )


def problems_of(
    directory: Path,
    files: Mapping[str, str],
    config: str = CONFIG,
    schema: FactSchema = SCHEMA,
) -> list[Problem]:
    """The problems compiling these files reports; fails the test if there are none or
    if the compiler crashes instead of reporting them."""
    problems: list[Problem] = []
    try:
        compile_texts(directory, files, config, schema)
    except RulesError as exc:
        problems = exc.problems
    except Exception as exc:  # any other error is a compiler crash, not a report
        pytest.fail(f"compile_rules crashed with {type(exc).__name__}: {exc}; want RulesError")
    else:
        pytest.fail("compile_rules accepted the rules; want RulesError")
    assert problems, "RulesError without problems"
    return problems


def split_where(where: str) -> tuple[str, int, int]:
    """``file:line:col`` -> (file, line, col)."""
    path, line, col = where.rsplit(":", 2)
    return path, int(line), int(col)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the ``occurrence``-th line of dedented ``text`` containing
    ``needle``; the expected location of a problem is read off the fixture itself."""
    hits = [n for n, line in enumerate(dedent(text).splitlines(), 1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in fixture"
    return hits[occurrence - 1]


def column_of(text: str, line: int, needle: str) -> int:
    """1-based column where ``needle`` starts on ``line`` of dedented ``text``."""
    return dedent(text).splitlines()[line - 1].index(needle) + 1
