"""Load measurement: a class of 30 on one experiment board, each student a websocket client (tests/st_client.py).

    python tests/board_load.py [--students 30] [--values 6] [--epochs 12] [--budget 600]

Starts its own `streamlit run` of this checkout on a free 127.0.0.1 port with a temporary
RNN_LAB_DATA, writes a board into that data folder (the learning rate of a small GRU over `--values` values,
the bundled Song ci), and then:

- every student opens the board's link (the value fewest have is theirs) and presses "Train this value";
  their tabs then redraw the board on its timer, as a browser does, until their runs have ended;
- while the runs train, new visitors open the board's link one after another, at most one a second (a fresh
  browser: page load measured), and every student reloads the page once every 20 s or so (a full page run,
  measured);
- once every run has ended (or `--budget` seconds have passed) it stops the clients and the server.

Printed: board page p50 / p95 / max for the visitors' loads and the students' reloads while runs were training
(the target is p95 <= 3 s), the board's timer redraws answered, runs finished and how long they took, the web
process's CPU (cores, from /proc) and the machine's load average beside them (this machine is shared: compare
runs made back to back, not figures from different hours). Talks only to 127.0.0.1; every client and the
server stop by themselves. A script, not a test: its figures are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from st_client import ServerGone, StClient
from testkit import streamlit_server

TARGET_P95 = 3.0  # seconds: the board page while a class trains on it
TICK = os.sysconf("SC_CLK_TCK")
LR_VALUES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _figures(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: none"
    return (
        f"{name}: n={len(values)}  p50 {statistics.median(values):.2f} s  p95 {_pct(values, 0.95):.2f} s  "
        f"max {max(values):.2f} s"
    )


def _create_board(data: str, values: int, epochs: int) -> str:
    from lm_core.boards import new_board
    from lm_core.serve.board_store import BoardStore
    from lm_core.training import TrainConfig

    config = TrainConfig(model="gru", hidden=32, num_steps=10, batch_size=8, lr=0.01, optimizer="adam", epochs=epochs)
    board = new_board(
        "teacher",
        "lr",
        LR_VALUES[:values],
        config,
        {"source": "songci", "subset": "xin", "max_chars": 3000},
        preset="quick_demo",
        title="Load test",
    )
    store = BoardStore(data)
    store.create(board)
    store.close()
    return board.id


class Measure:
    """The measurement's shared figures (threads append; read at the end)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.training = threading.Event()  # set while runs are queued or training
        self.done = threading.Event()
        self.visitor_loads: list[float] = []
        self.reloads: list[float] = []
        self.train_clicks: list[float] = []
        self.errors: list[str] = []

    def add(self, series: list[float], value: float) -> None:
        with self.lock:
            series.append(value)


def _student(url: str, query: str, m: Measure, budget: float, seed: int) -> StClient | None:
    tab = StClient(url, timeout=120.0, lifetime=budget + 120)
    try:
        tab.open("board", query)
        m.add(m.train_clicks, tab.click("Train this value"))
        errors = [text for kind, text in tab.page.alerts if kind == "error"]
        if errors:
            with m.lock:
                m.errors.extend(errors)
    except (ServerGone, TimeoutError, AssertionError) as exc:
        with m.lock:
            m.errors.append(f"student {seed}: {exc}")
        tab.close()
        return None
    return tab


def _reloads(tabs: list[StClient], m: Measure) -> None:
    """Each student reloads the page about every 20 s while runs train (a full page run, measured)."""
    rng = random.Random(7)
    while not m.done.is_set():
        for tab in rng.sample(tabs, len(tabs)):
            if m.done.is_set():
                return
            if m.training.is_set() and not tab.closed:
                try:
                    m.add(m.reloads, tab.rerun())
                except (ServerGone, TimeoutError) as exc:
                    with m.lock:
                        m.errors.append(f"reload: {exc}")
            m.done.wait(20.0 / max(1, len(tabs)))


def _visitors(url: str, query: str, m: Measure) -> None:
    """A fresh browser opens the board's link while runs train, one after another, at most one a second (its page
    load measured). One at a time: visitors that pile up behind a slow load would measure the pile, not the page."""
    while not m.done.is_set():
        if not m.training.is_set():
            m.done.wait(0.2)
            continue
        started = time.monotonic()
        try:
            with StClient(url, timeout=60.0, lifetime=90.0) as tab:
                m.add(m.visitor_loads, tab.open("board", query))
        except (ServerGone, TimeoutError) as exc:
            with m.lock:
                m.errors.append(f"visitor: {exc}")
        m.done.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def _metric(page, label: str) -> int | None:
    for element in page.of("metric"):
        if element.text == label:
            try:
                return int(element.proto.metric.body)
            except ValueError:
                return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--values", type=int, default=6, choices=range(2, len(LR_VALUES) + 1))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds: everything stops by then")
    args = parser.parse_args()
    students = max(1, min(args.students, 60))
    m = Measure()
    started = time.monotonic()
    deadline = started + args.budget
    data = tempfile.mkdtemp(prefix="lab-board-load-")
    print(f"board load: {students} students, {args.values} values, {args.epochs} epochs; load average {_load():.1f}")
    with (Path(data) / "server.log").open("w") as log, streamlit_server(data, log, ready_within=120.0) as server:
        board_id = _create_board(data, args.values, args.epochs)
        query = f"board={board_id}&lang=en"
        cpu0, t0 = _cpu_seconds(server.pid), time.monotonic()
        with StClient(server.url, timeout=120.0, lifetime=args.budget + 120) as teacher:
            teacher.open("board", query)
            tabs: list[StClient] = []
            lock = threading.Lock()

            def join(i: int) -> None:
                tab = _student(server.url, query, m, args.budget, i)
                if tab is not None:
                    with lock:
                        tabs.append(tab)

            joiners = [threading.Thread(target=join, args=(i,), daemon=True) for i in range(students)]
            for th in joiners:
                th.start()
                time.sleep(0.1)  # a class arrives over a few seconds, not in one instant
            for th in joiners:
                th.join(max(1.0, deadline - time.monotonic()))
            clicked = time.monotonic()
            m.training.set()
            helpers = [
                threading.Thread(target=_reloads, args=(tabs, m), daemon=True),
                threading.Thread(target=_visitors, args=(server.url, query, m), daemon=True),
            ]
            for th in helpers:
                th.start()
            finished_at = None
            while time.monotonic() < deadline:
                page = teacher.page
                runs, live = _metric(page, "Runs"), _metric(page, "Queued or training")
                if runs is not None and runs >= len(tabs) and live == 0:
                    finished_at = time.monotonic()
                    break
                time.sleep(0.5)
            m.training.clear()
            m.done.set()
            cpu1, t1 = _cpu_seconds(server.pid), time.monotonic()
            finished = _metric(teacher.page, "Finished")
            timer_answers = [s for tab in tabs for what, s in tab.answers if what == "timer"]
            for tab in tabs:
                tab.close()
    print(f"students joined and pressed Train: {len(tabs)} of {students}; errors: {len(m.errors)}")
    for line in m.errors[:5]:
        print(f"  {line}")
    print(_figures("  Train pressed -> answered", m.train_clicks))
    print(_figures("board page, visitor's first load while training", m.visitor_loads))
    print(_figures("board page, student's reload while training", m.reloads))
    both = m.visitor_loads + m.reloads
    print(_figures("board page, all loads while training", both))
    print(_figures("board timer redraws (each student tab)", timer_answers))
    took = (finished_at or time.monotonic()) - clicked
    print(f"runs finished: {finished} in {took:.0f} s{'' if finished_at else ' (budget over before the end)'}")
    print(f"web process CPU: {(cpu1 - cpu0) / max(1e-9, t1 - t0):.2f} cores on average; load average {_load():.1f}")
    p95 = _pct(both, 0.95)
    print(f"target board page p95 <= {TARGET_P95:g} s: {'met' if p95 <= TARGET_P95 else 'NOT met'} ({p95:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
