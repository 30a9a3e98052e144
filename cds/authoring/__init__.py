"""Tools for rule authors: check a rules directory, run its examples, explain a request.

Sits above the five request layers (it drives them the way the CLI does) and is never
imported by them.
"""

from cds.authoring.check import check_rules_dir, load_checked_rulebase
from cds.authoring.explain import explain_request, format_explanation, service_for
from cds.authoring.ruletests import run_examples, run_rule_cases

__all__ = [
    "check_rules_dir",
    "explain_request",
    "format_explanation",
    "load_checked_rulebase",
    "run_examples",
    "run_rule_cases",
    "service_for",
]
