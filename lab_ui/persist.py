"""Widget memory: every shadow copy of a widget's value, in one place.

Streamlit forgets a widget's state when a run does not draw it (another page is
shown), and a widget whose range or options changed is a new widget that starts
at its minimum. So a page keeps a copy of each value it cares about in a
non-widget key and puts it back before drawing:

- `restore(key)` before drawing and `save(key)` after: coming back finds the
  value the user left, and the browser is sent the value on every run (`resend`); `remember(key, value)` sets the copy directly (a preset,
  a lesson link) even while the widget is not drawn;
- `follow_default(key, default)`: a value that follows a changing default
  (another model's prefix) until the user edits it, then stays the user's;
- `clamp` and `keep_valid`: a remembered value that the new range or options no
  longer admit is pulled back inside, or replaced by the default.

Tests build the keys with `saved_key` and `default_key` instead of spelling them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import streamlit as st


def saved_key(key: str) -> str:
    """The non-widget key holding the saved copy of widget `key`."""
    return f"__saved__:{key}"


def default_key(key: str) -> str:
    """The non-widget key holding the default that widget `key` showed last (see `follow_default`)."""
    return f"__default__:{key}"


def restore(key: str, default: Any = None) -> None:
    """Before drawing widget `key`: put back the saved value (or `default`) if Streamlit forgot it, and send it.

    Either way the value ends up written by the script in this run (`resend`), so the browser is told it.
    """
    if key not in st.session_state:
        if saved_key(key) in st.session_state:
            st.session_state[key] = st.session_state[saved_key(key)]
        elif default is not None:
            st.session_state[key] = default
    else:
        resend(key)


def resend(key: str) -> None:
    """Before drawing widget `key`: write its current value back, so this run sends the value to the browser.

    Why: Streamlit sends a widget's value only in a run whose script wrote it; otherwise the browser keeps the
    value it holds. A browser can lose what it holds while the page around a widget is redrawn (seen after a
    class Join, which redraws the sidebar: every slider, toggle and number box on Train came back at its minimum
    and was sent back so, and Train was refused as a bad setting). A value the script writes on every run is
    drawn from the server's copy in every run. A value the user just changed is the one read and written back.
    """
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]


def save(key: str) -> None:
    """After drawing widget `key`: remember its value."""
    if key in st.session_state:
        st.session_state[saved_key(key)] = st.session_state[key]


def remember(key: str, value: Any) -> None:
    """Set the saved copy directly, so the widget shows `value` the next time it is drawn."""
    st.session_state[saved_key(key)] = value


def follow_default(key: str, default: Any) -> None:
    """Before drawing widget `key`: show `default` until the user edits the value, then keep the user's value.

    The default can change between runs (another model lacks the old prefix's
    characters); a value still equal to the default shown last is taken as
    untouched and moves with it, an edited one is left alone.
    """
    restore(key)
    if key not in st.session_state or st.session_state[key] == st.session_state.get(default_key(key)):
        st.session_state[key] = default
    st.session_state[default_key(key)] = default


def clamp(key: str, default: int, lo: int, hi: int) -> None:
    """Before drawing integer widget `key` with range [lo, hi]: restore it, pulled inside the current range.

    A shorter text must not leave a position slider out of range. The value is
    written back even when unchanged: see `keep_valid`.
    """
    restore(key, default)
    value = st.session_state.get(key)
    st.session_state[key] = min(max(int(value if value is not None else default), lo), hi)


def keep_valid(key: str, default: Any, valid: Collection[Any]) -> None:
    """Before drawing widget `key`: restore it, or fall back to `default` when `valid` no longer holds it.

    The value is written back even when unchanged: a slider whose range changed
    (another model, another h) is a new widget to Streamlit, which would
    otherwise start it at its minimum.
    """
    restore(key, default)
    value = st.session_state.get(key)
    st.session_state[key] = value if value in valid else default
