"""Terminology over rules/valuesets: drugs by code or name, conditions by code."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from cds.errors import RulesError
from cds.facts import Terminology
from cds.facts.terminology import ConditionConcept, Drug, DrugMatch
from cds.settings import bundled_rules_dir
from tests.facts.fhir_builders import ATC, ICD10CM, RXNORM, SNOMED


def _tsv(name: str) -> list[dict[str, str]]:
    path = bundled_rules_dir() / "valuesets" / name
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def _found(matches: list[DrugMatch]) -> list[tuple[str, str]]:
    return [(m.drug.ingredient, m.recognised_by) for m in matches]


AMISULPRIDE = Drug("amisulpride", "antipsychotic", "atypical (benzamide)", role="provoking")


@pytest.mark.parametrize(
    ("coding", "ingredient", "how"),
    [
        pytest.param((RXNORM, "46303"), "amisulpride", "rxnorm-ingredient", id="rxnorm-in"),
        pytest.param((RXNORM, "51272"), "quetiapine", "rxnorm-ingredient", id="rxnorm-in-2"),
        # "quetiapine 100 MG Oral Tablet", a row of drug_products.tsv
        pytest.param((RXNORM, "312743"), "quetiapine", "rxnorm-product", id="rxnorm-product"),
        pytest.param((ATC, "N05AL05"), "amisulpride", "atc", id="atc"),
        # aripiprazole has two RxNorm ingredient codes; the second counts too
        pytest.param((RXNORM, "1673265"), "aripiprazole", "rxnorm-ingredient", id="second-code"),
        pytest.param((ATC, "N04BA02"), "levodopa", "atc", id="second-atc"),
    ],
)
def test_match_codes(
    terminology: Terminology, coding: tuple[str, str], ingredient: str, how: str
) -> None:
    assert _found(terminology.match_codes([coding])) == [(ingredient, how)]


def test_match_code_gives_the_drug_row(terminology: Terminology) -> None:
    (match,) = terminology.match_codes([(RXNORM, "46303")])
    assert match.drug == AMISULPRIDE


def test_combination_product_gives_each_ingredient(terminology: Terminology) -> None:
    # 403969: fluoxetine 25 MG / olanzapine 6 MG Oral Capsule
    found = _found(terminology.match_codes([(RXNORM, "403969")]))
    assert found == [("fluoxetine", "rxnorm-product"), ("olanzapine", "rxnorm-product")]


def test_one_match_per_ingredient_first_code_wins(terminology: Terminology) -> None:
    found = terminology.match_codes([(RXNORM, "46303"), (ATC, "N05AL05"), (RXNORM, "46303")])
    assert _found(found) == [("amisulpride", "rxnorm-ingredient")]


@pytest.mark.parametrize(
    "coding",
    [
        pytest.param((RXNORM, "999999999"), id="unknown-code"),
        pytest.param((SNOMED, "46303"), id="rxnorm-code-wrong-system"),
        pytest.param((RXNORM, "N05AL05"), id="atc-code-wrong-system"),
        pytest.param(("http://www.nlm.nih.gov/research/umls/rxnorm/", "46303"), id="system-typo"),
        pytest.param((None, "46303"), id="no-system"),
        pytest.param((RXNORM, None), id="no-code"),
        pytest.param((None, None), id="nothing"),
    ],
)
def test_match_codes_does_not_fire(
    terminology: Terminology, coding: tuple[str | None, str | None]
) -> None:
    assert terminology.match_codes([coding]) == []


@pytest.mark.parametrize(
    ("text", "ingredient"),
    [
        ("sertraline hydrochloride 50 mg", "sertraline"),
        ("Amisulpride 200 mg tablet", "amisulpride"),
        ("QUETIAPINE 25 MG", "quetiapine"),
        ("quetiapine-XR 300", "quetiapine"),
        ("lithium carbonate 400 mg", "lithium"),
        ("clozapine", "clozapine"),
        ("olanzapine", "olanzapine"),
    ],
)
def test_match_text(terminology: Terminology, text: str, ingredient: str) -> None:
    assert _found(terminology.match_text([text])) == [(ingredient, "text")]


def test_match_text_across_texts(terminology: Terminology) -> None:
    found = _found(terminology.match_text([None, "Levodopa/carbidopa 100/25", "", "levodopa"]))
    assert found == [("levodopa", "text"), ("carbidopa", "text")]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "atorvastatin 20 mg",
        "xsertraline",
        "sertralines",
        "clozapine-like",  # the whole word is clozapine, never olanzapine
    ],
)
def test_match_text_does_not_fire_or_only_exactly(terminology: Terminology, text: str) -> None:
    found = {m.drug.ingredient for m in terminology.match_text([text])}
    assert found <= {"clozapine"}
    assert "olanzapine" not in found


def test_clozapine_never_matches_olanzapine(terminology: Terminology) -> None:
    assert _found(terminology.match_text(["clozapine 100 mg"])) == [("clozapine", "text")]
    assert _found(terminology.match_text(["olanzapine 10 mg"])) == [("olanzapine", "text")]


def test_dopaminergic_treatment_is_recognised_but_not_provoking(terminology: Terminology) -> None:
    for matches in (
        terminology.match_codes([(RXNORM, "6375")]),
        terminology.match_codes([(ATC, "N04BA01")]),
        terminology.match_text(["levodopa 100 mg"]),
    ):
        (match,) = matches
        assert match.drug.ingredient == "levodopa"
        assert match.drug.drug_class == "dopaminergic_rls_treatment"
        assert match.drug.provoking is False
    (pramipexole,) = terminology.match_text(["pramipexole 0.125 mg"])
    assert pramipexole.drug.provoking is False


@pytest.mark.parametrize(
    ("system", "code", "category"),
    [
        (SNOMED, "32914008", "restless_syndrome"),
        (ICD10CM, "G25.81", "restless_syndrome"),
        (ICD10CM, "G25.71", "akathisia"),
        (SNOMED, "230333002", "akathisia"),
        (SNOMED, "418290006", "sensory_complaint"),
        (ICD10CM, "R21", "skin_lesion"),
        (SNOMED, "161891005", "back_complaint"),
        (ICD10CM, "D50.9", "secondary_cause"),
    ],
)
def test_condition_codes(terminology: Terminology, system: str, code: str, category: str) -> None:
    concept = terminology.condition(system, code)
    assert concept is not None
    assert concept.category == category


def test_condition_concept_row(terminology: Terminology) -> None:
    assert terminology.condition(ICD10CM, "G25.81") == ConditionConcept(
        "restless_syndrome",
        "Restless legs syndrome (Willis-Ekbom disease)",
        "Restless legs syndrome",
    )


@pytest.mark.parametrize(
    ("system", "code"),
    [(ICD10CM, "32914008"), (SNOMED, "G25.81"), (SNOMED, "38341003"), (None, None)],
)
def test_condition_does_not_fire(
    terminology: Terminology, system: str | None, code: str | None
) -> None:
    assert terminology.condition(system, code) is None


def test_every_drug_row_is_loaded_with_its_sourced_role(terminology: Terminology) -> None:
    rows = _tsv("drugs.tsv")
    roles = {r["ingredient"]: r for r in _tsv("drug_roles.tsv")}
    assert set(terminology.drugs) == {r["ingredient"] for r in rows}
    for row in rows:
        drug = terminology.drugs[row["ingredient"]]
        # the role is the authors' (drug_roles.tsv, with its source), not the class's
        assert drug.role == roles[row["ingredient"]]["role"], drug
        assert drug.provoking is (drug.role == "provoking")
        assert row["role_source"] == roles[row["ingredient"]]["source"]


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("bupropion XL 150 mg", "not_provoking"),
        ("trazodone 50 mg at night", "uncertain"),
        ("promethazine 25 mg", "provoking"),
        ("diphenhydramine 50 mg", "provoking"),
        ("hydroxyzine 25 mg", "provoking"),
        ("mianserin 30 mg", "provoking"),
        ("flupentixol 3 mg", "provoking"),
        ("pregabalin 75 mg", "treatment"),
    ],
)
def test_drug_roles_follow_the_evidence_not_the_class(
    terminology: Terminology, text: str, role: str
) -> None:
    """Issue 10: bupropion is advised for people with RLS; trazodone's evidence is mixed;
    sedating antihistamines worsen RLS (Silber et al. 2021); non-US drugs by name."""
    (match,) = terminology.match_text([text])
    assert match.drug.role == role


def test_every_product_row_is_recognised(terminology: Terminology) -> None:
    for row in _tsv("drug_products.tsv"):
        found = terminology.match_codes([(RXNORM, row["rxnorm_code"])])
        assert [m.drug.ingredient for m in found] == row["ingredients"].split(";"), row


def test_every_ingredient_code_is_recognised(terminology: Terminology) -> None:
    for row in _tsv("drugs.tsv"):
        for system, column in ((RXNORM, "rxnorm_ingredient"), (ATC, "atc")):
            for code in filter(None, row[column].split(";")):
                found = terminology.match_codes([(system, code)])
                assert row["ingredient"] in {m.drug.ingredient for m in found}, code


@pytest.mark.parametrize(
    ("text", "ingredient"),
    [
        ("Seroquel XR 300 mg", "quetiapine"),
        ("SOLIAN 200 mg", "amisulpride"),
        ("zoloft 50mg", "sertraline"),
        ("Chlor-Trimeton 4 mg", "chlorpheniramine"),
    ],
)
def test_match_brand_name(terminology: Terminology, text: str, ingredient: str) -> None:
    assert _found(terminology.match_text([text])) == [(ingredient, "text")]


@pytest.mark.parametrize("text", ["Seroquels", "xSolian", "Zoloftine"])
def test_brand_names_are_whole_words(terminology: Terminology, text: str) -> None:
    assert terminology.match_text([text]) == []


def _copy_valuesets(tmp_path: Path, brands: str | None) -> Path:
    source = bundled_rules_dir() / "valuesets"
    for name in ("drugs.tsv", "drug_roles.tsv", "drug_products.tsv", "conditions.tsv"):
        shutil.copy(source / name, tmp_path / name)
    if brands is not None:
        (tmp_path / "brands.tsv").write_text(brands, encoding="utf-8")
    return tmp_path


def test_brands_file_is_optional(tmp_path: Path) -> None:
    terminology = Terminology.load(_copy_valuesets(tmp_path, None))
    assert terminology.match_text(["Seroquel"]) == []
    assert _found(terminology.match_text(["quetiapine"])) == [("quetiapine", "text")]


def test_brand_rows_that_would_shadow_an_ingredient_or_invent_a_drug_are_refused(
    tmp_path: Path,
) -> None:
    """A brand spelt like another ingredient would read "sertraline" as quetiapine; a brand
    of an unknown ingredient would invent a drug: the service refuses both, located."""
    brands = (
        "# test brands\n"
        "brand\tingredient\tsource\n"
        "Sertraline\tquetiapine\tmisfiled row\n"
        "Madeupzine\tnot-a-drug-of-ours\tunknown ingredient\n"
        "Quetty\tquetiapine\ttest\n"
    )
    directory = _copy_valuesets(tmp_path, brands)
    with pytest.raises(RulesError) as caught:
        Terminology.load(directory)
    assert [str(p) for p in caught.value.problems] == [
        f"{directory / 'brands.tsv'}:3:1: 'Sertraline' is the name of an ingredient, not a brand",
        f"{directory / 'brands.tsv'}:4:2: unknown ingredient 'not-a-drug-of-ours'",
    ]
    brands = "brand\tingredient\tsource\nQuetty\tquetiapine\ttest\n"
    terminology = Terminology.load(_copy_valuesets(tmp_path, brands))
    assert _found(terminology.match_text(["Quetty"])) == [("quetiapine", "text")]


@pytest.mark.parametrize(
    ("ingredient", "code"), [("venlafaxine", "39786"), ("amisulpride", "46303")]
)
def test_ingredient_code_is_the_drug_rows_first_rxnorm_code(
    terminology: Terminology, ingredient: str, code: str
) -> None:
    """The code a suggestion written in mg of the ingredient carries (drugs.tsv)."""
    assert terminology.ingredient_code(ingredient) == code
    assert terminology.match_codes([(RXNORM, code)])[0].drug.ingredient == ingredient


def test_ingredient_code_of_an_unknown_or_uncoded_drug_is_none(terminology: Terminology) -> None:
    assert terminology.ingredient_code("not-a-drug") is None
    assert terminology.ingredient_code("agomelatine") is None  # drugs.tsv: no RxNorm code
