"""The CDS Hooks 2.0 protocol layer: wire models, services, routes, error mapping."""

from cds.hooks.errors import install_error_handlers
from cds.hooks.feedback import CardLedger
from cds.hooks.health import health_router
from cds.hooks.models import CardsResponse, DiscoveryResponse, HookRequest
from cds.hooks.pipeline import Evaluation, evaluate, parse_request
from cds.hooks.routes import router, with_fetched_prefetch
from cds.hooks.services import SERVICES, Service

__all__ = [
    "SERVICES",
    "CardLedger",
    "CardsResponse",
    "DiscoveryResponse",
    "Evaluation",
    "HookRequest",
    "Service",
    "evaluate",
    "health_router",
    "install_error_handlers",
    "parse_request",
    "router",
    "with_fetched_prefetch",
]
