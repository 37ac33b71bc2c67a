"""Property tests of the POS intake (docs/interfaces.md) with hypothesis: whatever arrives, the answer is a 2xx
or a problem+json 4xx, never a 5xx, and nothing is stored unless the answer is 202. SQLite only."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from werkzeug.http import parse_options_header

from bot.http import credential_failures
from core import signatures
from core.card_numbers import card_number_paths
from storage.models import AuditEntry, FraudReport, Transaction, WorkItem
from storage.uow import UnitOfWork
from tests.conftest import POS_SECRET, transaction_body

TRANSACTIONS, FRAUD_REPORTS = "/api/v1/transactions", "/api/v1/fraud-reports"
VALID_SIGNATURES = ("valid", "reordered", "rotated")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """SQLite only: these properties are about the HTTP edge, not the backend."""
    return sqlite_database_url


@pytest.fixture
def app(app):
    """Thousands of wrong signatures from one address: held back after ten otherwise (tests/security/test_creds.py)."""
    app.extensions[credential_failures.EXTENSION] = credential_failures.CredentialFailures(limit=1_000_000)
    return app


def fraud_body(**changes: Any) -> dict[str, Any]:
    return {
        "transaction_id": "T-2026-000123",
        "reason": "chargeback received",
        "source": "chargeback",
        "reported_at": "2026-11-25T10:00:00-03:00",
        **changes,
    }


# --- what arrives -------------------------------------------------------------------------------------


def _with_offset(moment: datetime, minutes: int) -> str:
    return f"{moment.isoformat()}{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


any_moment = st.builds(  # any year, any offset: the ends of the range overflow when moved to UTC
    _with_offset,
    st.one_of(
        st.datetimes(), st.datetimes(max_value=datetime(1, 1, 2)), st.datetimes(min_value=datetime(9999, 12, 31))
    ),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
odd_text = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(categories=["Cs", "Cc", "Nd", "Lu"]), max_size=6),  # surrogates, NUL, other digits
    st.sampled_from(["4111 1111 1111 1111", "5500-0000-0000-0004", "", "\x00", "\ud800", "NaN", "٣٤٥", "1e999"]),
    any_moment,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=10,
)
raw_tokens = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        "-1e999",
        "1" * 5000,
        "4111111111111111",
        "4111111111111111.0",
        '"\\ud800"',
        '"\\udc00x"',
        '"\\u0000"',
        '{"a": 1, "a": 2}',
        '{"a_id": {"pan": "4111111111111111"}}',
        "[]",
    ]
) | st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    return [path] + [p for key, value in children for p in _paths(value, path + (key,))]


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """A valid body with a few fields replaced, deleted, nested or added, maybe with a raw token spliced in."""
    body = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        if not body:
            break
        path = draw(st.sampled_from(_paths(body)[1:]))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["replace", "replace", "delete", "nest_list", "nest_object", "add", "add", "moment"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "add":
            body[draw(odd_text)] = draw(json_values)  # unknown fields are kept: the body stays valid
        elif op == "moment":
            body["occurred_at" if "occurred_at" in base else "reported_at"] = draw(any_moment)
        elif op == "nest_list":
            parent[path[-1]] = [parent[path[-1]]]
        elif op == "nest_object":
            parent[path[-1]] = {"value": parent[path[-1]]}
        else:
            parent[path[-1]] = draw(json_values)
    raw = json.dumps(body).encode()
    splice = draw(st.sampled_from(["none", "none", "token", "repeated_key"]))
    if splice != "none" and body:
        key = json.dumps(draw(st.sampled_from(sorted(body))) if splice == "repeated_key" else "spliced")
        value = draw(raw_tokens) if splice == "token" else json.dumps(draw(json_values))
        raw = b"{" + f"{key}: {value}, ".encode() + raw[1:]
    return raw


arbitrary_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([json.dumps(transaction_body()).encode(), json.dumps(fraud_body()).encode()]),
)
signature_modes = st.sampled_from([*VALID_SIGNATURES, "missing", "garbage", "wrong_key", "stale", "other_body"])
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/problem+json",
            "",
            None,
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)


def post(client, clock, path: str, raw: bytes, mode: str, content_type: str | None, garbage: str = "x"):
    at = int(clock().timestamp())
    digest = signatures.sign(raw, POS_SECRET, at).split("v1=")[1]
    header = {
        "valid": signatures.sign(raw, POS_SECRET, at),
        "reordered": f"v1={digest}, t={at}",
        "rotated": f"t={at},v1={'0' * 64},v1={digest}",
        "missing": None,
        "garbage": garbage,
        "wrong_key": signatures.sign(raw, "another-secret", at),
        "stale": signatures.sign(raw, POS_SECRET, at - 301),
        "other_body": signatures.sign(raw + b" ", POS_SECRET, at),
    }[mode]
    headers = {"X-Signature": header} if header is not None else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    # input_stream, not data=: the test client would encode an empty body with a multipart type as
    # a form (76 bytes of closing boundary), and then the signature rightly does not match.
    return client.post(path, input_stream=io.BytesIO(raw), content_length=len(raw), headers=headers)


# --- what is checked ----------------------------------------------------------------------------------


def reset(services) -> None:
    """Empty what intake writes, only when something is there (an fsync per example is slow)."""
    if any(counts(services).values()):
        with UnitOfWork(services.db, write=True) as uow:
            for model in (AuditEntry, FraudReport, WorkItem, Transaction):
                uow.session.execute(delete(model))
            uow.commit()


def counts(services) -> dict[str, int]:
    with UnitOfWork(services.db) as uow:
        return {
            model.__tablename__: uow.session.scalar(select(func.count()).select_from(model))
            for model in (Transaction, FraudReport, WorkItem)
        }


def seed_transaction(client, clock) -> None:
    assert (
        post(
            client, clock, TRANSACTIONS, json.dumps(transaction_body()).encode(), "valid", "application/json"
        ).status_code
        == 202
    )


def check_answer(response, mode: str, content_type: str | None) -> None:
    status = response.status_code
    event(f"status {status}")
    assert 200 <= status < 500, response.get_data(as_text=True)
    if status >= 400:
        assert response.mimetype == "application/problem+json"
        problem = json.loads(response.get_data())
        assert problem["status"] == status and isinstance(problem["title"], str) and problem["title"]
    mimetype = parse_options_header(content_type or "")[0].lower()
    if mode not in VALID_SIGNATURES:
        assert status == 401
    elif mimetype != "application/json":
        assert status == 415
    else:
        assert status in (200, 202, 404, 409, 422)


def assert_stored_body_is_unambiguous(services) -> None:
    """What was accepted parses one way only (no repeated key, no lone surrogate) and carries no card number."""
    with UnitOfWork(services.db) as uow:
        raw = uow.session.scalar(select(Transaction.body))
    document = json.loads(raw, object_pairs_hook=_no_repeats)
    json.dumps(document, ensure_ascii=False).encode("utf-8")
    assert card_number_paths(document) == []


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    assert len({k for k, _ in pairs}) == len(pairs), f"a repeated key was stored: {pairs}"
    return dict(pairs)


@settings(PROPERTY, max_examples=250)
@given(
    path=st.sampled_from([TRANSACTIONS, FRAUD_REPORTS]),
    raw=arbitrary_bodies,
    mode=signature_modes,
    content_type=content_types,
    garbage=st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80),
)
def test_any_bytes_and_headers_get_2xx_or_a_problem_4xx_and_nothing_stored_on_4xx(
    client, services, clock, path, raw, mode, content_type, garbage
):
    if counts(services)["transactions"] == 0:
        seed_transaction(client, clock)  # so that fraud reports can be accepted; compared per example below
    before = counts(services)
    response = post(client, clock, path, raw, mode, content_type, garbage)
    check_answer(response, mode, content_type)
    after = counts(services)
    if response.status_code == 202:
        assert sum(after.values()) > sum(before.values())
    else:
        assert after == before


@settings(PROPERTY, max_examples=300)
@given(raw=mutated(transaction_body()))
@example(raw=json.dumps(transaction_body(occurred_at="0001-01-01T00:00:00+05:00")).encode())
@example(raw=b'{"note": "\\ud800", ' + json.dumps(transaction_body()).encode()[1:])
def test_mutated_transactions_get_202_and_one_row_or_a_problem_4xx_and_none(client, services, clock, raw):
    reset(services)
    response = post(client, clock, TRANSACTIONS, raw, "valid", "application/json")
    check_answer(response, "valid", "application/json")
    stored = counts(services)
    if response.status_code == 202:
        assert stored["transactions"] == 1
        assert_stored_body_is_unambiguous(services)
    else:
        assert stored == {"transactions": 0, "fraud_reports": 0, "work_items": 0}


@PROPERTY
@given(raw=mutated(fraud_body()))
@example(raw=json.dumps(fraud_body(reported_at="9999-12-31T23:59:59-05:00")).encode())
def test_mutated_fraud_reports_get_202_and_one_row_or_a_problem_4xx_and_none(client, services, clock, raw):
    reset(services)
    seed_transaction(client, clock)
    before = counts(services)
    response = post(client, clock, FRAUD_REPORTS, raw, "valid", "application/json")
    check_answer(response, "valid", "application/json")
    after = counts(services)
    if response.status_code == 202:
        assert after["fraud_reports"] == before["fraud_reports"] + 1 and after["transactions"] == 1
    else:
        assert after == before


# --- bodies the contract allows -----------------------------------------------------------------------

ids = st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z")
money = st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{1,4})?\Z")
words = st.text(st.characters(categories=["L", "Zs", "P"]), max_size=40)
moments = st.builds(
    _with_offset,
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(8999, 1, 1)),
    st.integers(-14 * 60, 14 * 60),
)


@st.composite
def valid_transactions(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["sale", "refund", "void", "no_sale", "price_override", "discount"]))
    body: dict[str, Any] = {
        "transaction_id": draw(st.from_regex(r"\A[A-Za-z0-9_.:-]{1,128}\Z")),
        "store_id": draw(st.sampled_from(["store-001"]) | ids),
        "register_id": draw(st.sampled_from(["reg-1", "reg-2"]) | ids),
        "occurred_at": draw(moments),
        "total": {"amount": draw(money), "currency": draw(st.from_regex(r"\A[A-Z]{3}\Z"))},
        "payment": {
            "method": draw(st.sampled_from(["card", "cash", "wallet", "other"])),
            "entry_mode": draw(st.sampled_from(["chip", "contactless", "swipe", "manual", "online", None])),
            "card_fingerprint": draw(st.none() | st.from_regex(r"\Afp_[a-z]{1,20}\Z")),
            "status": draw(st.from_regex(r"\A[a-z_]{1,32}\Z")),
            "risk_score": draw(st.none() | st.integers(0, 100)),
        },
        "items": draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "sku": st.text(min_size=1, max_size=64),
                        "name": words,
                        "quantity": st.integers(1, 1000) | st.decimals("0.001", "1000", places=3).map(float),
                        "unit_price": money,
                    }
                ),
                max_size=5,
            )
        ),
        "type": kind,
        **draw(st.dictionaries(st.from_regex(r"\Ax_[a-z]{1,8}\Z"), st.integers(-1000, 1000) | words, max_size=3)),
    }
    if draw(st.booleans()):
        body["cashier_id"] = draw(ids)
    if kind in ("refund", "void"):
        body["original_transaction_id"] = draw(ids)
    if kind in ("price_override", "discount"):
        body["approver_id"] = draw(ids)
    if kind == "price_override":  # the overridden line says what it cost before
        body["items"] = [
            *body["items"],
            {"sku": draw(ids), "quantity": 1, "unit_price": draw(money), "original_unit_price": draw(money)},
        ]
    if kind == "discount":
        body["discount"] = {"amount": draw(money), "currency": body["total"]["currency"]}
    return body


@PROPERTY
@given(body=valid_transactions(), indent=st.none() | st.integers(0, 2), mode=st.sampled_from(VALID_SIGNATURES))
def test_a_validly_signed_valid_transaction_is_accepted_and_stored_once(client, services, clock, body, indent, mode):
    reset(services)
    response = post(client, clock, TRANSACTIONS, json.dumps(body, indent=indent).encode(), mode, "application/json")
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json() == {"transaction_id": body["transaction_id"], "status": "accepted"}
    stored = counts(services)
    assert stored["transactions"] == 1
    known_place = body["store_id"] == "store-001" and body["register_id"] in ("reg-1", "reg-2")
    assert stored["work_items"] == (1 if known_place else 0)


# --- what the properties found, pinned ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, field",
    [
        (TRANSACTIONS, transaction_body(occurred_at="0001-01-01T00:00:00+05:00"), "occurred_at"),
        (TRANSACTIONS, transaction_body(occurred_at="9999-12-31T23:59:59-05:00"), "occurred_at"),
        (TRANSACTIONS, transaction_body(note="\ud800"), "note"),
        (TRANSACTIONS, '{"note": "4111111111111111", "note": "paid", ' + json.dumps(transaction_body())[1:], "note"),
        (TRANSACTIONS, transaction_body(note=json.loads("[" * 40 + "]" * 40)), "(body)"),
        (TRANSACTIONS, transaction_body(note=4111111111111111.0), "note"),
        (TRANSACTIONS, transaction_body(vendor_id={"pan": "4111 1111 1111 1111"}), "vendor_id.pan"),
        (TRANSACTIONS, transaction_body(total={"amount": "١٤٩.٩٠", "currency": "BRL"}), "total.amount"),
        (
            TRANSACTIONS,
            transaction_body(payment={"method": "card", "card_fingerprint": "fp\u0000"}),
            "payment.card_fingerprint",
        ),
        (FRAUD_REPORTS, fraud_body(reported_at="0001-01-01T00:00:00+00:01"), "reported_at"),
        (FRAUD_REPORTS, fraud_body(reason="a\u0000b"), "reason"),
    ],
)
def test_bodies_that_used_to_crash_or_slip_through_are_refused_with_the_field_named(
    client, services, clock, path, body, field
):
    """Found by the properties above: 500s (overflow, surrogates, NUL on PostgreSQL) or a card number stored."""
    raw = body if isinstance(body, str) else json.dumps(body)
    response = post(client, clock, path, raw.encode(), "valid", "application/json")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert counts(services) == {"transactions": 0, "fraud_reports": 0, "work_items": 0}
