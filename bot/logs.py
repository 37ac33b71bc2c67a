"""Logging set-up with redaction: no secret, card number or URL path/query ever reaches a log line.

Redaction runs on the handler, so it covers third-party loggers and tracebacks too. URLs keep
only scheme and host: Meraki snapshot links are unauthenticated capabilities and urllib3 logs
request paths. Third-party loggers are capped at INFO.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Iterable

from pythonjsonlogger.json import JsonFormatter

from bot.card_numbers import looks_like_card_number

THIRD_PARTY = ("urllib3", "requests", "botocore", "boto3", "webexpythonsdk", "webex_bot", "websockets", "waitress",
               "gunicorn", "apscheduler", "alembic", "sqlalchemy", "paho", "matplotlib", "PIL")
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s'\"<>?#]+)[^\s'\"<>]*")
_BEARER = re.compile(r"(?i)\b(bearer|token|authorization|api[_-]?key|secret|password)(\s*[=:]\s*|\s+)(['\"]?)[^\s'\",]+")
_DIGITS = re.compile(r"\d(?:[ -]?\d){13,18}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Redactor(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        text = _URL.sub(lambda m: f"{m.group(1)}/[redacted]" if len(m.group(0)) > len(m.group(1)) else m.group(0), text)
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}[secret]", text)
        return _DIGITS.sub(lambda m: "[card number]" if looks_like_card_number(m.group(0)) else m.group(0), text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = (), stream=None) -> Redactor:  # type: ignore[no-untyped-def]
    """Install one redacting handler on the root logger (replacing earlier ones)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    redactor = Redactor(secrets)
    handler.addFilter(redactor)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 at DEBUG prints request paths, which for Meraki snapshots are secret capabilities.
    capped = max(logging.getLevelName(level), logging.INFO)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(capped)
    return redactor
