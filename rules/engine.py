"""Alert rules from the config file: compiled once with rule-engine, evaluated over ``Facts``.

The language itself (facts, types, the checks that name what is wrong) is the kernel's,
``core/rule_language.py``, so the configuration can validate rules without importing this package.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import rule_engine
from rule_engine import errors

from core.facts import Facts
from core.rule_language import SPECS, check_condition, check_template, compile_condition, parse_cooldown

if TYPE_CHECKING:
    from core.config import RuleConfig

__all__ = [
    "CompiledRule",
    "Facts",
    "RuleError",
    "RuleResult",
    "check_condition",
    "check_template",
    "compile_rule",
    "compile_rules",
    "evaluate",
    "parse_cooldown",
    "render_message",
]

logger = logging.getLogger(__name__)


class RuleError(ValueError):
    """A rule from the config cannot be used; ``message`` is plain words naming the place and the cause."""

    def __init__(self, name: str, message: str, *, field: str = "when"):
        super().__init__(f"rule {name}: {field}: {message}")
        self.name, self.field, self.message = name, field, message


@dataclass(frozen=True)
class CompiledRule:
    name: str
    severity: str
    message: str  # the template, checked at compile time
    cooldown_s: int | None
    facts_used: tuple[str, ...]  # fact names the condition refers to, sorted
    condition: str
    _rule: rule_engine.Rule = field(repr=False, compare=False)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    fired: bool
    severity: str
    message: str | None  # rendered template when fired, else None
    facts_seen: dict[str, Any]  # every fact of this evaluation, JSON-safe: the alert's explanation
    facts_used: tuple[str, ...] = ()
    cooldown_s: int | None = None
    error: str | None = None  # plain words when the condition could not be evaluated (the rule did not fire)

    def to_dict(self) -> dict[str, Any]:
        """The read API's ``rule_results`` item."""
        return {
            "rule": self.rule,
            "fired": self.fired,
            "severity": self.severity,
            "message": self.message,
            "facts": dict(self.facts_seen),
            "facts_used": list(self.facts_used),
            "error": self.error,
        }


def compile_rule(rule: RuleConfig) -> CompiledRule:
    """Check and compile one configured rule; raises ``RuleError`` naming the rule, the key and the cause."""
    try:
        compiled, used = compile_condition(rule.when)
    except ValueError as exc:
        raise RuleError(rule.name, str(exc), field="when") from None
    try:
        check_template(rule.message)
    except ValueError as exc:
        raise RuleError(rule.name, str(exc), field="message") from None
    try:
        cooldown_s = parse_cooldown(rule.cooldown)
    except ValueError as exc:
        raise RuleError(rule.name, str(exc), field="cooldown") from None
    return CompiledRule(rule.name, rule.severity, rule.message, cooldown_s, used, rule.when, compiled)


def compile_rules(rules: Iterable[RuleConfig]) -> list[CompiledRule]:
    return [compile_rule(rule) for rule in rules]


def evaluate(rules: Iterable[CompiledRule], facts: Facts) -> list[RuleResult]:
    """Every rule over the same facts. A rule that cannot be evaluated does not fire and says why."""
    seen = facts.as_dict()
    values = {name: _rule_value(value) for name, value in seen.items()}
    return [_evaluate_one(rule, values, seen) for rule in rules]


def _evaluate_one(rule: CompiledRule, values: dict[str, Any], seen: dict[str, Any]) -> RuleResult:
    error = None
    try:
        fired = bool(rule._rule.matches(values))
    except (errors.EngineError, ArithmeticError) as exc:
        # Typing rules out nulls and type errors; what is left is arithmetic such as a division by 0.
        fired, error = False, f"could not be evaluated: {getattr(exc, 'message', None) or exc.__class__.__name__}"
        logger.warning("rule %s %s", rule.name, error)
    message = render_message(rule.message, seen) if fired else None
    return RuleResult(rule.name, fired, rule.severity, message, dict(seen), rule.facts_used, rule.cooldown_s, error)


def _rule_value(value: Any) -> Any:
    # rule-engine numbers are Decimal; going through repr keeps 10.1 equal to the literal 10.1.
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def render_message(message: str, facts: dict[str, Any]) -> str:
    """Fill a checked template piece by piece; never ``str.format``, so nothing but a fact's value gets in."""
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(message):
        out.append(literal)
        if name is not None:
            out.append(_display(name, facts.get(name)))
    return "".join(out)


def _display(name: str, value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if SPECS[name].money:
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.1f}".removesuffix(".0")
    return str(value)
