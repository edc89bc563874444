"""Process-wide objects of the server (the boards service, the class store) that no visitor can clear.

`st.cache_resource` is emptied by a `clear_cache` message or a developer's "Clear cache": an object kept there is
rebuilt beside the old one, which may still hold a lock on the data folder or jobs it alone knows. What is the
server's for its whole life is kept here instead, built once under a lock; only `reset` (a server stopping, or a
test standing in for a restart) lets it go, together with the job manager it depends on.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_lock = threading.RLock()  # re-entrant: one object's factory may ask for another (boards ask for the manager)
_objects: dict[str, object] = {}


def process_object(factory: Callable[[], T]) -> Callable[[], T]:
    """`factory()` built once per server process, on first use, then the same object for every session."""
    name = f"{factory.__module__}.{factory.__qualname__}"

    @functools.wraps(factory)
    def get() -> T:
        with _lock:
            if name not in _objects:
                _objects[name] = factory()
            return _objects[name]  # type: ignore[return-value]

    return get


def reset() -> None:
    """Forget every process object (with `session.shutdown_manager`): the next use builds them anew."""
    with _lock:
        _objects.clear()
