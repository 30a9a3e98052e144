"""Complaint text -> features, from the per-language phrase files in ``rules/phrases/``.

Matching is done here in Python, not with engine ``$mt`` patterns (each reload of a
regex rule leaks memory in durable-rules). One pass over the text, linear in its length:
the text is cut into tokens once (a word in space-separated scripts, one character in
Chinese and Japanese, a punctuation mark), and at each token a trie of the phrase lists
is walked at most ``longest phrase`` tokens deep. Negation and hedging scope is carried
along while scanning, never by re-reading what came before.

A phrase counts (is *affirmed*) when no negation cue ("denies", "not", "no") stands within
``negation_window`` words before it in its comma segment, no post-negation cue ("was
denied") follows it in that segment, and no hedge ("possible", "?RLS", "r/o") or
other-person cue ("mother had") precedes it in its clause. A phrase negated right before
it ("not relieved") or by a post cue is *denied*; a hedged one is *hedged* (neither).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cds.engine import safe_load_yaml

__all__ = ["PhraseBook", "PhraseFile", "PhraseLibrary", "TextFeatures", "tokens"]

_DENIAL_WINDOW = 2
"""A feature is *denied* only when the cue stands right before it ("not relieved")."""
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff"
_WORD = rf"[^\W{_HAN}]+"
_TOKEN = re.compile(
    rf"(?P<cjk>[{_HAN}])|(?P<query>\?(?=\w))|(?P<abbr>\.(?=[ \t]*[a-z]))"
    rf"|(?P<word>{_WORD}(?:['\u2019]{_WORD})*)|(?P<mark>[^\w\s]|\n)"
)
"""A word keeps its apostrophes ("don't"); a full stop before a lower-case word ends an
abbreviation ("Neg. for rash"), not a sentence."""
# sentence ends and commas, ASCII and their CJK full-width forms (a colon is neither:
# "Restless legs: denied")
_DEFAULT_BREAKS = [".", ";", "!", "?", "\n", "\u3002", "\uff1b", "\uff01", "\uff1f"]
_DEFAULT_COMMAS = [",", "\uff0c", "\u3001"]


def tokens(text: str) -> Iterable[tuple[str, str]]:
    """(kind, token) pairs: kind ``word`` (a word, a Han character, a ``?`` glued to the
    next word), ``mark`` (punctuation, a line break) or ``abbr`` (an abbreviation's stop)."""
    for m in _TOKEN.finditer(text):
        kind = "mark" if m.lastgroup == "mark" else "word"
        if m.lastgroup == "abbr":
            kind = "abbr"  # a full stop that ends no sentence
        yield kind, m.group(0).lower().replace("\u2019", "'")


def _phrase_key(phrase: str) -> tuple[str, ...]:
    return tuple(t for _, t in tokens(phrase.strip()))


class PhraseFile(BaseModel):
    """The schema of one ``rules/phrases/<language>.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    regions: dict[str, list[str]]
    features: dict[str, list[str]]
    mimics: dict[str, list[str]] = Field(default_factory=dict)
    """Conditions that imitate a restless syndrome (cramps, oedema, ...), by name."""
    negations: list[str] = Field(min_length=1)
    negation_window: int = Field(default=4, ge=1, le=10)
    segment_negations: list[str] = Field(default_factory=list)
    """Cues that negate everything after them up to the next comma or clause end
    ("denies", "no longer"), however many words follow."""
    post_negations: list[str] = Field(default_factory=list)
    """Cues after the phrase that deny it ("restlessness was denied")."""
    post_hedges: list[str] = Field(default_factory=list)
    """Cues right after the phrase that make it uncertain ("RLS probable", "akathisia?")."""
    hedges: list[str] = Field(default_factory=list)
    """Cues before the phrase, in its clause, that make it uncertain ("possible", "r/o")."""
    other_person: list[str] = Field(default_factory=list)
    """Cues before the phrase, in its clause, saying it is about someone else ("mother")."""
    clause_breaks: list[str] = Field(default_factory=lambda: ["but", "however", "although"])
    """Words ending a clause, besides sentence punctuation and line breaks."""
    markers: list[str] = Field(default_factory=list)
    """Common words of the language, for detecting it when a resource does not say."""


@dataclass(frozen=True)
class TextFeatures:
    """What a text states: ``features`` affirmed, ``denied`` only ever negated, ``hedged``
    only ever said as possible or of another person.

    "Not relieved by walking" denies ``relieved_by_movement``: the akathisia pattern,
    which is different from a text that simply does not mention relief.
    """

    regions: frozenset[str]
    features: frozenset[str]
    denied: frozenset[str] = frozenset()
    stated_with: frozenset[tuple[str, str]] = frozenset()
    """(feature, region) pairs affirmed in one clause; region ``""`` when none is named."""
    hedged: frozenset[str] = frozenset()
    mimics: frozenset[str] = frozenset()
    """Mimics the text affirms ("nocturnal leg cramps"), by their name in ``mimics``."""

    def stated_for(self, feature: str, region: str) -> bool:
        """Whether ``feature`` was said of ``region``, or in a clause naming no region
        ("eczema on both legs" is no skin lesion of the back)."""
        return (feature, region) in self.stated_with or (feature, "") in self.stated_with


_Trie = dict[str, "_Node"]


@dataclass
class _Node:
    children: _Trie = field(default_factory=dict)
    labels: list[tuple[str, str]] = field(default_factory=list)
    """(kind, name) ending here: kind region/feature/negation/post/hedge/other/break."""


@dataclass
class _Hit:
    kind: str
    name: str
    start: int  # word index
    end: int  # word index after the hit
    segment: int
    clause: int


class PhraseBook:
    """One language's compiled phrase lists; ``read(text)`` gives what the text states."""

    def __init__(self, spec: PhraseFile) -> None:
        self._root = _Node()
        self._depth = 1
        for name, phrases in spec.regions.items():
            self._add(phrases, "region", name)
        for name, phrases in spec.features.items():
            self._add(phrases, "feature", name)
        for name, phrases in spec.mimics.items():
            self._add(phrases, "mimic", name)
        self._add(spec.negations, "negation", "")
        self._add(spec.post_negations, "post", "")
        self._add(spec.segment_negations, "segment_negation", "")
        self._add(spec.post_hedges, "post_hedge", "")
        self._add(spec.hedges, "hedge", "")
        self._add(spec.other_person, "other", "")
        self._add(spec.clause_breaks, "break", "")
        self._breaks = frozenset(_DEFAULT_BREAKS)
        self._commas = frozenset(_DEFAULT_COMMAS)
        self._window = spec.negation_window
        self.feature_names = frozenset(spec.features)
        self.markers = frozenset(k for p in spec.markers for k in [_phrase_key(p)] if len(k) == 1)

    def _add(self, phrases: list[str], kind: str, name: str) -> None:
        for phrase in phrases:
            key = _phrase_key(phrase)
            if not key:
                continue
            node = self._root
            for token in key:
                node = node.children.setdefault(token, _Node())
            node.labels.append((kind, name))
            self._depth = max(self._depth, len(key))

    @classmethod
    def load(cls, path: Path) -> PhraseBook:
        return cls(PhraseFile.model_validate(safe_load_yaml(path.read_text(encoding="utf-8"))))

    def read(self, *texts: str | None) -> TextFeatures:
        reading = _Reading()
        for text in texts:
            if text:
                self._scan(text, reading)
        return reading.result()

    def mentions_region(self, *texts: str | None) -> bool:
        """Cheap pre-check: does any text name a body region (negation not considered)?"""
        return any(text and any(h.kind == "region" for h in self._hits(text)) for text in texts)

    def marker_count(self, text: str) -> int:
        """How many of this language's marker words and phrases the text has (language
        detection: deterministic, one pass)."""
        markers = sum(1 for _, t in tokens(text) if (t,) in self.markers)
        return markers + sum(1 for h in self._hits(text) if h.kind != "break")

    def _hits(self, text: str) -> list[_Hit]:
        """Every phrase occurrence, found in one pass: the partial matches still alive are
        advanced by each token (at most ``depth`` of them), so the cost is linear."""
        hits: list[_Hit] = []
        active: list[tuple[int, _Node]] = []
        segment = clause = position = 0
        for kind, token in tokens(text):
            if kind == "abbr":
                continue
            if kind == "mark" and (token in self._breaks or token in self._commas):
                clause += token in self._breaks
                segment += 1
                active = []
                continue
            advanced = [(s, n.children[token]) for s, n in active if token in n.children]
            if token in self._root.children:
                advanced.append((position, self._root.children[token]))
            position += 1
            active = advanced
            broke = False
            for start, node in advanced:
                for label_kind, name in node.labels:
                    hits.append(_Hit(label_kind, name, start, position, segment, clause))
                    broke |= label_kind == "break"
            if broke:
                clause += 1
                segment += 1
                active = []
        hits.sort(key=lambda h: (h.end, h.start))
        return hits

    def _scan(self, text: str, reading: _Reading) -> None:
        hits = self._hits(text)
        _drop_nested_regions(hits)
        _drop_nested_features(hits)
        inside = self._feature_spans(hits)
        # segment -> (start of its latest negation cue, end of a feature phrase holding it)
        last_negation: dict[int, tuple[int, int | None]] = {}
        last_scope: dict[int, int] = {}  # clause -> end of its latest hedge / other cue
        segment_negated: dict[int, int] = {}  # segment -> end of its first segment cue
        posts = _post_cues(hits, "post")
        post_hedges = _post_cues(hits, "post_hedge")
        clause_regions: dict[int, set[str]] = {}
        pending: list[tuple[_Hit, str]] = []
        for hit in hits:  # hits are ordered by end, then start
            if hit.kind == "negation":
                last_negation[hit.segment] = (hit.start, inside(hit))
            elif hit.kind == "segment_negation":
                segment_negated.setdefault(hit.segment, hit.end)
            elif hit.kind in {"hedge", "other"}:
                last_scope[hit.clause] = hit.end
            elif hit.kind in {"region", "feature", "mimic"}:
                status = self._status(hit, last_negation, last_scope, posts)
                if status in {"affirmed", "hedged"}:
                    cut = segment_negated.get(hit.segment)
                    if cut is not None and cut <= hit.start:
                        status = "negated"
                    elif status == "affirmed" and _followed(hit, post_hedges, self._window):
                        status = "hedged"
                if hit.kind == "region" and status == "affirmed":
                    reading.regions.add(hit.name)
                    clause_regions.setdefault(hit.clause, set()).add(hit.name)
                elif hit.kind == "feature":
                    pending.append((hit, status))
                elif hit.kind == "mimic" and status == "affirmed":
                    reading.mimics.add(hit.name)
        for hit, status in pending:
            reading.note(hit.name, status, clause_regions.get(hit.clause) or {""})

    def _feature_spans(self, hits: list[_Hit]) -> Callable[[_Hit], int | None]:
        """For a negation cue, the end of the longest feature phrase that holds it: such a
        cue ("does not" in "walking does not help") negates only what overlaps that phrase
        ("not" in "not relieved" still denies "relieved by walking")."""
        end_by_start: dict[int, int] = {}
        for hit in hits:
            if hit.kind == "feature":
                end_by_start[hit.start] = max(end_by_start.get(hit.start, 0), hit.end)

        def holder_end(cue: _Hit) -> int | None:
            ends = [
                end_by_start[s]
                for s in range(cue.start - self._depth, cue.start + 1)
                if end_by_start.get(s, -1) >= cue.end
            ]
            return max(ends) if ends else None

        return holder_end

    def _status(
        self,
        hit: _Hit,
        last_negation: dict[int, tuple[int, int | None]],
        last_scope: dict[int, int],
        posts: dict[int, list[int]],
    ) -> str:
        cue, held_until = last_negation.get(hit.segment, (None, None))
        if (
            cue is not None
            and cue < hit.start
            and hit.start - cue <= self._window
            and (held_until is None or hit.start < held_until)
        ):
            return "denied" if hit.start - cue <= _DENIAL_WINDOW else "negated"
        if _followed(hit, posts, self._window):
            return "denied"
        scope = last_scope.get(hit.clause)
        if scope is not None and scope <= hit.start:
            return "hedged"
        return "affirmed"


def _drop_nested_regions(hits: list[_Hit]) -> None:
    """Keep the longest region phrase where region phrases overlap ("between the shoulder
    blades" is the back, its "shoulder" no arm)."""
    regions = sorted(
        (h for h in hits if h.kind == "region"), key=lambda h: (h.start, h.start - h.end)
    )
    covered_until = -1
    dropped: set[int] = set()
    for hit in regions:
        if hit.start < covered_until:
            dropped.add(id(hit))
        else:
            covered_until = hit.end
    hits[:] = [h for h in hits if id(h) not in dropped]


def _drop_nested_features(hits: list[_Hit]) -> None:
    """Drop a feature phrase inside a longer one ("restlessness" in "inner restlessness",
    "sit still" in "can't sit still"): the longer phrase says what is meant."""
    features = sorted(
        (h for h in hits if h.kind == "feature"), key=lambda h: (h.start, h.start - h.end)
    )
    reach = -1
    reach_start = -1
    dropped: set[int] = set()
    for hit in features:
        if hit.end <= reach and (hit.start > reach_start or hit.end < reach):
            dropped.add(id(hit))
        elif hit.end > reach:
            reach, reach_start = hit.end, hit.start
    hits[:] = [h for h in hits if id(h) not in dropped]


def _followed(hit: _Hit, cues_by_segment: dict[int, list[int]], window: int) -> bool:
    """Whether a cue starts within ``window`` words after ``hit`` (bisection)."""
    cues = cues_by_segment.get(hit.segment, [])
    after = bisect.bisect_left(cues, hit.end)
    return after < len(cues) and cues[after] - hit.end <= window


def _post_cues(hits: list[_Hit], kind: str) -> dict[int, list[int]]:
    """Starts of the post-negation cues, by segment, in order (for bisection). A cue that
    is alone in its comma segment also looks back into the one before ("Akathisia, ruled
    out"); one with other content in its segment does not ("night, rash ruled out")."""
    posts: dict[int, list[int]] = {}
    first_content: dict[int, int] = {}
    clause_of: dict[int, int] = {}
    for hit in hits:
        clause_of.setdefault(hit.segment, hit.clause)
        if hit.kind in {"region", "feature", "mimic"}:
            first_content[hit.segment] = min(first_content.get(hit.segment, hit.start), hit.start)
    for hit in hits:
        if hit.kind == kind:
            posts.setdefault(hit.segment, []).append(hit.start)
            alone = hit.segment not in first_content  # "..., denied any rash" is pre-negation
            if alone and clause_of.get(hit.segment - 1) == hit.clause:
                posts.setdefault(hit.segment - 1, []).append(hit.start)
    for cues in posts.values():
        cues.sort()
    return posts


@dataclass
class _Reading:
    regions: set[str] = field(default_factory=set)
    features: set[str] = field(default_factory=set)
    denied: set[str] = field(default_factory=set)
    hedged: set[str] = field(default_factory=set)
    stated: set[tuple[str, str]] = field(default_factory=set)
    mimics: set[str] = field(default_factory=set)

    def note(self, feature: str, status: str, regions: set[str]) -> None:
        if status == "affirmed":
            self.features.add(feature)
            self.stated.update((feature, r) for r in regions)
        elif status == "denied":
            self.denied.add(feature)
        elif status == "hedged":
            self.hedged.add(feature)

    def result(self) -> TextFeatures:
        return TextFeatures(
            frozenset(self.regions),
            frozenset(self.features),
            frozenset(self.denied - self.features),
            frozenset(self.stated),
            frozenset(self.hedged - self.features - self.denied),
            frozenset(self.mimics),
        )


class PhraseLibrary:
    """Phrase books by language (``rules/phrases/<code>.yaml``); picks one per text."""

    DEFAULT = "en"

    def __init__(self, books: dict[str, PhraseBook]) -> None:
        if self.DEFAULT not in books:
            raise ValueError(f"no {self.DEFAULT}.yaml phrase file")
        self.books = books
        self.feature_names = frozenset().union(*(b.feature_names for b in books.values()))

    @classmethod
    def load(cls, directory: Path) -> PhraseLibrary:
        return cls({p.stem: PhraseBook.load(p) for p in sorted(directory.glob("*.yaml"))})

    def book(self, language: str | None, texts: Iterable[str]) -> PhraseBook:
        """The book for a BCP-47 ``language`` ("es-MX" -> es) when we have one, else the
        language whose marker words the texts use most (ties go to English)."""
        if language:
            primary = language.split("-")[0].lower()
            if primary in self.books:
                return self.books[primary]
        sample = " ".join(texts)[:4000]  # detection reads a bounded prefix
        counts = {code: book.marker_count(sample) for code, book in self.books.items()}
        best = max(sorted(counts), key=lambda code: (counts[code], code == self.DEFAULT))
        return self.books[best] if counts[best] > 0 else self.books[self.DEFAULT]

    def read(self, *texts: str | None, language: str | None = None) -> TextFeatures:
        present = [t for t in texts if t]
        return self.book(language, present).read(*present)

    def mentions_region(self, *texts: str | None, language: str | None = None) -> bool:
        present = [t for t in texts if t]
        return self.book(language, present).mentions_region(*present)
