"""Call a handler with the dependencies it names: ``def job_x(item, *, uow, clock)`` gets exactly those.

A keyword-only parameter with a default is optional: it keeps its default when nothing provides it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any


@cache
def _parameters(function: Callable[..., Any]) -> tuple[tuple[str, bool], ...]:
    return tuple(
        (name, p.default is inspect.Parameter.empty)
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    )


def wanted(function: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(name for name, _ in _parameters(function))


def call_with(function: Callable[..., Any], event: Any, dependencies: Mapping[str, Any]) -> Any:
    missing = [n for n, required in _parameters(function) if required and n not in dependencies]
    if missing:
        raise TypeError(f"{function.__name__} needs {', '.join(missing)}, which nothing provides")
    return function(event, **{n: dependencies[n] for n, _ in _parameters(function) if n in dependencies})
