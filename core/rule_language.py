"""The rule language of the config file: which facts a rule may use, and checks that name what is wrong.

rule-engine parses its own small language (no Python ``eval``, no access to Python objects) and
checks every fact name and type at compile time, so ``check-config`` rejects ``risk_scor > 5`` or
``amount > 'x'`` before any payment arrives. Nullable facts are typed ``NULLABLE``: using one
where a value is needed (``risk_score >= 80``) is refused until the rule says what null means
(``(risk_score ?? 0) >= 80``), so a missing value can never crash or silently skip a rule.
Evaluation is ``rules/engine.py``'s; the configuration validates with these checks.
"""

from __future__ import annotations

import difflib
import re
import string
from typing import Any

import rule_engine
from rule_engine import DataType, errors
from rule_engine.builtins import Builtins

from core.facts import FACT_NAMES, FACT_SCHEMA, FactSpec

SPECS: dict[str, FactSpec] = {spec.name: spec for spec in FACT_SCHEMA}
_RULE_TYPES = {"number": DataType.FLOAT, "string": DataType.STRING, "boolean": DataType.BOOLEAN}
_COOLDOWN = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_COOLDOWN_S = 365 * 86400


def check_condition(when: str) -> tuple[str, ...]:
    """Validate a condition alone (for the config validator); returns the fact names it uses."""
    return compile_condition(when)[1]


# --- the condition ---------------------------------------------------------------------------------


class _FactsOnly(Builtins):
    """No ``$now``, ``$random`` and friends: a rule depends only on the stored facts, so it can be replayed."""

    def resolve_type(self, name: str) -> Any:
        raise errors.SymbolResolutionError(name, symbol_scope=self.scope_name)


def _resolve_type(name: str) -> Any:
    spec = SPECS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, FACT_NAMES, n=1)
        raise errors.SymbolResolutionError(name, suggestion=close[0] if close else None)
    rule_type = _RULE_TYPES[spec.kind]
    return DataType.NULLABLE(rule_type) if spec.nullable else rule_type


def _context() -> rule_engine.Context:
    context = rule_engine.Context(type_resolver=_resolve_type, default_timezone="utc", mapping_attribute_lookup=False)
    context.builtins = _FactsOnly({}, timezone=context.default_timezone)
    return context


def compile_condition(when: str) -> tuple[rule_engine.Rule, tuple[str, ...]]:
    context = _context()  # one per rule: it collects the symbols this rule uses
    try:
        compiled = rule_engine.Rule(when, context=context)
    except errors.EngineError as exc:
        raise ValueError(_explain(exc, when, context)) from None
    result_type = compiled.statement.expression.result_type
    if not DataType.is_type(result_type, DataType.BOOLEAN):
        raise ValueError(f"the condition must be true or false, but this one gives a {_type_word(result_type)}")
    return compiled, tuple(sorted(context.symbols & FACT_NAMES))


def _explain(exc: errors.EngineError, when: str, context: rule_engine.Context) -> str:
    """rule-engine's error in plain words, with the place in the condition when there is one."""
    if isinstance(exc, errors.RuleSyntaxError):
        return _explain_syntax(exc, when)
    if isinstance(exc, errors.SymbolResolutionError):
        if exc.symbol_scope == Builtins.scope_name:
            return f"${exc.symbol_name} is not available: a rule sees only the facts listed in docs/rules.md"
        hint = f"; did you mean {exc.suggestion}?" if exc.suggestion else ""
        return f"unknown fact {exc.symbol_name!r}{hint} (the facts are listed in docs/rules.md)"
    if isinstance(exc, errors.AttributeResolutionError):
        return f"facts have no attributes ('.{exc.attribute_name}'): use the flat fact names of docs/rules.md"
    if isinstance(exc, errors.SyntaxError):  # bad string, number, regex, datetime literal
        return f"{exc.message}: {getattr(exc, 'value', '')!r}"
    used = sorted(context.symbols & FACT_NAMES)
    if "nullable" in exc.message:
        nullable = [n for n in used if SPECS[n].nullable] or ["risk_score"]
        return (
            f"{', '.join(nullable)} can be null: compare with == / != only, or say what null means, "
            f"e.g. {_null_example(nullable[0])}"
        )
    types = "; ".join(f"{n} is a {SPECS[n].kind}" for n in used)
    detail = exc.message.replace("data type mismatch", "").strip(" ()")
    return (
        f"type mismatch{f' ({detail})' if detail else ''}: {types or 'no facts used'}; "
        "write numbers as 500, strings as 'manual', booleans as true or false"
    )


def _null_example(name: str) -> str:
    if SPECS.get(name) is not None and SPECS[name].kind == "string":
        return f"({name} ?? '') =~ 'man.*'"
    return f"({name} ?? 0) >= 80"


def _explain_syntax(exc: errors.RuleSyntaxError, when: str) -> str:
    token = exc.token
    if token is None:
        return "syntax error: the condition ends too early (an operand or a closing parenthesis is missing)"
    # The lexer's own line counter runs on across rules; the position in this text is reliable.
    position = token.lexpos
    line = when.count("\n", 0, position) + 1
    column = position - (when.rfind("\n", 0, position) + 1) + 1
    if token.type == "error":
        near = str(token.value)[:1]
        extra = " (an unclosed string?)" if near in "'\"" else ""
        return f"syntax error at line {line}, column {column}: unexpected character {near!r}{extra}"
    return f"syntax error at line {line}, column {column}, near {str(token.value)!r}"


def _type_word(data_type: Any) -> str:
    inner = getattr(data_type, "inner_type", data_type)
    return {"FLOAT": "number", "STRING": "string", "BOOLEAN": "boolean"}.get(inner.name, inner.name.lower())


# --- the message template and the cool-down --------------------------------------------------------


def check_template(message: str) -> tuple[str, ...]:
    """Placeholders must be plain fact names (``{amount}``): no attributes, indexes, conversions or formats."""
    try:
        pieces = list(string.Formatter().parse(message))
    except ValueError as exc:
        raise ValueError(f"message template: {exc} (write {{{{ and }}}} for literal braces)") from None
    names = []
    for _literal, name, spec, conversion in pieces:
        if name is None:
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if not name.isidentifier():
            raise ValueError(
                f"placeholder {shown}: use a plain fact name such as {{amount}} (no positions, attributes or indexes)"
            )
        if name not in FACT_NAMES:
            close = difflib.get_close_matches(name, FACT_NAMES, n=1)
            hint = f"; did you mean {{{close[0]}}}?" if close else ""
            raise ValueError(f"placeholder {shown}: unknown fact {name!r}{hint}")
        if conversion or spec:
            raise ValueError(f"placeholder {shown}: no conversions or formats; facts are already formatted for people")
        names.append(name)
    return tuple(names)


def parse_cooldown(text: str | None) -> int | None:
    """'30s', '10m', '2h', '7d' → seconds; None stays None (no cool-down)."""
    if text is None:
        return None
    found = _COOLDOWN.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not a duration: write a whole number and s, m, h or d (30s, 10m, 2h, 7d)")
    seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if seconds > MAX_COOLDOWN_S:
        raise ValueError(f"{text!r} is longer than a year")
    return seconds
