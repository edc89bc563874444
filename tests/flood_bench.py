"""The full-size flood: many fresh browsers each paste a large text and press Train, against a real server.

`python tests/flood_bench.py [--sessions 30] [--mb 19]` starts `streamlit run` on 127.0.0.1 (its own data
folder, the app's default limits unless the environment sets them), then opens `--sessions` tabs one after
another through `tests/st_client.py`, each a new browser (new cookie, new owner) pasting a text of its own of
`--mb` megabytes and pressing Train; a tab that gets a run pauses it (it keeps its place without a core). Meanwhile
another visitor loads the Train page every few seconds and times it. Then every tab closes and the server's
memory is watched while that visitor goes on (Streamlit lets go of a closed tab's session on a later visit). Prints: the server's memory (start, peak, after), page-load times, how many
tabs got a run and how many were told the lab is full. Bounded: every wait has a timeout, every client a lifetime.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from st_client import Page, ServerGone, StClient
from testkit import flood_text, streamlit_server

WAIT = 300.0
TINY = "model=rnn&hidden=32&batch=8&steps=10&opt=adam&lr=0.01&epochs=500"


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler(threading.Thread):
    """The server's memory every half second, until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples, self.done = pid, [rss_mb(pid)], threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.samples.append(rss_mb(self.pid))


class PageLoads(threading.Thread):
    """A visitor who opens the Train page (a new tab each time) every few seconds; each load is timed."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.seconds, self.failures, self.done = url, [], [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(3.0):
            start = time.monotonic()
            try:
                with StClient(self.url, timeout=60.0, lifetime=90.0, follow_timers=False) as tab:
                    tab.open("", "lang=en")
                    tab.wait_for(lambda p: p.title.startswith("Train"), 60.0, "the Train page")
                self.seconds.append(time.monotonic() - start)
            except (ServerGone, TimeoutError) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}"[:200])


def outcome(page: Page) -> str | None:
    if page.has_text("The lab is full"):
        return "full"
    if page.has_text("You already have"):
        return "owner full"
    if "Pause" in page.buttons:
        return "run"
    if page.exceptions:
        return "exception"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--mb", type=float, default=19.0)
    parser.add_argument("--settle", type=float, default=240.0, help="seconds to watch memory after the tabs close")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="lab-flood-bench-"))
    with (data / "server.log").open("w") as log, streamlit_server(str(data), log, 180.0) as server:
        with StClient(server.url, timeout=WAIT) as first:  # the server's first page: what every visitor pays
            first.open("", "lang=en")
        time.sleep(10)  # the warm-up threads and the spare worker settle
        sampler, loads = Sampler(server.pid), PageLoads(server.url)
        start = rss_mb(server.pid)
        sampler.start()
        loads.start()
        tabs, outcomes = [], []
        began = time.monotonic()
        for i in range(args.sessions):
            text = flood_text(i, args.mb)
            tab = StClient(server.url, timeout=WAIT, lifetime=3600.0, keepalive=WAIT)
            tabs.append(tab)
            try:
                tab.open("", f"lang=en&corpus=paste&{TINY}")
                tab.set_value("Paste text here", text)
                tab.click("Train")
                result = tab.wait_for(outcome, WAIT, "a run or a refusal")
                if result == "run":
                    tab.click("Pause")
            except (ServerGone, TimeoutError) as exc:
                result = f"lost ({type(exc).__name__})"
            outcomes.append(result)
            elapsed = time.monotonic() - began
            print(f"{elapsed:5.0f} s session {i + 1:2d}: {result:10s} server {rss_mb(server.pid):7.0f} MB", flush=True)
        flood_seconds = time.monotonic() - began
        peak_open = max(sampler.samples)
        for tab in tabs:
            tab.close()
        closed = time.monotonic()
        while time.monotonic() - closed < args.settle:  # the visitor goes on loading pages, as visitors do
            time.sleep(5)
        loads.done.set()
        loads.join(120)
        sampler.done.set()
        sampler.join(5)
        after = rss_mb(server.pid)
    print()
    print(f"sessions: {args.sessions} × {args.mb:g} MB pasted, in {flood_seconds:.0f} s")
    for kind in sorted(set(outcomes)):
        print(f"  {kind}: {outcomes.count(kind)}")
    print(f"server memory: start {start:.0f} MB, peak {max(sampler.samples):.0f} MB (with the tabs open: "
          f"{peak_open:.0f} MB), after the tabs closed and {args.settle:.0f} s: {after:.0f} MB "
          f"(after - start: {after - start:+.0f} MB)")  # fmt: skip
    if loads.seconds:
        print(f"page loads meanwhile: {len(loads.seconds)}, median {statistics.median(loads.seconds):.2f} s, "
              f"max {max(loads.seconds):.2f} s; failed: {len(loads.failures)}")  # fmt: skip
    for failure in loads.failures[:5]:
        print(f"  {failure}")


if __name__ == "__main__":
    main()
