"""What an operator watches: metrics (``metrics``), structured logs and request ids
(``logs``). Every layer may import this package; it imports no other part of ``cds``."""

from cds.observability import logs, metrics
from cds.observability.logs import configure_logging, uvicorn_log_config

__all__ = ["configure_logging", "logs", "metrics", "uvicorn_log_config"]
