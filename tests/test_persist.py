"""`lab_ui.persist`, the widget memory: a plain dict stands in for `st.session_state`, and one real app run."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab_ui import persist
from lab_ui.persist import default_key, saved_key

KEY = "page:width"


@pytest.fixture()
def state(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The session state `persist` sees: a plain dict (it only reads, writes and tests keys)."""
    fake: dict[str, Any] = {}
    monkeypatch.setattr(persist, "st", SimpleNamespace(session_state=fake))
    return fake


def test_keys_are_distinct_and_never_the_widget_key() -> None:
    assert len({KEY, saved_key(KEY), default_key(KEY), saved_key("page:other")}) == 4


def test_save_then_restore_brings_back_a_forgotten_value(state: dict[str, Any]) -> None:
    state[KEY] = 7
    persist.save(KEY)
    del state[KEY]  # a run that did not draw the widget: Streamlit dropped it
    persist.restore(KEY, default=1)
    assert state[KEY] == 7


def test_restore_leaves_a_live_value_alone(state: dict[str, Any]) -> None:
    state[KEY], state[saved_key(KEY)] = 3, 9
    persist.restore(KEY, default=1)
    assert state[KEY] == 3


def test_restore_uses_the_default_only_without_a_copy(state: dict[str, Any]) -> None:
    persist.restore(KEY, default=5)
    assert state[KEY] == 5
    persist.restore("page:none")  # no copy, no default: nothing is set (the widget's own default applies)
    assert "page:none" not in state


def test_save_without_a_value_keeps_the_old_copy(state: dict[str, Any]) -> None:
    state[saved_key(KEY)] = 4
    persist.save(KEY)
    assert state[saved_key(KEY)] == 4


def test_remember_is_what_the_next_restore_shows(state: dict[str, Any]) -> None:
    persist.remember(KEY, "lesson")
    persist.restore(KEY, default="first")
    assert state[KEY] == "lesson"


def test_follow_default_moves_an_untouched_value_and_keeps_an_edited_one(state: dict[str, Any]) -> None:
    persist.follow_default(KEY, "分开")
    assert state[KEY] == "分开"
    persist.follow_default(KEY, "春风")  # another model: the untouched default follows
    assert state[KEY] == "春风"
    state[KEY] = "my own"  # the user types
    persist.follow_default(KEY, "明月")
    assert state[KEY] == "my own"
    assert state[default_key(KEY)] == "明月"


def test_follow_default_after_a_page_switch_uses_the_saved_copy(state: dict[str, Any]) -> None:
    persist.follow_default(KEY, "分开")
    state[KEY] = "edited"
    persist.save(KEY)
    del state[KEY]
    persist.follow_default(KEY, "分开")
    assert state[KEY] == "edited"
    state[KEY] = "分开"  # typed back to the default: untouched again
    persist.save(KEY)
    del state[KEY]
    persist.follow_default(KEY, "春风")
    assert state[KEY] == "春风"


@pytest.mark.parametrize(("saved", "expected"), [(12, 9), (-3, 1), (5, 5), (None, 4)])
def test_clamp_pulls_a_remembered_value_inside_the_range(state: dict[str, Any], saved: Any, expected: int) -> None:
    if saved is not None:
        state[saved_key(KEY)] = saved
    persist.clamp(KEY, default=4, lo=1, hi=9)
    assert state[KEY] == expected


@pytest.mark.parametrize(("saved", "expected"), [("gate", "gate"), ("gone", "H"), (None, "H")])
def test_keep_valid_falls_back_to_the_default(state: dict[str, Any], saved: Any, expected: str) -> None:
    if saved is not None:
        state[saved_key(KEY)] = saved
    persist.keep_valid(KEY, "H", ["H", "gate"])
    assert state[KEY] == expected


def _slider_app() -> None:
    """A slider whose range is `hi` (a session value) and that is hidden while `hide` is set."""
    import streamlit as st

    from lab_ui import persist

    if st.session_state.get("hide"):
        return
    hi = st.session_state.get("hi", 10)
    persist.clamp("pos", 8, 0, hi)
    st.slider("pos", 0, hi, key="pos")
    persist.save("pos")


def test_a_slider_keeps_its_value_across_a_hidden_run_and_a_shorter_range() -> None:
    at = AppTest.from_function(_slider_app, default_timeout=30).run()
    assert at.slider(key="pos").value == 8
    at.slider(key="pos").set_value(6).run()
    at.session_state["hide"] = True
    at.run()  # another page: Streamlit forgets the widget
    at.session_state["hide"] = False
    at.run()
    assert at.slider(key="pos").value == 6
    at.session_state["hi"] = 4  # a shorter text: the position is pulled back, not reset to 0
    at.run()
    assert at.slider(key="pos").value == 4
    assert not at.exception
