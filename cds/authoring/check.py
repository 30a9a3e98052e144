"""``restless-cds rules check``: every problem in a rules directory, as file:line:col.

The rule files are checked by the compiler (schema, unknown facts and attributes, refs
to nothing, type mismatches, duplicate ids, card limits); this module adds what the
compiler does not read: the value-set TSVs (through the service's own validating loader,
``cds.facts.valuesets``: columns, malformed or duplicate codes, check digits, ingredients
that do not exist, roles without a source) and the phrase files.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from cds.engine import load_located_yaml
from cds.errors import Problem, RulesError
from cds.facts import LabCodes, PhraseFile, load_valuesets
from cds.rulebase import PHRASES_DIR, RuleBase, Snapshot, compile_directory, load_rulebase

__all__ = ["check_rules_dir", "load_checked_rulebase"]


def check_rules_dir(rules_dir: Path) -> list[Problem]:
    """All problems found, empty when the directory is fit to serve."""
    problems: list[Problem] = []
    try:
        compile_directory(rules_dir)
    except RulesError as exc:
        problems.extend(exc.problems)
    return [*problems, *_file_problems(rules_dir)]


def _file_problems(rules_dir: Path) -> list[Problem]:
    """What the compiler does not read: phrase files, value sets, lab codes."""
    return [
        *_check_phrase_dir(rules_dir / PHRASES_DIR),
        *load_valuesets(rules_dir / "valuesets")[1],
        *_check_labs(rules_dir / "valuesets" / "labs.tsv"),
    ]


def _check_labs(path: Path) -> list[Problem]:
    """labs.tsv (LOINC code and check digit, a known test, a source on every row)."""
    return LabCodes.read(path)[1]


def load_checked_rulebase(rules_dir: Path, snapshot: Snapshot | None = None) -> RuleBase:
    """The rule base, after every check ``rules check`` makes (the same problems, in the
    same order), compiling the rules once.

    ``serve``, ``create_app`` (however uvicorn is started) and the reload watcher all come
    through here, so none of them serves what ``rules check`` would refuse.
    """
    return load_rulebase(rules_dir, snapshot, check=_file_problems)


def _check_phrase_dir(directory: Path) -> list[Problem]:
    """One phrase file per language (``en.yaml`` required), each checked alone."""
    if not (directory / "en.yaml").is_file():
        return [Problem(str(directory / "en.yaml"), "missing phrase file")]
    return [p for path in sorted(directory.glob("*.yaml")) for p in _check_phrases(path)]


def _check_phrases(path: Path) -> list[Problem]:
    if not path.is_file():
        return [Problem(str(path), "missing phrase file")]
    try:
        located = load_located_yaml(path)
    except RulesError as exc:
        return exc.problems
    try:
        PhraseFile.model_validate(located.data)
    except ValidationError as exc:
        return [
            located.problem(tuple(p for p in e["loc"] if isinstance(p, str | int)), e["msg"])
            for e in exc.errors()
        ]
    return []
