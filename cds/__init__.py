"""restless-cds: a CDS Hooks 2.0 service for drug-induced restless legs, arms and back.

The request flows one way through the packages: ``hooks`` (protocol) -> ``fhir``
(parsing, prefetch) -> ``facts`` (FHIR to flat facts) -> ``engine`` (durable-rules) ->
``cards`` (outcomes to CDS Hooks cards). ``rulebase`` ties a rules directory's files
together; ``app`` wires the FastAPI application.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
