"""Rule files -> one durable-rules ruleset, with every problem located at file:line:col.

Compilation checks what durable-rules itself would accept silently (an unknown alias, a
number compared with a string, a fact type nothing produces) and orders rules into
strata: a rule that says ``absent: T`` runs in a later stratum than every rule deriving
``T``, so negation sees the finished set of ``T`` facts whatever order facts arrive in.
Each condition with more than one test is wrapped in ``$and``: the engine silently
checks only the first key of a multi-key condition object (found here, not in the docs).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from cds.cards.templates import (
    MAX_SUMMARY_LENGTH,
    CardTemplate,
    EvidenceSource,
    placeholders,
    sentence_problems,
)
from cds.engine.expressions import Const, ExpressionError, Ref, Value, parse_value
from cds.engine.runtime import GATE_FACT, end_rule_name
from cds.engine.schema import Condition, ConfigFile, Rule, RuleFile
from cds.engine.yamlpos import Loc, LocatedYaml
from cds.errors import Problem, RulesError

__all__ = ["CompiledRule", "CompiledRules", "FactSchema", "compile_rules"]

FactSchema = Mapping[str, Mapping[str, type]]
"""Fact type -> attribute -> Python type (``bool``, ``int``, ``float``, ``str``)."""

_GATE_ALIAS = "gate__"
_END_PRIORITY = 65000
_OPERATORS = {"gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte", "ne": "$neq"}
_RESERVED_ALIASES = {_GATE_ALIAS, "config"}


@dataclass(frozen=True)
class CompiledRule:
    """What the engine needs at firing time: how to build the derived fact or card."""

    id: str
    title: str
    stage: int
    file: str
    derive_fact: str | None
    values: Mapping[str, Value]
    card_template: str | None
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class CompiledRules:
    """A rules directory compiled: the durable-rules definition and its metadata."""

    definition: dict[str, Any]
    stages: int
    rules: Mapping[str, CompiledRule]
    cards: Mapping[str, CardTemplate]
    sources: Mapping[str, EvidenceSource]
    config: Mapping[str, Any]
    fact_schema: FactSchema


def compile_rules(
    config_file: LocatedYaml, rule_files: list[LocatedYaml], base_facts: FactSchema
) -> CompiledRules:
    """Validate and compile; raise ``RulesError`` listing every problem found."""
    problems: list[Problem] = []
    config = _validate(config_file, ConfigFile, problems)
    settings = dict(config.settings) if config else {}
    parsed = [(f, _validate(f, RuleFile, problems)) for f in rule_files]
    files = [(f, rf) for f, rf in parsed if rf is not None]

    cards: dict[str, CardTemplate] = {}
    sources: dict[str, EvidenceSource] = {}
    seen_rules: dict[str, str] = {}
    for located, rule_file in files:
        for name, template in rule_file.cards.items():
            if name in cards:
                problems.append(located.problem(("cards", name), f"card '{name}' defined twice"))
            cards[name] = template
        for k, source in enumerate(rule_file.sources):
            if source.id in sources:
                msg = f"source '{source.id}' defined twice"
                problems.append(located.problem(("sources", k, "id"), msg))
            sources[source.id] = source
        for i, rule in enumerate(rule_file.rules):
            if rule.id in seen_rules:
                msg = f"rule id '{rule.id}' already used in {seen_rules[rule.id]}"
                problems.append(located.problem(("rules", i, "id"), msg))
            seen_rules[rule.id] = str(located.path)

    schema = _fact_schema(files, base_facts, problems)
    stages = _stratify(files, problems)
    compiled: dict[str, CompiledRule] = {}
    definition: dict[str, Any] = {}
    for located, rule_file in files:
        _check_cards(
            located, rule_file, sources=sources, settings=settings, schema=schema, problems=problems
        )
        for i, rule in enumerate(rule_file.rules):
            loc: Loc = ("rules", i)
            stage = stages.get(rule.id, 1)
            try:
                definition[rule.id] = _compile_rule(rule, stage, schema, settings)
                compiled[rule.id] = _rule_metadata(
                    rule, stage, located, settings, cards, schema=schema
                )
            except _LocatedError as exc:
                problems.append(located.problem((*loc, *exc.loc), exc.message))
    if problems:
        raise RulesError(problems)
    cards = {name: _with_settings(template, settings) for name, template in cards.items()}

    stage_count = max(stages.values(), default=1)
    for stage in range(1, stage_count + 1):
        definition[end_rule_name(stage)] = {
            "all": [{_GATE_ALIAS: _gate(stage)}],
            "pri": _END_PRIORITY,
        }
    # Facts that no rule matches would be refused by the engine (#286): this rule
    # matches every fact in its second condition but can never fire.
    definition["__catch_all__"] = {
        "all": [{_GATE_ALIAS: {"fact": "__never__"}}, {"any__": {"$ex": {"fact": 1}}}]
    }
    return CompiledRules(definition, stage_count, compiled, cards, sources, settings, schema)


class _LocatedError(Exception):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


_Model = TypeVar("_Model", ConfigFile, RuleFile)


def _validate(located: LocatedYaml, model: type[_Model], problems: list[Problem]) -> _Model | None:
    try:
        return model.model_validate(located.data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
            problems.append(located.problem(_yaml_path(located, loc), error["msg"]))
        return None


def _yaml_path(located: LocatedYaml, loc: Loc) -> Loc:
    # pydantic may put a union member's name into loc; keep only parts the YAML has
    path: Loc = ()
    for part in loc:
        if (*path, part) in located.marks:
            path = (*path, part)
    return path


def _fact_schema(
    files: list[tuple[LocatedYaml, RuleFile]], base: FactSchema, problems: list[Problem]
) -> dict[str, dict[str, type]]:
    """Base facts plus every derived fact type with the attributes its rules set."""
    schema: dict[str, dict[str, type]] = {k: dict(v) for k, v in base.items()}
    for located, rule_file in files:
        for i, rule in enumerate(rule_file.rules):
            derive = rule.then.derive
            if derive is None:
                continue
            if derive.fact in base:
                msg = f"'{derive.fact}' is a base fact; derive a new fact type instead"
                problems.append(located.problem(("rules", i, "then", "derive", "fact"), msg))
                continue
            attrs = schema.setdefault(derive.fact, {})
            for attr in derive.values:
                attrs.setdefault(attr, object)
    return schema


def _stratify(files: list[tuple[LocatedYaml, RuleFile]], problems: list[Problem]) -> dict[str, int]:
    rules = [rule for _, rf in files for rule in rf.rules]
    producers: dict[str, list[str]] = {}
    for rule in rules:
        if rule.then.derive:
            producers.setdefault(rule.then.derive.fact, []).append(rule.id)
    stage = {rule.id: 1 for rule in rules}
    for _ in range(len(rules) + 1):
        changed = False
        for rule in rules:
            needed = stage[rule.id]
            for cond in rule.when:
                bump = 1 if cond.absent else 0
                for producer in producers.get(cond.fact_type, []):
                    needed = max(needed, stage[producer] + bump)
            if needed != stage[rule.id]:
                stage[rule.id] = needed
                changed = True
        if not changed:
            return stage
    for located, rule_file in files:
        for i, _rule in enumerate(rule_file.rules):
            if stage[_rule.id] > len(rules):
                msg = "rule depends on its own absence through 'absent:' (a negation cycle)"
                problems.append(located.problem(("rules", i, "id"), msg))
    return stage


def _gate(stage: int) -> dict[str, Any]:
    return {"$and": [{"fact": GATE_FACT}, {"stage": stage}]}


def _compile_rule(
    rule: Rule, stage: int, schema: FactSchema, settings: Mapping[str, Any]
) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [{_GATE_ALIAS: _gate(stage)}]
    scope = _Scope(schema, settings)
    for j, cond in enumerate(rule.when):
        if cond.alias in _RESERVED_ALIASES or cond.alias in scope.bound:
            raise _LocatedError(("when", j, "as"), f"alias '{cond.alias}' is reserved or reused")
        if cond.fact_type not in schema:
            key = "fact" if cond.fact else "absent"
            msg = f"unknown fact type '{cond.fact_type}'; no extractor or rule makes it"
            raise _LocatedError(("when", j, key), msg)
        tests: list[dict[str, Any]] = [{"fact": cond.fact_type}]
        attrs = schema[cond.fact_type]
        for attr, spec in cond.where.items():
            if attr not in attrs:
                known = ", ".join(sorted(attrs))
                msg = f"'{cond.fact_type}' has no attribute '{attr}' (known: {known})"
                raise _LocatedError(("when", j, "where", attr), msg)
            try:
                tests.extend(scope.tests(attr, attrs[attr], spec))
            except (ExpressionError, ValueError) as exc:
                raise _LocatedError(("when", j, "where", attr), str(exc)) from exc
        expr = tests[0] if len(tests) == 1 else {"$and": tests}
        if cond.absent:
            conditions.append({f"absent{j}$not": expr})
        else:
            assert cond.alias is not None
            conditions.append({cond.alias: expr})
            scope.bound[cond.alias] = cond.fact_type
    return {"all": conditions, "pri": rule.priority}


@dataclass
class _Scope:
    """The aliases bound so far in one rule, for compiling its attribute tests."""

    schema: FactSchema
    settings: Mapping[str, Any]
    bound: dict[str, str] = field(default_factory=dict)

    def tests(self, attr: str, attr_type: type, spec: Any) -> list[dict[str, Any]]:
        if not isinstance(spec, dict):
            return [self.compare(None, attr, attr_type, spec)]
        tests: list[dict[str, Any]] = []
        for op, operand in spec.items():
            if op in _OPERATORS:
                tests.append(self.compare(op, attr, attr_type, operand))
            elif op == "in":
                if not isinstance(operand, list) or not operand:
                    raise ValueError("'in' takes a non-empty list")
                options = [self.compare(None, attr, attr_type, v) for v in operand]
                if len({_is_reference(o[attr]) for o in options}) > 1:
                    # durable-rules checks only the reference of such an $or (rules#308)
                    raise ValueError(
                        "'in' cannot mix references and fixed values; write two conditions"
                    )
                tests.append({"$or": options} if len(options) > 1 else options[0])
            elif op == "exists":
                if not isinstance(operand, bool):
                    raise ValueError("'exists' takes true or false")
                tests.append({"$ex" if operand else "$nex": {attr: 1}})
            else:
                raise ValueError(f"unknown test '{op}' (use gt, gte, lt, lte, ne, in, exists)")
        return tests

    def compare(self, op: str | None, attr: str, attr_type: type, raw: Any) -> dict[str, Any]:
        value = parse_value(raw, self.bound.keys(), self.settings)
        if isinstance(value, Const):
            _check_type(attr, attr_type, value.value)
            right: Any = value.value
        else:
            ref_attrs = self.schema[self.bound[value.alias]]
            if value.minus is not None:
                raise ExpressionError("a difference of two facts can only be used in 'with'")
            if value.attr not in ref_attrs:
                raise ExpressionError(f"'{value.alias}' has no attribute '{value.attr}'")
            right = {value.alias: value.attr}
            if value.offset:
                right = {"$add": {"$l": right, "$r": value.offset}}
        if op is None:
            return {attr: right}
        return {_OPERATORS[op]: {attr: right}}


def _is_reference(compiled: Any) -> bool:
    return isinstance(compiled, dict)


def _check_type(attr: str, attr_type: type, value: Any) -> None:
    if attr_type is object:
        return
    numeric = attr_type in (int, float) and isinstance(value, int | float)
    if isinstance(value, bool) != (attr_type is bool) or not (
        numeric or isinstance(value, attr_type)
    ):
        raise ValueError(f"'{attr}' is {attr_type.__name__}; {value!r} can never match it")


def _rule_metadata(
    rule: Rule,
    stage: int,
    located: LocatedYaml,
    settings: Mapping[str, Any],
    cards: Mapping[str, CardTemplate],
    *,
    schema: FactSchema,
) -> CompiledRule:
    aliases = {c.alias for c in rule.when if c.alias}
    if rule.then.derive:
        raw, where = rule.then.derive.values, ("then", "derive", "with")
    else:
        assert rule.then.card is not None
        raw, where = rule.then.card.values, ("then", "card", "with")
        template = rule.then.card.template
        if template not in cards:
            raise _LocatedError(("then", "card", "template"), f"no card template '{template}'")
        missing = _template_names(cards[template]) - set(raw)
        if missing:
            msg = f"card '{template}' needs values for: {', '.join(sorted(missing))}"
            raise _LocatedError(("then", "card", "with"), msg)
    bound = {c.alias: c.fact_type for c in rule.when if c.alias}
    values: dict[str, Value] = {}
    for key, value in raw.items():
        try:
            values[key] = parsed = parse_value(value, aliases, settings)
            if isinstance(parsed, Ref):
                refs = [(parsed.alias, parsed.attr)]
                if parsed.minus is not None:
                    refs.append(parsed.minus)
                for alias, attr in refs:
                    if attr not in schema[bound[alias]]:
                        raise ExpressionError(f"'{alias}' has no attribute '{attr}'")
        except ExpressionError as exc:
            raise _LocatedError((*where, key), str(exc)) from exc
    return CompiledRule(
        id=rule.id,
        title=rule.title,
        stage=stage,
        file=str(located.path),
        derive_fact=rule.then.derive.fact if rule.then.derive else None,
        values=values,
        card_template=rule.then.card.template if rule.then.card else None,
        conditions=tuple(rule.when),
    )


def _format_problem(text: str) -> str | None:
    """Why a template text cannot be filled in, or ``None`` when it can."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text)]
    except ValueError as exc:
        return f"malformed placeholder: {exc}"
    if any(field is not None and (field == "" or field.isdigit()) for field in fields):
        return "placeholders need a name, like {drug}"
    return None


def _check_suppression(
    located: LocatedYaml,
    name: str,
    template: CardTemplate,
    settings: Mapping[str, Any],
    problems: list[Problem],
) -> None:
    spec = template.suppression
    assert spec is not None
    where = ("cards", name, "suppression")
    codes = {r.code for r in template.override_reasons}
    for k, code in enumerate(spec.override_reasons):
        if code not in codes:
            msg = f"'{code}' is not one of this card's override reasons"
            problems.append(located.problem((*where, "override_reasons", k), msg))
    try:
        days = parse_value(spec.days, set(), settings)
    except ExpressionError as exc:
        problems.append(located.problem((*where, "days"), str(exc)))
        return
    value = days.value if isinstance(days, Const) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 365:
        problems.append(located.problem((*where, "days"), "days must be a number in (0, 365]"))


def _with_settings(template: CardTemplate, settings: Mapping[str, Any]) -> CardTemplate:
    """The template with its ``config.`` numbers (suggestion fraction, suppression days)
    resolved once here, so renderer and feedback read plain numbers."""

    def number(value: float | str) -> float:
        parsed = parse_value(value, set(), settings)
        assert isinstance(parsed, Const)  # checked by _check_cards
        return float(parsed.value)

    update: dict[str, Any] = {}
    if template.suggestion is not None:
        fraction = number(template.suggestion.fraction)
        update["suggestion"] = template.suggestion.model_copy(update={"fraction": fraction})
    if template.suppression is not None:
        days = number(template.suppression.days)
        update["suppression"] = template.suppression.model_copy(update={"days": days})
    return template.model_copy(update=update) if update else template


def _template_names(template: CardTemplate) -> set[str]:
    texts = [template.summary, template.detail, *(s.text for s in template.sections)]
    if any(_format_problem(text) for text in texts):
        return set()  # reported by _check_cards
    names = placeholders(template.summary) | placeholders(template.detail)
    for section in template.sections:
        names |= placeholders(section.text) - {"list"}
    names.update(template.dedupe_on)
    if template.suggestion:
        names |= template.suggestion.inputs
    return names


def _check_cards(
    located: LocatedYaml,
    rule_file: RuleFile,
    *,
    sources: Mapping[str, EvidenceSource],
    settings: Mapping[str, Any],
    schema: FactSchema,
    problems: list[Problem],
) -> None:
    for name, template in rule_file.cards.items():
        if len(template.summary) > MAX_SUMMARY_LENGTH:
            msg = f"summary is {len(template.summary)} characters; CDS Hooks allows 139"
            problems.append(located.problem(("cards", name, "summary"), msg))
        if template.suppression is not None:
            _check_suppression(located, name, template, settings, problems)
        for key, text in (("summary", template.summary), ("detail", template.detail)):
            if (message := _format_problem(text)) is not None:
                problems.append(located.problem(("cards", name, key), message))
            for message in sentence_problems(text):
                problems.append(located.problem(("cards", name, key), message))
        for k, section in enumerate(template.sections):
            where = ("cards", name, "sections", k)
            if (message := _format_problem(section.text)) is not None:
                problems.append(located.problem((*where, "text"), message))
            for message in sentence_problems(section.text):
                problems.append(located.problem((*where, "text"), message))
            attrs = schema.get(section.fact)
            if attrs is None:
                problems.append(
                    located.problem((*where, "fact"), f"unknown fact type '{section.fact}'")
                )
            elif section.attribute not in attrs:
                msg = f"'{section.fact}' has no attribute '{section.attribute}'"
                problems.append(located.problem((*where, "attribute"), msg))
            for j, source_id in enumerate(section.sources):
                if source_id not in sources:
                    msg = f"unknown source '{source_id}'"
                    problems.append(located.problem((*where, "sources", j), msg))
        for k, source_id in enumerate(template.sources):
            if source_id not in sources:
                msg = f"unknown source '{source_id}'"
                problems.append(located.problem(("cards", name, "sources", k), msg))
        if template.suggestion and isinstance(template.suggestion.fraction, str):
            try:
                fraction = parse_value(template.suggestion.fraction, set(), settings)
            except ExpressionError as exc:
                problems.append(
                    located.problem(("cards", name, "suggestion", "fraction"), str(exc))
                )
                continue
            if not isinstance(fraction, Const) or not 0 < float(fraction.value) < 1:
                msg = "fraction must be a number between 0 and 1"
                problems.append(located.problem(("cards", name, "suggestion", "fraction"), msg))
