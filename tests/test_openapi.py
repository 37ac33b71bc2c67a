"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document whose schemas accept and refuse what the real intake does."""

from __future__ import annotations

import copy
import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from bot.http.openapi_examples import TRANSACTION_EXAMPLES
from storage.models import Transaction
from tests.conftest import transaction_body
from tests.feed_events import count_rows

URL = "/api/v1/openapi.json"
# docs/interfaces.md's example ("POS webhook"); conftest's differs only in its register.
CONTRACT_EXAMPLE = transaction_body(register_id="reg-2")
# One body of each type, written here rather than taken from the served examples.
TYPED = {
    "sale": CONTRACT_EXAMPLE,
    "refund": {
        **CONTRACT_EXAMPLE,
        "transaction_id": "R-1",
        "type": "refund",
        "original_transaction_id": "T-2026-000123",
    },
    "void": {**CONTRACT_EXAMPLE, "transaction_id": "V-1", "type": "void", "original_transaction_id": "T-2026-000123"},
    "no_sale": {
        **CONTRACT_EXAMPLE,
        "transaction_id": "N-1",
        "type": "no_sale",
        "items": [],
        "total": {"amount": "0", "currency": "BRL"},
        "payment": {"method": "cash"},
    },
    "price_override": {
        **CONTRACT_EXAMPLE,
        "transaction_id": "P-1",
        "type": "price_override",
        "approver_id": "m-3",
        "items": [{"sku": "7891000100103", "quantity": 1, "unit_price": "49.90", "original_unit_price": "74.95"}],
    },
    "discount": {
        **CONTRACT_EXAMPLE,
        "transaction_id": "D-1",
        "type": "discount",
        "approver_id": "m-3",
        "discount": {"amount": "15.00", "currency": "BRL"},
    },
}


@pytest.fixture
def served(client) -> dict:
    response = client.get(URL)  # no Authorization: documentation only
    assert response.status_code == 200
    return response.get_json()


def validator(document: dict, name: str) -> Draft202012Validator:
    """A validator of one served component; its $refs resolve inside the served document."""
    return Draft202012Validator({"components": document["components"], "$ref": f"#/components/schemas/{name}"})


def test_the_document_is_valid_openapi_3_1(served):
    assert served["openapi"] == "3.1.0"
    validate(served)


def test_every_api_route_is_documented(app, served):
    documented = set(served["paths"])
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/", "/healthz", "/readyz", "/metrics"))
    }
    assert routes == documented


@pytest.mark.parametrize("kind", list(TYPED))
def test_one_body_of_each_type_fits_the_served_schema(served, kind):
    assert TYPED[kind].get("type", "sale") == kind
    assert list(validator(served, "PosTransaction").iter_errors(TYPED[kind])) == []


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("refund", "original_transaction_id"),
        ("void", "original_transaction_id"),
        ("price_override", "approver_id"),
        ("discount", "approver_id"),
        ("discount", "discount"),
    ],
)
def test_the_schema_refuses_a_type_without_its_field(served, kind, field):
    body = {k: v for k, v in TYPED[kind].items() if k != field}
    errors = list(validator(served, "PosTransaction").iter_errors(body))
    assert [e.message for e in errors] == [f"'{field}' is a required property"]
    assert list(validator(served, "PosTransaction").iter_errors({**body, field: None})) != []


def test_the_schema_refuses_what_the_model_refuses(served):
    check = validator(served, "PosTransaction")
    broken = copy.deepcopy(CONTRACT_EXAMPLE)
    broken["total"]["amount"] = 149.9
    broken["payment"]["risk_score"] = 101
    assert {tuple(e.absolute_path) for e in check.iter_errors(broken)} == {
        ("total", "amount"),
        ("payment", "risk_score"),
    }


def test_served_examples_fit_the_schema_and_are_accepted_by_the_endpoint(served, post_signed, services):
    examples = served["paths"]["/api/v1/transactions"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == set(TYPED) and examples["sale"]["value"] == CONTRACT_EXAMPLE
    for kind, example in examples.items():
        assert list(validator(served, "PosTransaction").iter_errors(example["value"])) == [], kind
        assert example["value"] == TRANSACTION_EXAMPLES[kind]
    # The sale first: a refund or void names it.
    for kind in ["sale", *(k for k in examples if k != "sale")]:
        assert post_signed("/api/v1/transactions", examples[kind]["value"]).status_code == 202, kind
    assert count_rows(services, Transaction) == len(TYPED)


def test_the_endpoint_refuses_a_refund_without_its_original_naming_the_field(post_signed, services):
    body = {k: v for k, v in TYPED["refund"].items() if k != "original_transaction_id"}
    response = post_signed("/api/v1/transactions", body)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == [
        {"field": "original_transaction_id", "message": "required for type refund"}
    ]
    assert count_rows(services, Transaction) == 0


def test_fraud_report_example_fits_its_schema(served):
    body = served["paths"]["/api/v1/fraud-reports"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert list(validator(served, "FraudReportBody").iter_errors(body)) == []
    assert list(validator(served, "FraudReportBody").iter_errors({**body, "source": "rumour"})) != []


def test_an_override_without_the_original_price_is_refused_by_schema_and_endpoint(served, post_signed, services):
    body = {**TYPED["price_override"], "items": [{"sku": "7891000100103", "quantity": 1, "unit_price": "49.90"}]}
    assert list(validator(served, "PosTransaction").iter_errors(body)) != []
    response = post_signed("/api/v1/transactions", body)
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"field": "items", "message": "a price_override needs original_unit_price on the line(s) it overrode"}
    ]
    assert count_rows(services, Transaction) == 0
