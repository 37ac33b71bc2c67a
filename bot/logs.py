"""Logging set-up with redaction: no secret, card number or URL path/query ever reaches a log line.

Redaction runs on the handler, so it covers third-party loggers and tracebacks too. URLs keep
only scheme and host: Meraki snapshot links are unauthenticated capabilities and urllib3 logs
request paths. Third-party loggers are capped at INFO: only our own packages follow LOG_LEVEL
below that.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from core.card_numbers import card_number_spans, looks_like_card_number

THIRD_PARTY = (
    "urllib3",
    "requests",
    "botocore",
    "boto3",
    "webexpythonsdk",
    "webex_bot",
    "websockets",
    "waitress",
    "gunicorn",
    "apscheduler",
    "alembic",
    "sqlalchemy",
    "paho",
    "matplotlib",
    "PIL",
)
OWN = ("bot", "handlers", "storage", "rules", "cards", "vision", "fraud_loss_prevention", "__main__")
# scheme, user:password@ (dropped too: DATABASE_URL and MQTT_URL carry passwords), host, path/query.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s'\"<>?#@]*@)?([^/\s'\"<>?#@]*)([^\s'\"<>]*)")
# keyword, separator (after the closing quote of a JSON or dict key), opening quote, an optional
# auth scheme ("Authorization: Bearer <token>"), then the value.
_BEARER = re.compile(
    r"(?i)\b(bearer|token|authorization|api[_-]?key|secret|password)(['\"]?\s*[=:]\s*|\s+)(['\"]?)"
    r"(?:(?:bearer|basic|token)\s+)?[^\s'\",]+"
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Redactor(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        text = _URL.sub(_reduce_url, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}[secret]", text)
        # The intake's own search (any script's digits, dots, slashes, invisible separators), cut out run by run.
        for start, end in reversed(card_number_spans(text)):
            text = f"{text[:start]}[card number]{text[end:]}"
        return text

    def redact_value(self, value: Any) -> Any:
        """Redact inside the values of ``extra={…}``, which the JSON format prints as fields."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [self.redact_value(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool):
            return "[card number]" if looks_like_card_number(str(value)) else value
        if value is None or isinstance(value, (bool, float)):
            return value
        return self.redact(str(value))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not raise into the code that logged
            message = f"{record.msg} (log arguments did not fit the message: {record.args!r})"
        record.msg = self.redact(message)
        record.args = None
        for name in set(record.__dict__) - _STANDARD_ATTRIBUTES:
            record.__dict__[name] = self.redact_value(record.__dict__[name])
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = (), stream=None) -> Redactor:
    """Install one redacting handler on the root logger (replacing earlier ones)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    redactor = Redactor(secrets)
    handler.addFilter(redactor)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level", "name": "logger"}
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # urllib3 at DEBUG prints request paths, which for Meraki snapshots are secret capabilities.
    # The root level caps every library, including ones not listed; our packages follow LOG_LEVEL.
    capped = max(logging.getLevelName(level), logging.INFO)
    root.setLevel(capped)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(capped)
    for name in OWN:
        logging.getLogger(name).setLevel(level)
    # SQLAlchemy's pool and engine narrate every connection at INFO: noise, not operations.
    logging.getLogger("sqlalchemy").setLevel(max(capped, logging.WARNING))
    return redactor


def _reduce_url(match: re.Match[str]) -> str:
    scheme, userinfo, host, rest = match.groups()
    return f"{scheme}{'[redacted]@' if userinfo else ''}{host}{'/[redacted]' if rest else ''}"


_STANDARD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
