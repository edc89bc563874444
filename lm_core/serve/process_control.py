"""The page's buttons across a process boundary: `training.Control` over multiprocessing primitives."""

from __future__ import annotations

from typing import Any

from ..training import Control
from .worker import WorkerControl


class SharedControl(WorkerControl):
    """Pause / resume / step / stop and the CPU slot, shared by the web process and one worker process.

    The worker checks the events between minibatches, so a click answers as fast as in a thread.
    """

    def __init__(self, ctx: Any) -> None:
        """`ctx`: the multiprocessing context the worker is started with (its events must be of that kind)."""
        super().__init__()
        self._go = ctx.Event()
        self._go.set()
        self._stop = ctx.Event()
        self._after_epoch = ctx.Value("b", 0)
        # Set while the worker holds one of the server's CPU slots. A paused worker gives its slot back (a
        # queued run trains meanwhile); after Resume or Step it waits here until the server grants one again.
        self._slot = ctx.Event()

    @property
    def _pause_after_epoch(self) -> bool:  # the base class reads and writes this name
        return bool(self._after_epoch.value)

    @_pause_after_epoch.setter
    def _pause_after_epoch(self, value: bool) -> None:
        if hasattr(self, "_after_epoch"):
            self._after_epoch.value = int(value)

    def reset(self) -> None:
        """Back to a fresh run's state, for the next job of a reused worker."""
        self._go.set()
        self._stop.clear()
        self._after_epoch.value = 0
        self._slot.clear()

    def grant_slot(self) -> None:
        """In the web process: the worker may train (its job holds a slot)."""
        self._slot.set()

    def give_back_slot(self) -> None:
        self._slot.clear()

    def has_slot(self) -> bool:
        return self._slot.is_set()

    def wait_for_slot(self) -> None:
        while not self._slot.wait(timeout=0.1):
            if self._stop.is_set():
                return

    def __getstate__(self) -> dict[str, Any]:
        return {"_go": self._go, "_stop": self._stop, "_after_epoch": self._after_epoch, "_slot": self._slot}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # The worker's copy starts from a plain Control's local state (no callbacks, its own pause clock:
        # the time blocked while paused is measured where the training loop waits) and shares the events.
        Control.__init__(self)
        self._go, self._stop, self._after_epoch = state["_go"], state["_stop"], state["_after_epoch"]
        self._slot = state["_slot"]
