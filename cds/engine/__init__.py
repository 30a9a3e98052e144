"""Rule files compiled to durable-rules and evaluated one session per request.

Knows nothing of HTTP or FHIR: facts in (flat dicts), firings and outcomes out.
"""

from cds.engine.compiler import CompiledRule, CompiledRules, FactSchema, compile_rules
from cds.engine.reuse import ResultReuse
from cds.engine.session import EngineResult, Firing, Outcome, RuleEngine
from cds.engine.sizes import approximate_size
from cds.engine.trace import first_unmet_condition
from cds.engine.yamlpos import LocatedYaml, load_located_yaml, safe_load_yaml

__all__ = [
    "CompiledRule",
    "CompiledRules",
    "EngineResult",
    "FactSchema",
    "Firing",
    "LocatedYaml",
    "Outcome",
    "ResultReuse",
    "RuleEngine",
    "approximate_size",
    "compile_rules",
    "first_unmet_condition",
    "load_located_yaml",
    "safe_load_yaml",
]
