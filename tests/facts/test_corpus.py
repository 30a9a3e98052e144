"""Issue 10: precision and recall of the phrase files on the labelled corpus, per language.

Fails below 0.95 precision or 0.90 recall for any feature or mimic stated in at least
three sentences, and on any denial error (a denied or only-possible feature read as
stated). ``python -m tests.facts.corpus_eval`` prints the table in the README.
"""

from __future__ import annotations

import pytest

from cds.facts import PhraseLibrary
from tests.facts.corpus_eval import evaluate, load, markdown

MIN_PRECISION = 0.95
MIN_RECALL = 0.90
MIN_SENTENCES = {"en": 300, "es": 60, "zh": 60}


@pytest.mark.parametrize("language", sorted(MIN_SENTENCES))
def test_corpus_precision_recall_and_no_denial_read_as_stated(
    language: str, library: PhraseLibrary
) -> None:
    report = evaluate(language, library)
    print(markdown([report]))  # shown with -s or on failure
    assert report.sentences >= MIN_SENTENCES[language]
    assert report.denial_errors == []
    weak = [
        f"{name}: precision {report.precision(name):.2f}, recall {report.recall(name):.2f}"
        for name in report.names()
        if report.support(name) >= 3
        and (report.precision(name) < MIN_PRECISION or report.recall(name) < MIN_RECALL)
    ]
    assert weak == [], "\n".join([*weak, *report.misses])


@pytest.mark.parametrize("language", sorted(MIN_SENTENCES))
def test_language_is_detected_from_the_text_alone(language: str, library: PhraseLibrary) -> None:
    """Without a `language` on the resource, most sentences pick their own phrase file."""
    sentences = load(language)
    right = sum(library.book(None, [s.text]) is library.books[language] for s in sentences)
    assert right / len(sentences) >= 0.9


def test_held_out_sentences_have_no_denial_read_as_stated(library: PhraseLibrary) -> None:
    """corpus/en-heldout.txt was written after tuning and is never tuned on: its precision
    and recall (README) estimate new wording; a denial read as stated is still an error."""
    report = evaluate("en-heldout", library)
    assert report.sentences >= 25
    assert report.denial_errors == []
