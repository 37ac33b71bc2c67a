"""Listings that fit one Webex message: pages of lines under Webex's 7,439-byte limit on markdown.

Every command that lists (`watchlist`, `alerts`, `rules`, `stats`) pages here, and nowhere else:
page 1 is as many lines as fit (and at most ``PAGE_LINES``), page 2 the next ones, and so on, with
a last line saying how many are left and what to type for the next page ("and 57 more:
`watchlist 2`"). Pages are cut from the start each time, so the same data gives the same pages;
a line too long for a page on its own is shortened.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.messenger import MAX_TEXT_BYTES
from core.router import UserError

PAGE_LINES = 25  # a phone screen or two; a card of the same rows stays well inside a request's size
ELLIPSIS = "…"
_PAGE = re.compile(r"\d{1,4}")


@dataclass(frozen=True)
class Page:
    """Which lines one page shows: ``lines[start:end]`` of ``total``, page ``number`` of ``count``."""

    number: int
    count: int
    start: int
    end: int
    total: int
    text: str  # the page as markdown, heading and "and N more" line included

    @property
    def more(self) -> int:
        return self.total - self.end


def is_page(word: str) -> bool:
    """Does this argument name a page (`watchlist 2`)?"""
    return _PAGE.fullmatch(word) is not None


def page_number(word: str | None) -> int:
    """The page an argument names, 1 when none is given."""
    return int(word) if word is not None and is_page(word) else 1


def listing(
    heading: str,
    lines: Sequence[str],
    *,
    page: int,
    command: str,
    empty: str,
    max_lines: int = PAGE_LINES,
    budget: int = MAX_TEXT_BYTES,
) -> Page:
    """Page ``page`` of the lines under the heading; ``command`` is what to type before a page number."""
    if not lines:
        return Page(1, 1, 0, 0, 0, shorten(f"{heading}\n{empty}", budget))
    reserve = _size(_heading(heading, 9999, 9999)) + _size(_footer(len(lines), command, 9999))
    fitted = [shorten(line, budget - reserve) for line in lines]
    pages = _cut(fitted, budget - reserve, max_lines)
    if not 1 <= page <= len(pages):
        raise UserError(
            f"There {'is one page' if len(pages) == 1 else f'are {len(pages)} pages'}: "
            f"`{command}` to `{command} {len(pages)}`."
        )
    start, end = pages[page - 1]
    text = _heading(heading, page, len(pages)) + "\n" + "\n".join(fitted[start:end])
    if end < len(lines):
        text += _footer(len(lines) - end, command, page + 1)
    return Page(page, len(pages), start, end, len(lines), text)


def shorten(text: str, budget: int = MAX_TEXT_BYTES) -> str:
    """The text cut to ``budget`` UTF-8 bytes (whole characters, an ellipsis at the cut)."""
    if _size(text) <= budget:
        return text
    cut = text.encode("utf-8")[: budget - _size(ELLIPSIS)].decode("utf-8", errors="ignore")
    return cut.rstrip("\\") + ELLIPSIS  # never leave half an escape before the ellipsis


def _cut(lines: Sequence[str], budget: int, max_lines: int) -> list[tuple[int, int]]:
    """Greedy pages from the start: [(start, end)], each at most ``max_lines`` lines and ``budget`` bytes."""
    pages, start, used = [], 0, 0
    for index, line in enumerate(lines):
        size = _size(line) + 1  # its newline
        if index > start and (index - start >= max_lines or used + size > budget):
            pages.append((start, index))
            start, used = index, 0
        used += size
    pages.append((start, len(lines)))
    return pages


def _heading(heading: str, page: int, count: int) -> str:
    return heading if count == 1 else f"{heading} · page {page} of {count}"


def _footer(more: int, command: str, next_page: int) -> str:
    return f"\n\nand {more} more: `{command} {next_page}`"


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
