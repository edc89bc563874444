"""Text as HTML for `st.html`: characters coloured by a value, and copied stretches marked.

Model-written text can contain `<`, `&` or quotes, so every character goes
through `escape_html`; only inline `style` and `title` attributes are used,
which `st.html` keeps (it strips scripts). Pure functions: the tests read the
HTML they return.
"""

from __future__ import annotations

from collections.abc import Sequence

from .charts import is_dark
from .text import escape_html

# Chinese breaks between any two characters by itself; Latin text must break at spaces ("based", not
# "b|ased"), so no break-all: overflow-wrap only splits a word longer than the whole column.
_BOX = "font-size:1.3rem;line-height:2.2;white-space:pre-wrap;overflow-wrap:anywhere;"


def activation_html(chars: Sequence[str], colors: Sequence[str], titles: Sequence[str]) -> str:
    """One span per character on its colour, with `titles` as hover tooltips."""
    spans = []
    for ch, color, title in zip(chars, colors, titles):
        ink = "#fff" if is_dark(color) else "#111"
        spans.append(
            f'<span title="{escape_html(title)}" style="background:{color};color:{ink};'
            f'padding:3px 2px;margin:0 1px;border-radius:3px">{escape_html(ch)}</span>'
        )
    return f'<div style="{_BOX}">{"".join(spans)}</div>'


def copied_html(
    text: str,
    prefix_len: int,
    spans: Sequence[tuple[int, int]],
    copied_title: str,
    prefix_title: str,
) -> str:
    """`text` with its prefix in bold and the copied `(begin, end)` stretches highlighted."""
    copied = [False] * len(text)
    for begin, end in spans:
        for i in range(max(0, begin), min(end, len(text))):
            copied[i] = True
    parts: list[str] = []
    i = 0
    while i < len(text):
        kind = (i < prefix_len, copied[i])
        j = i
        while j < len(text) and (j < prefix_len, copied[j]) == kind:
            j += 1
        chunk = escape_html(text[i:j])
        if kind[0]:
            parts.append(f'<b title="{escape_html(prefix_title)}" style="color:#555">{chunk}</b>')
        elif kind[1]:
            parts.append(
                f'<mark title="{escape_html(copied_title)}" '
                f'style="background:#ffd54f;padding:2px 0;border-radius:2px">{chunk}</mark>'
            )
        else:
            parts.append(chunk)
        i = j
    return f'<div style="{_BOX}">{"".join(parts)}</div>'
