"""YAML loading that remembers file:line:col for every key and list item."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cds.engine import yamlpos
from cds.engine.yamlpos import load_located_yaml, safe_load_yaml
from cds.errors import RulesError
from tests.engine.ruledir import column_of, dedent, line_of

TEXT = """\
# a comment line
top: 1
rules:
  - id: first
    when:
      - fact: med
        as: m
  - id: second
    nested: {inline: true, other: [a, b]}
"""


@pytest.fixture
def located(tmp_path: Path):
    path = tmp_path / "f.yaml"
    path.write_text(dedent(TEXT), encoding="utf-8")
    return load_located_yaml(path)


def test_data_is_plain_yaml(located) -> None:
    assert located.data == {
        "top": 1,
        "rules": [
            {"id": "first", "when": [{"fact": "med", "as": "m"}]},
            {"id": "second", "nested": {"inline": True, "other": ["a", "b"]}},
        ],
    }


@pytest.mark.parametrize(
    ("loc", "line_needle", "column_needle"),
    [
        (("top",), "top: 1", "top"),
        (("rules",), "rules:", "rules"),
        (("rules", 0), "id: first", "id"),
        (("rules", 0, "id"), "id: first", "id"),
        (("rules", 0, "when", 0, "fact"), "fact: med", "fact"),
        (("rules", 0, "when", 0, "as"), "as: m", "as"),
        (("rules", 1, "id"), "id: second", "id"),
        (("rules", 1, "nested", "other"), "nested:", "other"),
        (("rules", 1, "nested", "other", 1), "nested:", "b]"),
    ],
)
def test_marks_point_at_keys_and_items(located, loc, line_needle, column_needle) -> None:
    line = line_of(TEXT, line_needle)
    column = column_of(TEXT, line, column_needle)
    assert located.where(loc) == f"{located.path}:{line}:{column}"


def test_where_falls_back_to_the_deepest_known_position(located) -> None:
    first = line_of(TEXT, "fact: med")
    assert located.where(("rules", 0, "when", 0, "where", "day")) == f"{located.path}:{first}:9"
    assert located.where(("nowhere",)) == located.where(())
    assert located.where(()) == f"{located.path}:{line_of(TEXT, 'top: 1')}:1"


def test_problem_carries_the_location(located) -> None:
    problem = located.problem(("rules", 1, "id"), "bad id")
    assert problem.where == f"{located.path}:{line_of(TEXT, 'id: second')}:5"
    assert str(problem).endswith(": bad id")


def test_duplicate_key_is_located(tmp_path: Path) -> None:
    text = "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n"
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_located_yaml(path)
    (problem,) = info.value.problems
    assert problem.where == f"{path}:5:3"
    assert "duplicate key 'c'" in problem.message


def test_same_key_in_different_mappings_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("a: {id: 1}\nb: {id: 2}\n", encoding="utf-8")
    assert load_located_yaml(path).data == {"a": {"id": 1}, "b": {"id": 2}}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\nb: x: y\n", 2),
        ("a: [1, 2\nb: 3\nc: 4\n", 2),
        ("a:\n  - 1\n\tb: 2\n", 3),
    ],
)
def test_syntax_error_is_located(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_located_yaml(path)
    (problem,) = info.value.problems
    assert problem.message.startswith("YAML syntax")
    assert problem.where.startswith(f"{path}:{line}:")


def test_empty_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    located = load_located_yaml(path)
    assert located.data is None
    assert located.where(("x",)) == f"{path}:1:1"


def test_anchors_and_aliases_are_resolved(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("a: &x [1, 2]\nb: *x\n", encoding="utf-8")
    assert load_located_yaml(path).data == {"a": [1, 2], "b": [1, 2]}


# libyaml parses; the pure-Python loader words the errors (cds/engine/yamlpos.py)

BUNDLED = Path(__file__).resolve().parents[2] / "rules"


def _pure_python(path: Path) -> tuple[object, dict[yamlpos.Loc, tuple[int, int]]]:
    """What ``load_located_yaml`` built before libyaml: the pure-Python loader's result."""
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
    try:
        marks: dict[yamlpos.Loc, tuple[int, int]] = {}
        node = loader.get_single_node()
        assert node is not None
        data = yamlpos._convert(loader, node, (), marks, str(path))
    finally:
        loader.dispose()
    return data, marks


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
@pytest.mark.parametrize(
    "path",
    sorted([*BUNDLED.glob("*.yaml"), *BUNDLED.glob("phrases/*.yaml")]),
    ids=lambda p: p.name,
)
def test_libyaml_gives_the_pure_python_data_and_marks(path: Path) -> None:
    located = load_located_yaml(path)
    assert (located.data, located.marks) == _pure_python(path)
    assert safe_load_yaml(path.read_text(encoding="utf-8")) == yaml.safe_load(
        path.read_text(encoding="utf-8")
    )


@pytest.mark.parametrize(
    "text",
    ["a: 1\nb: x: y\n", "a: [1, 2\nb: 3\nc: 4\n", "a:\n  - 1\n\tb: 2\n", "a: !!python/name:os\n"],
)
def test_errors_are_worded_as_the_pure_python_loader_words_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(yaml.MarkedYAMLError) as pure:
        _pure_python(path)
    mark = pure.value.problem_mark
    assert mark is not None
    with pytest.raises(RulesError) as info:
        load_located_yaml(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:{mark.line + 1}:{mark.column + 1}: YAML syntax: {pure.value.problem}"
    ]
    with pytest.raises(yaml.YAMLError) as safe:
        safe_load_yaml(text)
    assert str(safe.value) == str(pure.value)
