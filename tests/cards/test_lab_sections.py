"""The lab paragraphs of the restless-syndrome cards (50-labs.yaml derives, 40- shows):
value, unit and date in the text, the guideline linked only when its paragraph shows, and
the numbers in the words equal to config.yaml's; ``rules check`` refuses a bad lab row or
an unknown section source."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds.authoring import check_rules_dir
from cds.cards import render_cards
from cds.engine import Outcome
from cds.rulebase import RuleBase
from cds.settings import bundled_rules_dir
from tests.cards.test_sections import SECTIONED_TEMPLATES, VALUES, context, detail, paragraphs

ALLEN = "https://doi.org/10.1016/j.sleep.2017.11.1126"
KDIGO = "https://doi.org/10.1038/kisup.2012.73"


def low_ferritin(reading: str = "Ferritin 32 µg/L (2026-10-02)") -> dict[str, Any]:
    return {"fact": "low_ferritin", "reading": reading, "source": "Observation/f1"}


def links(bundled_rules: RuleBase, derived: dict[str, Any], template: str) -> list[str]:
    outcome = Outcome(f"rule-for-{template}", template, VALUES)
    (card,) = render_cards([outcome], context(bundled_rules, derived))
    return [link["url"] for link in card.get("links", [])]


@pytest.mark.parametrize("template", SECTIONED_TEMPLATES)
def test_a_low_ferritin_reads_with_unit_and_date(bundled_rules: RuleBase, template: str) -> None:
    text = detail(bundled_rules, {"low_ferritin": [low_ferritin()]}, template)
    assert paragraphs(text)[-1] == (
        r"**Iron:** Ferritin 32 µg/L \(2026-10-02\): at or below 75 µg/L, iron replacement"
        " is advised in restless legs (Allen et al. 2018)."
    )


@pytest.mark.parametrize("template", SECTIONED_TEMPLATES)
def test_the_guideline_is_linked_only_when_its_paragraph_shows(
    bundled_rules: RuleBase, template: str
) -> None:
    assert ALLEN not in links(bundled_rules, {}, template)
    with_iron = links(bundled_rules, {"low_ferritin": [low_ferritin()]}, template)
    assert with_iron.count(ALLEN) == 1
    both = {
        "low_ferritin": [low_ferritin()],
        "ferritin_missing": [{"fact": "ferritin_missing", "source": "prefetch.observations"}],
        "kidney_failure": [{"fact": "kidney_failure", "reading": "eGFR 24 mL/min/1.73m2"}],
    }
    urls = links(bundled_rules, both, template)
    assert urls.count(ALLEN) == 1  # one link however many paragraphs cite it
    assert KDIGO in urls


def test_the_numbers_in_the_words_are_the_configured_ones() -> None:
    rules = bundled_rules_dir()
    config = yaml.safe_load((rules / "config.yaml").read_text(encoding="utf-8"))["settings"]
    texts = {
        s["fact"]: s["text"]
        for s in yaml.safe_load(
            (rules / "40-drug-induced-restless-syndrome.yaml").read_text(encoding="utf-8")
        )["cards"]["dose_review"]["sections"]
    }
    assert f"at or below {config['ferritin_iron_max_ug_l']} µg/L" in texts["low_ferritin"]
    assert (
        f"below {config['transferrin_saturation_min_percent']}%"
        in texts["low_transferrin_saturation"]
    )
    assert f"below {config['egfr_kidney_failure_below']} " in texts["kidney_failure"]
    months = config["lab_max_age_days"] / 365 * 12
    for fact in ("ferritin_old", "ferritin_missing"):
        assert f"in the last {months:g} months" in texts[fact]
        assert f"at or below {config['ferritin_iron_max_ug_l']} µg/L" in texts[fact]


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), target)
    return target


@pytest.mark.parametrize(
    ("old", "new", "column", "message"),
    [("2276-4\tferritin", "2276\tferritin", 1, "malformed LOINC code '2276'"),
     ("2276-4\tferritin", "2276-5\tferritin", 1, "LOINC code '2276-5' fails its check digit"),
     ("2502-3\ttransferrin_saturation", "2502-3\tiron", 2, "test 'iron' is not one of"),
     ("80385-8\tpregnancy_test\t", "2276-4\tferritin\t", 1, "2276-4 is listed twice")],
)  # fmt: skip
def test_rules_check_refuses_a_bad_lab_row(
    rules_copy: Path, old: str, new: str, column: int, message: str
) -> None:
    path = rules_copy / "valuesets" / "labs.tsv"
    text = path.read_text(encoding="utf-8")
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    [problem] = check_rules_dir(rules_copy)
    assert problem.where == f"{path}:{line}:{column}"
    assert message in problem.message


def test_rules_check_refuses_a_lab_row_without_a_source(rules_copy: Path) -> None:
    path = rules_copy / "valuesets" / "labs.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, row in enumerate(lines) if row.startswith("2106-3\t"))
    lines[index] = "\t".join([*lines[index].split("\t")[:3], ""])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    [problem] = check_rules_dir(rules_copy)
    assert problem.message == "2106-3 has no source"


def test_rules_check_refuses_an_unknown_section_source(rules_copy: Path) -> None:
    path = rules_copy / "40-drug-induced-restless-syndrome.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("sources: [kdigo-2012]", "sources: [kdigo-2099]", 1))
    problems = check_rules_dir(rules_copy)
    # the sections are shared by the seven cards (a YAML anchor): one problem each
    assert {p.message for p in problems} == {"unknown source 'kdigo-2099'"}
    assert re.search(r"40-drug-induced-restless-syndrome\.yaml:\d+:\d+$", problems[0].where)
