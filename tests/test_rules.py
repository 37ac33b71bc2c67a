"""The rule language: what check-config refuses (and how it says so), what evaluation records."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import RuleConfig
from core.facts import FACT_NAMES, FACT_SCHEMA, Facts
from rules.engine import (
    RuleError,
    check_condition,
    check_template,
    compile_rule,
    compile_rules,
    evaluate,
    parse_cooldown,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def rule(
    when: str = "amount >= 500",
    *,
    message: str = "Large sale of {amount}",
    cooldown: str | None = None,
    severity: str = "medium",
    name: str = "r1",
) -> RuleConfig:
    # model_construct: the config's own validators would refuse a bad rule before compile_rule sees it.
    return RuleConfig.model_construct(name=name, when=when, severity=severity, message=message, cooldown=cooldown)


def compile_error(**kwargs) -> RuleError:
    with pytest.raises(RuleError) as caught:
        compile_rule(rule(**kwargs))
    return caught.value


def fire(when: str, **facts) -> bool:
    [result] = evaluate([compile_rule(rule(when))], Facts(**facts))
    assert result.error is None
    return result.fired


# --- compile errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "when, expected",
    [
        ("amount >= 500 )", "syntax error at line 1, column 15, near ')'"),
        ("amount >= 500 @", "syntax error at line 1, column 15: unexpected character '@'"),
        ("weekday == 'sat", 'column 12: unexpected character "\'" (an unclosed string?)'),
        ("surplus_count >= 1\n  and\n  surplus_value > > 10", "syntax error at line 3, column 19, near '>'"),
        ("amount >=", "the condition ends too early"),
        ("(amount >= 500", "the condition ends too early"),
    ],
)
def test_syntax_errors_name_the_position(when, expected):
    error = compile_error(when=when)
    assert expected in error.message
    assert (error.name, error.field) == ("r1", "when")
    assert str(error).startswith("rule r1: when: syntax error")


def test_position_does_not_drift_between_rules():
    """The parser's own line counter runs on across rules; ours is computed from the text."""
    for _ in range(3):
        assert "line 2, column 5" in compile_error(when="amount\nand and").message


@pytest.mark.parametrize(
    "when, expected",
    [
        ("risk_scor > 5", "unknown fact 'risk_scor'; did you mean risk_score?"),
        ("match.similarity >= 90", "unknown fact 'match'"),
        ("shoe_size > 40", "unknown fact 'shoe_size' (the facts are listed in docs/rules.md)"),
        ("$now > 5", "$now is not available"),
        ("amount.real > 5", "facts have no attributes"),
    ],
)
def test_unknown_names_are_refused(when, expected):
    assert expected in compile_error(when=when).message


@pytest.mark.parametrize(
    "when, expected",
    [
        ("amount > 'x'", "type mismatch: amount is a number; write numbers as 500, strings as 'manual'"),
        ("weekday > 3", "weekday is a string"),
        ("matched + 1 > 0", "type mismatch"),
        ("amount", "must be true or false, but this one gives a number"),
        ("weekday", "gives a string"),
    ],
)
def test_type_errors_are_refused_before_runtime(when, expected):
    assert expected in compile_error(when=when).message


@pytest.mark.parametrize(
    "when, expected",
    [
        (
            "risk_score >= 80",
            "risk_score can be null: compare with == / != only, or say what null means, e.g. (risk_score ?? 0) >= 80",
        ),
        ("risk_score != null and risk_score >= 80", "risk_score can be null"),
        (
            "entry_mode =~ 'man'",
            "entry_mode can be null: compare with == / != only, or say what null means, e.g. (entry_mode ?? '') =~",
        ),
        ("match_similarity - 10 > 80", "match_similarity can be null"),
    ],
)
def test_nullable_facts_must_say_what_null_means(when, expected):
    assert expected in compile_error(when=when).message


def test_bad_literals_are_refused():
    assert "invalid regular expression" in compile_error(when="weekday =~ '('").message


@pytest.mark.parametrize(
    "message, expected",
    [
        ("Sale of {amount:.2f}", "placeholder {amount:.2f}: no conversions or formats"),
        ("Sale of {amount!r}", "placeholder {amount!r}: no conversions or formats"),
        ("Sale of {amount.real}", "placeholder {amount.real}: use a plain fact name"),
        ("Sale of {amount[0]}", "placeholder {amount[0]}: use a plain fact name"),
        ("Sale of {0}", "placeholder {0}: use a plain fact name"),
        ("Sale of {}", "placeholder {}: use a plain fact name"),
        ("Sale of {amont}", "unknown fact 'amont'; did you mean {amount}?"),
        ("Sale of {amount", "message template: expected '}' before end of string (write {{ and }} for literal braces)"),
        ("Sale } of", "Single '}' encountered"),
        ("{__class__}", "unknown fact '__class__'"),
    ],
)
def test_bad_message_templates_are_refused(message, expected):
    error = compile_error(message=message)
    assert error.field == "message"
    assert expected in error.message


@pytest.mark.parametrize(
    "text, seconds", [("30s", 30), ("10m", 600), ("2h", 7200), ("7d", 604800), ("0s", 0), (None, None)]
)
def test_cooldowns(text, seconds):
    assert parse_cooldown(text) == seconds


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10 minutes", "'10 minutes' is not a duration: write a whole number and s, m, h or d (30s, 10m, 2h, 7d)"),
        ("10", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("-5m", "is not a duration"),
        ("400d", "longer than a year"),
    ],
)
def test_bad_cooldowns_are_refused(text, expected):
    with pytest.raises(ValueError) as caught:
        parse_cooldown(text)
    assert expected in str(caught.value)


def test_bad_cooldown_through_compile_rule():
    bad = RuleConfig.model_construct(name="r1", when="matched", severity="low", message="m", cooldown="999d")
    with pytest.raises(RuleError) as caught:
        compile_rule(bad)
    assert caught.value.field == "cooldown" and "longer than a year" in caught.value.message


def test_plain_helpers_raise_value_errors_for_the_config_validator():
    """pydantic turns a ValueError into 'rules.N.when: <message> (file, line N)'."""
    with pytest.raises(ValueError, match="unknown fact 'risk_scor'"):
        check_condition("risk_scor > 5")
    with pytest.raises(ValueError, match="placeholder"):
        check_template("{amount:.2f}")
    assert check_condition("matched and amount > 5") == ("amount", "matched")
    assert check_template("{amount} {{literal}} {currency}") == ("amount", "currency")


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("amount risk_score()<>=!'\"?.$[]+-*/ 0123456789andornotin\n")), max_size=40)
)
def test_any_text_compiles_or_is_refused_plainly(when):
    try:
        compile_rule(rule(when=when or "x"))
    except RuleError as error:
        assert error.message and "Traceback" not in error.message


# --- evaluation -------------------------------------------------------------------------------------


def test_numbers_strings_and_booleans():
    assert fire("amount >= 500", amount=500.0)
    assert not fire("amount >= 500", amount=499.99)
    assert fire("surplus_value >= 10.1", surplus_value=10.1)  # no binary float surprise
    assert fire("hour >= 22 or hour < 6", hour=23)
    assert fire("weekday in ['sat', 'sun']", weekday="sun")
    assert fire("weekday =~ 'sat|sun'", weekday="sat")
    assert fire("store_id == 'store-001' and snapshot_kind == 'exact'", store_id="store-001", snapshot_kind="exact")
    assert fire("matched and card_fingerprint_in_fraud", matched=True, card_fingerprint_in_fraud=True)
    assert not fire("matched and card_fingerprint_in_fraud", matched=True)
    assert fire("card_fingerprint_seen_before >= 5", card_fingerprint_seen_before=5)
    assert fire("surplus_count >= 1 and unchecked_count == 0", surplus_count=2)
    assert fire("faces_count == 0 and transaction_type == 'refund'", transaction_type="refund")


def test_nullable_facts_with_null_and_with_a_value():
    high_risk = "(risk_score ?? 0) >= 80"
    assert not fire(high_risk, risk_score=None)
    assert fire(high_risk, risk_score=80)
    review = "match_similarity != null and not matched"
    assert not fire(review, match_similarity=None)
    assert fire(review, match_similarity=85.0, match_person_id="P-7")
    assert not fire(review, match_similarity=95.0, matched=True)
    assert fire("risk_score != null and (risk_score ?? 0) >= 80", risk_score=91)
    assert fire("register_id == null", register_id=None, snapshot_kind="entrance")
    assert not fire("register_id == null", register_id="reg-1")
    assert fire("entry_mode in ['manual', 'swipe']", entry_mode="swipe")
    assert not fire("entry_mode in ['manual', 'swipe']", entry_mode=None)
    assert not fire("(entry_mode ?? '') =~ 'man'", entry_mode=None)
    assert fire("payment_method != 'card'", payment_method=None)


def test_results_carry_the_facts_they_saw():
    rules = compile_rules(
        [
            rule(
                "surplus_count >= 1",
                name="product_mismatch",
                severity="medium",
                message="{surplus_count} more seen than billed (about {surplus_value} {currency})",
            ),
            rule(
                "matched",
                name="watchlist_match",
                severity="high",
                message="{match_person_id} at {register_id}",
                cooldown="10m",
            ),
        ]
    )
    facts = Facts(
        store_id="store-001", register_id="reg-2", amount=149.9, currency="BRL", surplus_count=2, surplus_value=149.9
    )
    fired, quiet = evaluate(rules, facts)
    assert (fired.rule, fired.fired, fired.severity) == ("product_mismatch", True, "medium")
    assert fired.message == "2 more seen than billed (about 149.90 BRL)"
    assert fired.facts_used == ("surplus_count",)
    assert fired.facts_seen == facts.as_dict()
    assert (quiet.fired, quiet.message, quiet.cooldown_s, quiet.facts_used) == (False, None, 600, ("matched",))
    assert quiet.facts_seen == fired.facts_seen and quiet.facts_seen is not fired.facts_seen
    stored = json.loads(json.dumps([r.to_dict() for r in (fired, quiet)]))
    assert stored[0]["facts"]["surplus_value"] == 149.9 and stored[0]["rule"] == "product_mismatch"
    assert set(stored[1]) >= {"rule", "fired", "facts"}


def test_messages_format_facts_for_people():
    [result] = evaluate(
        [
            compile_rule(
                rule(
                    "matched",
                    message="{match_person_id} {match_similarity} {risk_score} {amount} {card_fingerprint_in_fraud} {hour} {{x}}",
                )
            )
        ],
        Facts(matched=True, match_person_id="P-7", match_similarity=93.5, amount=1000.0, hour=9),
    )
    assert result.message == "P-7 93.5 unknown 1000.00 no 9 {x}"


def test_a_rule_that_cannot_be_evaluated_does_not_fire_and_says_why():
    [result] = evaluate([compile_rule(rule("amount / faces_count > 10"))], Facts(amount=50.0, faces_count=0))
    assert not result.fired and result.message is None
    assert "could not be evaluated" in result.error and "division by zero" in result.error


# --- facts and their documentation ------------------------------------------------------------------


def test_every_fact_is_typed_and_documented():
    documented = DOCS.read_text(encoding="utf-8")
    for spec in FACT_SCHEMA:
        assert spec.kind in {"number", "string", "boolean"} and spec.meaning
        assert f"| `{spec.name}` |" in documented, f"{spec.name} missing from docs/rules.md"
    assert {f.name for f in fields(Facts)} == FACT_NAMES
    json.dumps(Facts().as_dict())


def test_example_rules_in_the_docs_compile():
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    examples = [r for block in blocks for r in (yaml.safe_load(block) or {}).get("rules", [])]
    assert len(examples) >= 8
    compiled = compile_rules(RuleConfig(**r) for r in examples)
    names = {c.name for c in compiled}
    fired = {
        r.rule
        for r in evaluate(
            compiled,
            Facts(
                register_id="reg-1",
                matched=True,
                match_similarity=97.0,
                match_person_id="P-7",
                surplus_count=1,
                entry_mode="manual",
                risk_score=85,
                payment_method="card",
                amount=1200.0,
                currency="BRL",
                hour=23,
            ),
        )
        if r.fired
    }
    assert (
        fired == {"watchlist_match", "product_mismatch", "keyed_card_high_risk", "large_sale_at_night"}
        and fired <= names
    )
