"""Rows a caller already holds a reference to: a step's own snapshot, a message it is delivering."""

from __future__ import annotations

from typing import TypeVar

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
