"""Text that came from a POS or a person (item names, reasons, notes), made safe to show.

One place for both outputs: Webex message markdown (``for_markdown``) and Adaptive Card text
(``for_card``; TextBlock and FactSet render a markdown subset). Both strip what could change how
the text reads rather than what it says: Unicode direction controls (a U+202E turns "gpj.exe" into
"exe.jpg" on screen), other control and format characters, and line breaks (free text is always
shown inline here, so a newline could only start a list or a heading of its own). Then the
characters that would make markdown (bold, links, code, lists, mentions) are escaped, so
``**x**`` or ``[x](http://evil)`` is shown as typed, never as formatting or a link.

Views carry raw text; markdown is escaped where handlers write it and cards escape in
``cards/elements.py``, so nothing is escaped twice.
"""

from __future__ import annotations

import re
import unicodedata

# Direction controls: embeddings/overrides U+202A–U+202E, isolates U+2066–U+2069, marks U+200E,
# U+200F and U+061C. All are category Cf, removed below with the other format characters.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_KEPT_FORMAT = frozenset("\u200d")  # zero-width joiner: part of emoji sequences, harmless
# Inline markdown in Webex messages and in card text; escaped with a backslash (CommonMark).
_INLINE = re.compile(r"([\\`*_\[\]~|])")
_CARD_INLINE = re.compile(r"([\\`*_\[\]~|<>])")
# What starts a block when it opens the text: a heading, list item or numbered item (a quote's ">"
# is escaped above, or an entity in markdown).
_BLOCK_START = re.compile(r"^(\s*)([#+\-])")
_NUMBERED = re.compile(r"^(\s*\d+)([.)])")


def clean(value: object) -> str:
    """The text without control or format characters; line breaks and tabs become spaces."""
    out = []
    for char in str(value):
        if char in "\r\n\t\v\f\u2028\u2029\x85":
            out.append(" ")
        elif char in DIRECTION_CONTROLS or (unicodedata.category(char) in ("Cc", "Cf") and char not in _KEPT_FORMAT):
            continue
        else:
            out.append(char)
    return "".join(out)


def for_card(value: object) -> str:
    """Free text as a card TextBlock or Fact shows it literally."""
    return _blocks(_CARD_INLINE.sub(r"\\\1", clean(value)))


def for_markdown(value: object) -> str:
    """Free text as a Webex message's markdown shows it literally.

    ``<`` and ``>`` become entities rather than escapes: Webex reads ``<@personEmail:…>`` and
    ``<@all>`` as mentions in the markdown it receives, and an entity leaves no ``<@`` to find.
    """
    text = clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _blocks(_INLINE.sub(r"\\\1", text))


def _blocks(text: str) -> str:
    """Escape what would start a heading, a list or a numbered list at the start of the text."""
    return _NUMBERED.sub(r"\1\\\2", _BLOCK_START.sub(r"\1\\\2", text))
