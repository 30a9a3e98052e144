"""Precision and recall of the phrase files on the labelled corpus in ``corpus/<lang>.txt``.

``python -m tests.facts.corpus_eval`` prints the Markdown table the README carries.
A *denial error* is a feature the corpus marks as denied (``-``) or only possible / of
someone else (``~``) that the reader affirms: the worst error, none is tolerated.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cds.facts.phrases import PhraseLibrary
from cds.settings import bundled_rules_dir

CORPUS = Path(__file__).parent / "corpus"
CODES = {
    "R": "rest_provoked",
    "M": "relieved_by_movement",
    "X": "not_relieved_by_movement",
    "N": "night_worse",
    "D": "daytime_worse",
    "S": "unpleasant_sensation",
    "U": "urge_to_move",
    "I": "inner_restlessness",
    "K": "skin_lesion",
    "C": "cramp",
    "Z": "numbness",
}


@dataclass(frozen=True)
class Sentence:
    text: str
    stated: frozenset[str]
    refused: frozenset[str]  # denied or only possible: must never be read as stated
    mimics: frozenset[str]
    line: int


def load(language: str) -> list[Sentence]:
    sentences = []
    path = CORPUS / f"{language}.txt"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text, _, labels = line.partition("||")
        stated, refused, mimics = set(), set(), set()
        for label in labels.split():
            if label.startswith("mimic:"):
                mimics.add(label.removeprefix("mimic:"))
            elif label[0] == "+":
                stated.add(CODES[label[1:]])
            elif label[0] in "-~":
                refused.add(CODES[label[1:]])
            else:
                raise ValueError(f"{path}:{number}: unknown label {label!r}")
        sentences.append(
            Sentence(text.strip(), frozenset(stated), frozenset(refused), frozenset(mimics), number)
        )
    return sentences


@dataclass
class Report:
    language: str
    sentences: int = 0
    true_pos: Counter[str] = field(default_factory=Counter)
    false_pos: Counter[str] = field(default_factory=Counter)
    false_neg: Counter[str] = field(default_factory=Counter)
    denial_errors: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def precision(self, name: str) -> float:
        found = self.true_pos[name] + self.false_pos[name]
        return self.true_pos[name] / found if found else 1.0

    def recall(self, name: str) -> float:
        wanted = self.true_pos[name] + self.false_neg[name]
        return self.true_pos[name] / wanted if wanted else 1.0

    def names(self) -> list[str]:
        return sorted(set(self.true_pos) | set(self.false_pos) | set(self.false_neg))

    def support(self, name: str) -> int:
        return self.true_pos[name] + self.false_neg[name]


def evaluate(language: str, library: PhraseLibrary | None = None) -> Report:
    library = library or PhraseLibrary.load(bundled_rules_dir() / "phrases")
    report = Report(language)
    for sentence in load(language):
        report.sentences += 1
        read = library.read(sentence.text, language=language)
        got = {f"feature {n}" for n in read.features} | {f"mimic {m}" for m in read.mimics}
        want = {f"feature {n}" for n in sentence.stated} | {f"mimic {m}" for m in sentence.mimics}
        for name in got & want:
            report.true_pos[name] += 1
        for name in got - want:
            report.false_pos[name] += 1
            report.misses.append(f"line {sentence.line}: read {name}: {sentence.text}")
        for name in want - got:
            report.false_neg[name] += 1
            report.misses.append(f"line {sentence.line}: missed {name}: {sentence.text}")
        for name in sentence.refused & read.features:
            report.denial_errors.append(f"line {sentence.line}: {name}: {sentence.text}")
    return report


def markdown(reports: list[Report]) -> str:
    lines = ["| language | feature or mimic | sentences stating it | precision | recall |"]
    lines.append("|---|---|---|---|---|")
    for report in reports:
        for name in report.names():
            lines.append(
                f"| {report.language} | {name} | {report.support(name)} | "
                f"{report.precision(name):.2f} | {report.recall(name):.2f} |"
            )
    totals = ", ".join(
        f"{r.language}: {r.sentences} sentences, {len(r.denial_errors)} denial errors"
        for r in reports
    )
    return "\n".join([*lines, "", totals])


if __name__ == "__main__":
    print(
        markdown(
            [evaluate(lang) for lang in ("en", "es", "zh") if (CORPUS / f"{lang}.txt").exists()]
        )
    )
