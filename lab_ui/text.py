"""Showing model-written text safely.

Generated text is arbitrary characters from the corpus: in Markdown an
asterisk or a bracket would turn into formatting, in HTML a `<` into a tag.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def escape_markdown(text: str) -> str:
    """Text shown literally by `st.markdown` (spaces kept visible as non-breaking)."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("  ", " \u00a0")


def escape_html(text: str) -> str:
    return html.escape(text, quote=True)


def visible_char(ch: str) -> str:
    """A printable stand-in for characters a chart label would hide (space, newline)."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(ch, ch)
