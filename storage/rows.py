"""Rows a caller already holds a reference to (a step's own snapshot, a message it is delivering), and rows changed."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.engine import CursorResult, Result

T = TypeVar("T")


class MissingRow(LookupError):
    """The row was there when the work was queued or claimed, and is gone now.

    Rows are deleted only by retention, long after the steps that use them; so this is a bug or
    an operator's hand in the database. The step fails like any other error (retried, then dead-lettered).
    """


def present(row: T | None, what: str) -> T:
    """The row, or MissingRow naming it (``what``: "snapshot S-1f2e"), where the caller's reference guarantees it."""
    if row is None:
        raise MissingRow(f"{what} is gone")
    return row


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (the driver's rowcount).

    Session.execute is typed to return a plain Result; for these statements it is a CursorResult."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return result.rowcount
