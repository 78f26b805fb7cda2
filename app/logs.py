"""Structured logs with structlog: JSON lines in production, readable key=value in development.

Every log line, ours or a library's (stdlib ``logging``: gunicorn, Celery,
SQLAlchemy), goes through one formatter that merges the fields bound for the
current request or job (``structlog.contextvars``) and redacts secrets. Fields
named like a credential are masked whatever they hold, and anything that looks
like a bearer token or a webhook secret is masked inside any text, so a token
never reaches a log line even through an exception message.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"
SECRET_KEYS = re.compile(r"authorization|token|secret|password|passwd|api[_-]?key|cookie|ticket", re.IGNORECASE)
# "Bearer <anything>" and Standard Webhooks secrets, wherever they appear in a text.
SECRET_TEXT = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+|whsec_[A-Za-z0-9+/=_-]+", re.IGNORECASE)
_MARK = "_orchestration_handler"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return SECRET_TEXT.sub(lambda m: (m.group(1) or "") + REDACTED, value)
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def _is_secret_key(key: Any) -> bool:
    """``token_id`` or ``tokens_listed`` are harmless counts; ``token`` and ``x-api-key`` are not."""
    return isinstance(key, str) and bool(SECRET_KEYS.search(key)) and not key.endswith(("_id", "_count"))


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: mask credential fields and token-looking text in every value."""
    for key, value in list(event_dict.items()):
        event_dict[key] = REDACTED if _is_secret_key(key) else _scrub(value)
    return event_dict


def _renderer(log_format: str) -> Any:
    if log_format == "json":
        return structlog.processors.JSONRenderer()
    # Tracebacks are formatted to text before ``redact`` runs, so they are redacted too.
    return structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0,
                                         exception_formatter=structlog.dev.plain_traceback)


def _shared() -> list[Any]:
    return [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name, structlog.processors.TimeStamper(fmt="iso", utc=True)]


def formatter(log_format: str) -> logging.Formatter:
    """The one formatter for every handler we own (root, gunicorn's)."""
    chain = _shared()  # no ExtraAdder: Celery repeats its whole message as `extra` data
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, redact, _renderer(log_format)])


def configure(log_format: str = "text", level: str | int = "INFO") -> None:
    """Idempotent: one handler of ours on the root logger (others, like pytest's, stay)."""
    structlog.configure(
        processors=[*_shared(), structlog.stdlib.PositionalArgumentsFormatter(), redact,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, _MARK, False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    handler.setFormatter(formatter(log_format))
    root.setLevel(level)
    _quiet_noise()


def adopt(logger_name: str, log_format: str) -> None:
    """Give a library's own handlers (gunicorn's error log) our format and redaction."""
    for handler in logging.getLogger(logger_name).handlers:
        handler.setFormatter(formatter(log_format))


class _NoHostnameNoise(logging.Filter):
    """kombu's ``filesystem://`` URL has no host by design; kombu warns about it at every connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No hostname was supplied")


def _quiet_noise() -> None:
    """Start-up lines that alarm newcomers and say nothing: see README "Log lines you may see"."""
    kombu = logging.getLogger("kombu.connection")
    if not any(isinstance(f, _NoHostnameNoise) for f in kombu.filters):
        kombu.addFilter(_NoHostnameNoise())
