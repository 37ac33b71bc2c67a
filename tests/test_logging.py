"""bot/logs.py: no secret, token, URL path or card number reaches a log line, in text or JSON."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot import logs

SECRET = "pos-secret-7f3a9c"
PAN = "4111 1111 1111 1111"


@pytest.fixture(autouse=True)
def restore_logging():
    """configure() rewires the root logger; put it back so other tests (and pytest's capture) are unaffected."""
    root = logging.getLogger()
    names = [*logs.THIRD_PARTY, *logs.OWN]
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in names})
    yield
    handlers, level, levels = saved
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def configured(fmt: str = "text", level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    logs.configure(level, fmt, [SECRET, "abc"], stream=stream)
    return stream


def output(stream: io.StringIO, fmt: str) -> str:
    """Everything logged; in JSON every line must still be one valid JSON object."""
    text = stream.getvalue()
    if fmt == "json":
        assert all(isinstance(json.loads(line), dict) for line in text.splitlines())
    return text


@pytest.fixture(params=["text", "json"])
def fmt(request) -> str:
    return request.param


log = logging.getLogger("bot.test_logging")


def test_configured_secret_never_appears(fmt):
    stream = configured(fmt)
    log.info("key is %s", SECRET)
    log.warning(f"inline {SECRET}!")
    logged = output(stream, fmt)
    assert SECRET not in logged
    assert logged.count("[secret]") == 2


def test_secrets_shorter_than_four_characters_are_not_redacted_everywhere(fmt):
    # "abc" is configured too: replacing every "abc" in every line would make logs unreadable.
    stream = configured(fmt)
    log.info("abcdef")
    assert "abcdef" in stream.getvalue()


@pytest.mark.parametrize(
    "message, leaked",
    [
        ("Authorization: Bearer xyz.token.42", "xyz.token.42"),
        ("headers {'Authorization': 'Bearer hdr-token-9'}", "hdr-token-9"),
        ("sending Bearer plain-token-1", "plain-token-1"),
        ("retrying with token=tok-123&page=2", "tok-123"),
        ('body {"api_key": "AKIA123456"}', "AKIA123456"),
        ("password: hunter22", "hunter22"),
    ],
)
def test_credentials_in_messages_are_redacted(fmt, message, leaked):
    stream = configured(fmt)
    log.info(message)
    logged = output(stream, fmt)
    assert leaked not in logged
    assert "[secret]" in logged


def test_urls_are_reduced_to_scheme_and_host(fmt):
    stream = configured(fmt)
    log.info("fetched %s", "https://spn4.meraki.com/stream/jpeg/snapshot/abc?token=x")
    log.info("connecting to postgresql+psycopg://flp:pw-9876@db.internal:5432/flp")
    log.info("base https://api.meraki.com")
    logged = output(stream, fmt)
    assert "https://spn4.meraki.com/[redacted]" in logged
    assert "snapshot" not in logged and "token=x" not in logged
    assert "pw-9876" not in logged and "postgresql+psycopg://[redacted]@db.internal:5432/[redacted]" in logged
    assert "base https://api.meraki.com" in logged


def test_card_number_in_message_and_in_arguments_is_replaced(fmt):
    stream = configured(fmt)
    log.info(f"paid with {PAN}")
    log.info("paid with %s at %s", "5500-0000-0000-0004", "reg-1")
    logged = output(stream, fmt)
    assert "1111" not in logged and "5500" not in logged
    assert logged.count("[card number]") == 2
    assert "reg-1" in logged


def test_card_number_in_a_traceback_is_replaced(fmt):
    stream = configured(fmt)
    try:
        raise ValueError(f"declined 4111111111111111 with key {SECRET}")
    except ValueError:
        log.exception("payment failed")
    logged = output(stream, fmt)
    assert "Traceback" in logged and "ValueError: declined [card number] with key [secret]" in logged
    assert "4111111111111111" not in logged and SECRET not in logged


def test_numbers_that_are_not_card_numbers_are_kept(fmt):
    stream = configured(fmt)
    # An order number failing Luhn, a long timestamp-like id and a date stay readable.
    log.info("order 4111111111111112 at 20261124170312 on 2026-11-24, total 149.90")
    logged = output(stream, fmt)
    assert "order 4111111111111112 at 20261124170312 on 2026-11-24, total 149.90" in logged


def test_json_extra_fields_are_redacted():
    stream = configured("json")
    log.info(
        "posted",
        extra={
            "card": "4111111111111111",
            "auth": {"header": f"Bearer {SECRET}"},
            "url": "https://x.test/a/b",
            "count": 3,
        },
    )
    record = json.loads(stream.getvalue())
    assert record["card"] == "[card number]"
    assert SECRET not in json.dumps(record)
    assert record["url"] == "https://x.test/[redacted]" and record["count"] == 3
    assert record["level"] == "INFO" and record["logger"] == "bot.test_logging"


def test_a_malformed_log_call_does_not_raise():
    stream = configured()
    log.info("%s and %s", "only one")
    assert "%s and %s" in stream.getvalue() and "only one" in stream.getvalue()


def test_third_party_loggers_are_capped_at_info_even_at_debug():
    stream = configured(level="DEBUG")
    logging.getLogger("urllib3.connectionpool").debug("GET /stream/jpeg/snapshot/abc")
    logging.getLogger("some_unlisted_library").debug("unlisted library debug")
    logging.getLogger("urllib3.connectionpool").info("urllib3 info line")
    log.debug("our own debug line")
    logged = stream.getvalue()
    assert "snapshot" not in logged and "unlisted library debug" not in logged
    assert "urllib3 info line" in logged and "our own debug line" in logged
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.INFO


def test_warning_level_is_not_lowered_for_third_parties():
    stream = configured(level="WARNING")
    logging.getLogger("urllib3").info("quiet please")
    log.info("also quiet")
    log.warning("loud")
    assert stream.getvalue().count("\n") == 1 and "loud" in stream.getvalue()


def test_configure_replaces_earlier_handlers():
    first = configured()
    second = configured()
    log.info("once")
    assert first.getvalue() == "" and second.getvalue().count("once") == 1
    assert len(logging.getLogger().handlers) == 1
