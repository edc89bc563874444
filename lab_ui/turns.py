"""Script turns: at most a few script runs execute the lab's Python at once in the web process.

Why: every click, page view and fragment redraw is a script run on a thread of its own, and Python runs one
thread at a time (the GIL). When a class of 40 pressed Train in the same second, 40 script threads took turns
at the interpreter with the server's event loop, the thread that answers every browser. The loop waited for
its turn behind all of them, again after each network wait, and above all in Streamlit's own `Thread.start`
of each new script run, which waits for the new thread to get its turn too (a py-spy profile put 60 % of the
loop's time there). The server fell silent for 1.6-2.2 s, longer on a loaded machine; 40 CPU-bound threads
against a loop in a small experiment stopped the loop for the whole 4 s.

How: a run takes a turn (`turn`) before the lab's code runs and gives it back when it ends, so the
interpreter is shared by at most `slots` script threads and the event loop, which then waits milliseconds.
The others wait on a lock, which costs no interpreter time, and go in the order they came; a class's 40 runs
finish one after another instead of all at the end. A run never waits longer than `max_wait`: one that holds
its turn for long (a first analysis of a model) delays others by that much at most, never blocks them.
A fragment's redraw takes its own turn (`fragment`); inside a page run it already has one.

`RNN_LAB_SCRIPT_TURNS` (the operator's) sets the number of turns; 0 turns them off.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

DEFAULT_SLOTS = 2  # the interpreter runs one at a time anyway; a second keeps it busy while the first waits
MAX_WAIT = 2.0  # seconds a run waits for a turn at most, then goes ahead anyway
ENV = "RNN_LAB_SCRIPT_TURNS"

F = TypeVar("F", bound=Callable[..., Any])


class Turns:
    """At most `slots` holders at once; a thread that already holds a turn enters again freely (nesting)."""

    def __init__(self, slots: int, max_wait: float = MAX_WAIT) -> None:
        self.slots, self.max_wait = slots, max_wait
        self._free = threading.BoundedSemaphore(slots) if slots > 0 else None
        self._held = threading.local()
        self._lock = threading.Lock()
        self.taken = 0  # turns taken (counted for tests and the benchmark's curiosity)
        self.overdue = 0  # runs that went ahead without a turn after `max_wait`

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold a turn while the block runs (or go ahead after `max_wait` without one)."""
        if self._free is None or getattr(self._held, "depth", 0):
            self._held.depth = getattr(self._held, "depth", 0) + 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        got = self._free.acquire(timeout=self.max_wait)
        with self._lock:
            self.taken += got
            self.overdue += not got
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            if got:
                self._free.release()


def _slots_from_env() -> int:
    raw = os.environ.get(ENV, "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_SLOTS
    except ValueError:
        return DEFAULT_SLOTS


TURNS = Turns(_slots_from_env())  # process-wide: one interpreter, one set of turns


def turn() -> Any:
    """The process's `Turns.turn()`: wrap a script run's own code in it."""
    return TURNS.turn()


def fragment(func: F | None = None, *, run_every: float | None = None) -> Any:
    """`st.fragment` whose redraws take a turn: use it for every fragment of the lab (`@turns.fragment`)."""

    def wrap(body: F) -> F:
        @functools.wraps(body)
        def in_turn(*args: Any, **kwargs: Any) -> Any:
            with turn():
                return body(*args, **kwargs)

        return st.fragment(in_turn, run_every=run_every)  # type: ignore[return-value]

    return wrap(func) if func is not None else wrap
