"""Keeping widget values across page switches.

Streamlit forgets a widget's state when a run does not draw it (another page is
shown). `restore(key)` before drawing and `save(key)` after keep a copy in a
non-widget key, so coming back finds the settings the user left.
"""

from __future__ import annotations

from typing import Any

import streamlit as st


def _copy(key: str) -> str:
    return f"__saved__:{key}"


def restore(key: str, default: Any = None) -> None:
    """Before drawing widget `key`: put back the saved value (or `default`)."""
    if key not in st.session_state:
        if _copy(key) in st.session_state:
            st.session_state[key] = st.session_state[_copy(key)]
        elif default is not None:
            st.session_state[key] = default


def save(key: str) -> None:
    """After drawing widget `key`: remember its value."""
    if key in st.session_state:
        st.session_state[_copy(key)] = st.session_state[key]


def remember(key: str, value: Any) -> None:
    """Set the saved copy directly (e.g. from a lesson link)."""
    st.session_state[_copy(key)] = value
