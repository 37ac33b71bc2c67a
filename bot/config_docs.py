"""docs/configuration.md, generated from the configuration models so the reference can never drift.

Regenerate with:  .venv/bin/python -m bot.config_docs > docs/configuration.md
(a test compares the committed file with this output).
"""

from __future__ import annotations

import sys
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from core.config import BusinessConfig, EnvSettings

HEADER = """# Configuration reference

Generated from the models in `core/config_business.py` and `core/config_env.py` by `python -m bot.config_docs`; do not edit by hand.
The business shape lives in the YAML file named by `FLP_CONFIG` (default `config/flp.yaml`,
commented); secrets and endpoints come from the environment. Unknown keys are errors, and
`python -m bot check-config` names every wrong key with its line.
"""


def render() -> str:
    parts = [HEADER, "## Environment\n", "| variable | default | meaning |", "| --- | --- | --- |"]
    for field in EnvSettings.model_fields.values():
        parts.append(f"| `{field.alias}` | {_default(field)} | {field.description or ''} |")
    parts.append("\n## YAML file\n")
    parts += _section(BusinessConfig, "")
    return "\n".join(parts) + "\n"


def _section(model: type[BaseModel], prefix: str) -> list[str]:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        lines.append(f"| `{key}` | {_type(field.annotation)} | {_default(field)} | {_describe(field)} |")
        inner = _model_in(field.annotation)
        if inner is not None:
            nested.append((f"{key}[]." if _is_sequence(field.annotation) else f"{key}.", inner))
    out = [f"### `{prefix.rstrip('.[]') or 'top level'}`\n", *lines, ""] if prefix else [*lines, ""]
    for sub_prefix, inner in nested:
        out += _section(inner, sub_prefix)
    return out


def _describe(field: FieldInfo) -> str:
    bounds = [
        f"{word} {getattr(m, attr)}"
        for m in field.metadata
        for attr, word in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))
        if getattr(m, attr, None) is not None
    ]
    text = (field.description or "").replace("|", "\\|")
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value: Any = field.default
    if isinstance(value, BaseModel):
        return "(section defaults)"
    if hasattr(value, "get_secret_value") or value is None:
        return "unset"
    return f"`{value}`" if value != () else "`[]`"


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0])
    if origin in (Union, UnionType):
        return " or ".join("null" if a is type(None) else _type(a) for a in args)
    if origin is tuple and args[-1:] == (Ellipsis,):
        return f"list of {_type(args[0])}"
    if origin is Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(_type(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_sequence(annotation: Any) -> bool:
    return get_origin(annotation) in (tuple, list)


if __name__ == "__main__":
    sys.stdout.write(render())
