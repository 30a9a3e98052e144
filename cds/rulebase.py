"""A rules directory loaded whole: value sets, phrases, compiled rules, and its version.

Everything a request needs from ``rules/`` is built here once, at start-up (or on a
reload), and shared read-only by requests. The version is the declared version plus a
hash of every file's contents, so any edit shows in discovery and on each card.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cds.engine import CompiledRules, RuleEngine, compile_rules, load_located_yaml
from cds.errors import Problem, RulesError
from cds.facts import FACT_SCHEMA, Knowledge

__all__ = ["RuleBase", "compile_directory", "content_hash", "load_rulebase", "rule_files"]

CONFIG_FILE = "config.yaml"
PHRASES_DIR = "phrases"


def rule_files(rules_dir: Path) -> list[Path]:
    """The rule files of a directory: every top-level ``*.yaml`` but config (phrase files
    live in ``phrases/``)."""
    return sorted(p for p in rules_dir.glob("*.yaml") if p.name != CONFIG_FILE)


def content_hash(rules_dir: Path) -> str:
    """A digest of every file under the rules directory, names included."""
    digest = hashlib.sha256()
    for path in sorted(p for p in rules_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(rules_dir).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class RuleBase:
    directory: Path
    version: str
    knowledge: Knowledge
    compiled: CompiledRules
    engine: RuleEngine

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


def load_rulebase(rules_dir: Path) -> RuleBase:
    """Load everything; raise ``RulesError`` (file:line:col problems) on any invalid file."""
    rules_dir = rules_dir.resolve()
    version, compiled = compile_directory(rules_dir)
    try:
        knowledge = Knowledge.load(rules_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise RulesError([Problem(str(rules_dir), f"value sets or phrases: {exc}")]) from exc
    engine = RuleEngine(compiled, label=f"rules_{version.split('+')[-1]}")
    return RuleBase(rules_dir, version, knowledge, compiled, engine)
