"""Call a handler with the dependencies it names: ``def job_x(item, *, uow, clock)`` gets exactly those."""
from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any, Callable, Mapping


@lru_cache(maxsize=None)
def wanted(function: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(
        name for name, p in inspect.signature(function).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    )


def call_with(function: Callable[..., Any], event: Any, dependencies: Mapping[str, Any]) -> Any:
    missing = [n for n in wanted(function) if n not in dependencies]
    if missing:
        raise TypeError(f"{function.__name__} needs {', '.join(missing)}, which nothing provides")
    return function(event, **{n: dependencies[n] for n in wanted(function)})
