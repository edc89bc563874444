"""Showing text from outside the app safely: one place for every escape.

Generated text, corpus and file names, a checkpoint's notes, URL values and
error messages that quote them are arbitrary characters: in Markdown (which
`st.markdown`, `st.caption`, `st.info/warning/error/success` and button labels
render) an asterisk, bracket or `![..](..)` would become formatting, a link or
a remote image; in HTML (`st.html`, Plotly titles and hover text) a `<` a tag.
Every such string goes through `escape_markdown` or `escape_html` (or is shown
with `st.text`/`st.code`/`st.dataframe`, which render nothing).
"""

from __future__ import annotations

import html
import re

# Every ASCII punctuation with a meaning in Markdown, GFM or Streamlit's extensions (":" starts
# emoji/icon shortcodes and keeps "http:" from being auto-linked, "&" starts an HTML entity, "$" LaTeX).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def escape_markdown(text: str) -> str:
    """Text shown literally by `st.markdown` (spaces kept visible as non-breaking)."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("  ", " \u00a0")


def escape_html(text: str) -> str:
    return html.escape(text, quote=True)


def visible_char(ch: str) -> str:
    """A printable stand-in for characters a chart label would hide (space, newline)."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(ch, ch)
