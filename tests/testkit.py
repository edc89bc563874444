"""Plain helpers shared by test modules and the scripts beside them: synthetic text, polling, a reference
training curve, a real `streamlit run` server and the headless browser's flags. No Streamlit import here.

Fixtures live in `conftest.py`; the AppTest page helpers in `apptest_helpers.py`
and `apptest_helpers_models.py`. This module is for what any test may import,
including the engine's tests, which must not pull in the UI, and the load and
bench scripts, which run it as a plain module (so heavy imports stay inside
the functions that need them).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lm_core.training import Trainer

REPO = Path(__file__).resolve().parents[1]

# Phrases written for these tests (not lyrics from any corpus).
TINY_PHRASES = (
    "春风吹过小河边",
    "月光照在老树上",
    "我们一起唱着歌",
    "雨后的天空很蓝",
    "远方的朋友你好吗",
    "山上的花开了",
)


def tiny_text(phrases: Sequence[str] = TINY_PHRASES, n_lines: int = 80, seed: int = 1) -> str:
    """Deterministic synthetic lines "a，b。" of two different `phrases` each (about 1,000 characters by default).

    Made up here so tests train on a small known alphabet without reading any corpus.
    """
    rng = random.Random(seed)
    return "\n".join(f"{a}，{b}。" for a, b in (rng.sample(phrases, 2) for _ in range(n_lines)))


TIMEOUT = 120.0  # seconds: an upper bound for a worker to get somewhere; never a pass condition by itself


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, poll: float = 0.01) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


def seconds_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> float:
    """Seconds until `predicate` held, polled every 5 ms (fails the test after `timeout`): how fast a control acts."""
    start = time.monotonic()
    assert wait_until(predicate, timeout, poll=0.005), "timed out"
    return time.monotonic() - start


def thread_curve(trainer: Trainer, timeout: float = TIMEOUT) -> list[float]:
    """Perplexity by epoch of `trainer` run to the end on the local thread backend.

    The reference that a worker process, a Ray actor or a resumed run must reproduce exactly.
    """
    from lm_core.jobs import JobManager

    manager = JobManager()
    try:
        job = manager.submit("reference", [trainer])
        job.thread.join(timeout)
        return [h["perplexity"] for h in manager.view(job).runs[0].history]
    finally:
        manager.shutdown()


# Debian's Chromium, never a downloaded browser; the flags a headless run in a container needs.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(NamedTuple):
    url: str  # http://127.0.0.1:<port>
    pid: int  # for the load test's memory and CPU figures


@contextmanager
def streamlit_server(data: str, log: IO[str], ready_within: float = 60.0) -> Iterator[Server]:
    """`streamlit run streamlit_app.py` on a free 127.0.0.1 port, once it answers its health check.

    Its runs go to `data` (RNN_LAB_DATA), never the repository's lab-data/; its output to `log`. Stopped on exit.
    Raises TimeoutError when the server is not healthy within `ready_within` seconds.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env={**os.environ, "RNN_LAB_DATA": data}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: _healthy(base), ready_within, poll=0.3):
            raise TimeoutError(f"streamlit did not become healthy within {ready_within:g} s")
        yield Server(base, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _healthy(base: str) -> bool:
    try:
        return urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False
