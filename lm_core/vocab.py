"""Characters a model does not know, and how they are named in a message.

The engine's checks (`generation.check_prefix`, `bptt.check_text`), the corpus
and the pages all ask the same question of a text, so it is answered here once;
the list is named the same way in the error an engine check raises and in the
warning a page shows.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from . import messages

SHOWN_CHARS = 20  # a message names at most this many characters: a pasted essay must not fill the screen


def unknown_chars(text: str, known: Container[str]) -> list[str]:
    """Characters of `text` not in `known`, each once, in order of first appearance.

    The order of appearance (not sorted) lets the user find the first offender in their own text.
    """
    return list(dict.fromkeys(ch for ch in text if ch not in known))


def format_chars(chars: list[str], lang: str = messages.SOURCE_LANG, limit: int = SHOWN_CHARS) -> str:
    """`chars` for a message in `lang`: white space as its repr (else invisible), at most `limit`, then how many more."""
    shown = " ".join(repr(ch) if ch.isspace() else ch for ch in chars[:limit])
    more = messages.text("common.chars_more", lang, n=len(chars) - limit) if len(chars) > limit else ""
    return shown + more


@dataclass(frozen=True)
class Chars:
    """Characters named in an error, counted in the language the error is read in (`format_chars`)."""

    chars: tuple[str, ...]

    def __init__(self, chars: list[str] | tuple[str, ...]) -> None:
        object.__setattr__(self, "chars", tuple(chars))

    def localize(self, lang: str) -> str:
        return format_chars(list(self.chars), lang)
