"""A process-wide cache bounded in entries *and* bytes, least recently used first out.

Why not `st.cache_resource(max_entries=...)`: a count alone does not bound memory when one entry can be a
visitor's 20 MB text (and the character ids built from it, several times that), and any visitor's
`clear_cache` message empties every Streamlit cache. Content that visitors send is kept here once per
content hash, whichever session sent it, and never more than the bounds allow.

With `max_idle`, an entry nobody asked for in that many seconds goes too, and the freed memory is handed back to
the operating system (`rss.give_back_memory`): entries that can be made again (a corpus from its text) should
not outlive the sessions that used them, or the server's memory never returns after a class leaves.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """`get_or_make(key, make, size)`: the kept value, or `make()` kept if it fits (thread-safe)."""

    def __init__(self, max_entries: int, max_bytes: int, max_idle: float | None = None) -> None:
        self.max_entries, self.max_bytes, self.max_idle = max_entries, max_bytes, max_idle
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._used: dict[Hashable, float] = {}  # when each entry was last put or got (time.monotonic)
        self._bytes = 0
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            self._used[key] = time.monotonic()
            return item[0]

    def sweep(self, now: float | None = None) -> int:
        """Drop the entries idle for more than `max_idle` seconds at `now` (default: now); how many went.

        A sweeper thread calls this every quarter of `max_idle` once something is kept; memory freed by it is
        given back to the operating system.
        """
        if self.max_idle is None:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [key for key in self._items if now - self._used.get(key, now) > self.max_idle]
            for key in stale:
                self._drop(key)
        if stale:
            from .rss import give_back_memory

            give_back_memory()
        return len(stale)

    def _sweep_forever(self) -> None:
        assert self.max_idle is not None
        while True:
            time.sleep(max(1.0, self.max_idle / 4))
            self.sweep()

    def put(self, key: Hashable, value: V, size: int) -> bool:
        """Keep `value` (its `size` in bytes), evicting the least recently used; False if it alone is too big."""
        with self._lock:
            self._drop(key)
            if size > self.max_bytes or self.max_entries < 1:
                return False
            while self._items and (len(self._items) >= self.max_entries or self._bytes + size > self.max_bytes):
                self._drop(next(iter(self._items)))
            self._items[key] = (value, size)
            self._used[key] = time.monotonic()
            self._bytes += size
            if self.max_idle is not None and self._sweeper is None:
                self._sweeper = threading.Thread(target=self._sweep_forever, name="cache-sweeper", daemon=True)
                self._sweeper.start()
            return True

    def get_or_make(self, key: Hashable, make: Callable[[], V], size: Callable[[V], int]) -> V:
        """The kept value for `key`, else `make()`, kept when it fits. Two sessions may make it at once; one is kept."""
        found = self.get(key)
        if found is not None:
            return found
        value = make()
        self.put(key, value, size(value))
        return value

    def _drop(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        self._used.pop(key, None)
        if item is not None:
            self._bytes -= item[1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._used.clear()
            self._bytes = 0

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
