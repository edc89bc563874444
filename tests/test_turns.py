"""Script turns (lab_ui.turns): at most `slots` script runs execute the lab's code at once, so a class's
simultaneous clicks leave the server's event loop its share of the interpreter (issue 20's server silence)."""

from __future__ import annotations

import threading
import time

import pytest
from apptest_helpers import app_page
from streamlit.testing.v1 import AppTest

from lab_ui import turns


def _wait_until(check, timeout: float = 30.0) -> bool:
    """Poll `check` until it holds or `timeout` passes (the threads get there when the machine lets them)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_no_more_than_slots_runs_hold_a_turn_at_once() -> None:
    gate = turns.Turns(2, max_wait=60.0)
    inside, most, lock, release = [0], [0], threading.Lock(), threading.Event()

    def run() -> None:
        with gate.turn():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            release.wait(60)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=run) for _ in range(8)]
    for th in threads:
        th.start()
    assert _wait_until(lambda: inside[0] == 2)
    assert gate._free is not None and not gate._free.acquire(blocking=False)  # the other six wait
    release.set()
    for th in threads:
        th.join(60)
    assert most[0] == 2
    assert (gate.taken, gate.overdue) == (8, 0)


def test_a_run_inside_a_turn_enters_again_without_waiting() -> None:
    """A fragment drawn by its page's run is inside the page's turn: with one slot it would wait for itself."""
    gate = turns.Turns(1, max_wait=30.0)
    with gate.turn(), gate.turn(), gate.turn():
        pass
    assert (gate.taken, gate.overdue) == (1, 0)
    with gate.turn():  # the slot was given back
        pass
    assert gate.taken == 2


def test_a_run_waits_at_most_max_wait_then_goes_ahead() -> None:
    """One run holding its turn for long (a model's first analysis) must delay the others, never block them."""
    gate = turns.Turns(1, max_wait=0.05)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.turn():
            holding.set()
            release.wait(60)

    th = threading.Thread(target=hold)
    th.start()
    assert holding.wait(30)
    with gate.turn():
        assert gate.overdue == 1
    release.set()
    th.join(60)
    with gate.turn():  # the holder's slot came back: no second overdue run
        pass
    assert (gate.taken, gate.overdue) == (2, 1)


def test_zero_slots_turn_the_turns_off() -> None:
    gate = turns.Turns(0)
    with gate.turn(), gate.turn():
        pass
    assert (gate.taken, gate.overdue) == (0, 0)


@pytest.mark.parametrize(("raw", "slots"), [("", 2), ("3", 3), ("0", 0), ("-1", 0), ("many", 2)])
def test_the_operator_sets_the_number_of_turns(monkeypatch: pytest.MonkeyPatch, raw: str, slots: int) -> None:
    monkeypatch.setenv(turns.ENV, raw)
    assert turns._slots_from_env() == slots


def test_a_fragment_redraw_runs_in_a_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = turns.Turns(2)
    monkeypatch.setattr(turns, "TURNS", gate)

    def app() -> None:
        import streamlit as st

        from lab_ui import turns

        @turns.fragment
        def panel() -> None:
            st.session_state["depth"] = turns.TURNS._held.depth
            st.button("again", key="again")

        panel()

    at = AppTest.from_function(app).run()
    assert at.session_state["depth"] == 1
    assert gate.taken == 1
    at.button(key="again").click().run()
    assert at.session_state["depth"] == 1 and gate.taken == 2


def test_every_page_view_takes_a_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = turns.Turns(2)
    monkeypatch.setattr(turns, "TURNS", gate)
    with app_page("pages/train.py") as at:
        assert not at.exception
        views = gate.taken
        assert views >= 2  # the first view and the switch to Train
        at.run()
        assert gate.taken == views + 1
