"""Structured logs with the standard library: one JSON object per line (or a console
format on a terminal), each with the request id of the call it belongs to.

No URL query string ever reaches a log (a token sent as ``?access_token=`` would be
replayable from it): uvicorn's access log and our own lines carry paths only, with every
query value replaced by ``REDACTED``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import re
import sys
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson

__all__ = [
    "ConsoleFormatter",
    "JsonFormatter",
    "RedactQueryFilter",
    "configure_logging",
    "new_request_id",
    "redact_target",
    "request_id",
    "uvicorn_log_config",
]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
"""The id of the request being served (set by ``cds.observability.middleware``)."""

_QUERY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
"""A query parameter name worth keeping; anything else (a bare token) is redacted too."""
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def new_request_id(offered: str | None) -> str:
    """The client's ``X-Request-ID`` when it is a short plain token, else a fresh one."""
    if offered and _CLIENT_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def redact_target(target: str) -> str:
    """``/path?a=1&b=2`` -> ``/path?a=REDACTED&b=REDACTED``: plain names kept, values
    never (nor a name that could be a value, such as a bare token)."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    names = [
        name if _QUERY_NAME.fullmatch(name) else "REDACTED"
        for name, _ in parse_qsl(query, keep_blank_values=True)
    ]
    if not names:
        return f"{path}?REDACTED"
    return path + "?" + "&".join(f"{name}=REDACTED" for name in names[:20])


class RedactQueryFilter(logging.Filter):
    """Strips query values from uvicorn's access-log arguments; adds the request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) >= 3:
            record.args = (*args[:2], redact_target(str(args[2])), *args[3:])
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, logger, message, request id and
    every ``extra=`` field (stage timings, outcome, hookInstance...)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value not in (None, ""):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """For people at a terminal: level, logger, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD and value not in (None, "")
        )
        line = f"{record.levelname:<8} {record.name}: {record.getMessage()}"
        text = f"{line}  {extras}" if extras else line
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _formatter_class(log_format: str) -> str:
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    name = "JsonFormatter" if use_json else "ConsoleFormatter"
    return f"{__name__}.{name}"


def uvicorn_log_config(level: str, log_format: str = "auto") -> dict[str, Any]:
    """A ``logging.config`` dict for uvicorn and the service: one handler on stderr,
    the query-redacting filter on it, JSON or console lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactQueryFilter}},
        "formatters": {"default": {"()": _formatter_class(log_format)}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["redact"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {
                "handlers": ["default"],
                "level": level.upper(),
                "propagate": False,
            },
            "cds": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            # httpx logs each URL at INFO; FHIR URLs carry patient ids
            "httpx": {"level": "WARNING"},
        },
    }


def configure_logging(level: str, log_format: str = "auto") -> None:
    """Give the ``cds`` loggers a handler once (uvicorn may have configured them already)."""
    logger = logging.getLogger("cds")
    logger.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logger.level))
    if not logger.handlers:
        handler = logging.StreamHandler()
        use_json = _formatter_class(log_format).endswith("JsonFormatter")
        handler.setFormatter(JsonFormatter() if use_json else ConsoleFormatter())
        handler.addFilter(RedactQueryFilter())
        logger.addHandler(handler)
