"""A rules directory loaded whole: value sets, phrases, compiled rules, and its version.

Everything a request needs from ``rules/`` is built here once, at start-up (or on a
reload), and shared read-only by requests. The version is the declared version plus a
hash of every file's contents, so any edit shows in discovery and on each card.

The files are read once into a snapshot, the snapshot is hashed, and the snapshot (copied
to a private temporary directory) is what is checked and compiled: under hot reload an
editor may be writing while we read, and hashing the directory after compiling it gave
cards the version of an invalid edit with the text of the valid one before it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cds.engine import CompiledRules, ResultReuse, RuleEngine, compile_rules, load_located_yaml
from cds.errors import Problem, RulesError
from cds.facts import FACT_SCHEMA, ChartMemo, FactCache, Knowledge

__all__ = [
    "RuleBase",
    "Snapshot",
    "compile_directory",
    "content_hash",
    "load_rulebase",
    "rule_files",
    "snapshot_hash",
    "take_snapshot",
]

Snapshot = Mapping[str, bytes]
"""A rules directory's files by relative POSIX path, read once."""

_T = TypeVar("_T")

CONFIG_FILE = "config.yaml"
PHRASES_DIR = "phrases"


def rule_files(rules_dir: Path) -> list[Path]:
    """The rule files of a directory: every top-level ``*.yaml`` but config (phrase files
    live in ``phrases/``)."""
    return sorted(p for p in rules_dir.glob("*.yaml") if p.name != CONFIG_FILE)


def take_snapshot(rules_dir: Path) -> dict[str, bytes]:
    """Every file under the rules directory, each read once (``OSError`` if one vanishes)."""
    paths = sorted(p for p in rules_dir.rglob("*") if p.is_file())
    return {path.relative_to(rules_dir).as_posix(): path.read_bytes() for path in paths}


def snapshot_hash(snapshot: Snapshot) -> str:
    """A digest of a snapshot, names included (the version's content part)."""
    digest = hashlib.sha256()
    for name in sorted(snapshot):
        digest.update(name.encode())
        digest.update(snapshot[name])
    return digest.hexdigest()[:12]


def content_hash(rules_dir: Path) -> str:
    """A digest of every file under the rules directory, names included."""
    return snapshot_hash(take_snapshot(rules_dir))


@contextmanager
def materialised(snapshot: Snapshot) -> Iterator[Path]:
    """The snapshot written to a private temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="restless-rules-") as temporary:
        root = Path(temporary)
        for name, data in snapshot.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        yield root


def from_snapshot(snapshot: Snapshot, rules_dir: Path, work: Callable[[Path], _T]) -> _T:
    """``work`` run on the materialised snapshot; problems name ``rules_dir``, not the copy."""
    with materialised(snapshot) as copy:
        try:
            return work(copy)
        except RulesError as exc:
            problems = [
                Problem(p.where.replace(str(copy), str(rules_dir)), p.message) for p in exc.problems
            ]
            raise RulesError(problems) from exc


@dataclass(frozen=True)
class RuleBase:
    directory: Path
    version: str
    knowledge: Knowledge
    compiled: CompiledRules
    engine: RuleEngine
    fact_cache: FactCache
    """Per-resource readings under these rules (``cds.facts.cache``); dies with them."""
    engine_results: ResultReuse
    """The engine's answers to facts it has seen (``cds.engine.reuse``)."""
    chart_memo: ChartMemo
    """Whole-prefetch readings under these rules (``cds.facts.memo``)."""

    @property
    def fingerprint(self) -> str:
        """The content hash part of the version."""
        return self.version.rsplit("+", 1)[-1]

    def close(self) -> None:
        self.engine.close()


def compile_directory(rules_dir: Path) -> tuple[str, CompiledRules]:
    """Validate and compile a rules directory without registering it with the engine."""
    if not (rules_dir / CONFIG_FILE).is_file():
        raise RulesError([Problem(str(rules_dir), f"no {CONFIG_FILE} in the rules directory")])
    config = load_located_yaml(rules_dir / CONFIG_FILE)
    files = [load_located_yaml(p) for p in rule_files(rules_dir)]
    compiled = compile_rules(config, files, FACT_SCHEMA)
    declared = str(config.data.get("version")) if isinstance(config.data, dict) else "0"
    return f"{declared}+{content_hash(rules_dir)}", compiled


def load_rulebase(
    rules_dir: Path,
    snapshot: Snapshot | None = None,
    *,
    check: Callable[[Path], list[Problem]] | None = None,
) -> RuleBase:
    """Load everything from one snapshot of ``rules_dir`` (taken now if not given); raise
    ``RulesError`` (file:line:col problems) on any invalid file. The version's hash is the
    snapshot's: it names exactly the bytes compiled.

    ``check`` (the authoring checks of the files the compiler does not read) runs on the
    same copy after the compiler: every problem of both is reported at once, and nothing
    is built from files it refuses. Problems name the directory as given (as ``rules
    check`` does); the rule base keeps its resolved path."""
    directory = rules_dir.resolve()
    files = take_snapshot(directory) if snapshot is None else snapshot

    def build(copy: Path) -> tuple[str, CompiledRules, Knowledge]:
        problems: list[Problem] = []
        try:
            declared, compiled = compile_directory(copy)
        except RulesError as exc:
            problems += exc.problems
        if check is not None:
            problems += check(copy)
        if problems:
            raise RulesError(problems)
        try:
            knowledge = Knowledge.load(copy)
        except (OSError, ValueError, KeyError) as exc:
            raise RulesError([Problem(str(copy), f"value sets or phrases: {exc}")]) from exc
        rules = {
            name: dataclasses.replace(rule, file=rule.file.replace(str(copy), str(directory)))
            for name, rule in compiled.rules.items()
        }
        return declared, dataclasses.replace(compiled, rules=rules), knowledge

    declared, compiled, knowledge = from_snapshot(files, rules_dir, build)
    version = f"{declared.rsplit('+', 1)[0]}+{snapshot_hash(files)}"
    engine = RuleEngine(compiled, label=f"rules_{version.rsplit('+', maxsplit=1)[-1]}")
    return RuleBase(
        directory,
        version,
        knowledge,
        compiled,
        engine,
        FactCache(version),
        ResultReuse(),
        ChartMemo(version),
    )
