"""The process's resident memory, as the operating system counts it: now, and the peak since a reset.

Linux keeps a high-water mark of every process's resident set (`VmHWM` in
/proc/self/status) and lets the process reset it to the current size by writing
"5" to /proc/self/clear_refs (Linux ≥ 4.0). That makes a per-epoch peak cost two
small file operations and no sampling thread. Elsewhere (or if /proc is not
writable) the functions answer None and training goes on unmeasured.

The figure is the whole process's: in a worker process of its own it is the
run's memory; in a process that trains several runs in threads (the thread
backend) it is the peak of all of them together, and one run's reset lowers the
mark for the others too. The reset also lowers `getrusage`'s `ru_maxrss`, so a
whole-process peak must come from `lifetime_peak_rss()`, which remembers the
marks it reset.
"""

from __future__ import annotations

import threading

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"
_lock = threading.Lock()
_reset_peaks = [0]  # the largest mark any reset has erased


def _status_kib(field: str) -> int | None:
    try:
        with open(_STATUS, encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss() -> int | None:
    """Resident bytes of this process now (None where /proc is not available)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss() -> int | None:
    """The largest resident size in bytes since the process started or since `reset_peak_rss()`."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def reset_peak_rss() -> bool:
    """Start a new peak at the current size; False where the system does not allow it (the peak then keeps growing)."""
    with _lock:
        before = peak_rss()
        try:
            with open(_CLEAR_REFS, "w", encoding="ascii") as f:
                f.write("5")
        except OSError:
            return False
        if before is not None:
            _reset_peaks[0] = max(_reset_peaks[0], before)
    return True


def lifetime_peak_rss() -> int | None:
    """The largest resident size since the process started, whatever `reset_peak_rss()` erased since."""
    now = peak_rss()
    with _lock:
        return None if now is None else max(now, _reset_peaks[0])


def give_back_memory() -> bool:
    """Hand memory that Python freed back to the operating system now (glibc's `malloc_trim`); False elsewhere.

    Why: glibc keeps freed heap memory for the process's next allocations, so a server that let go of a class's
    large texts still shows them in its resident size for a long time. Called after a cache drops what it held.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False
