"""Load benchmark: a class on one server, each student a websocket client (tests/st_client.py), no browser.

    python tests/load_bench.py [--scenarios train20,train40,mix10+30,ray-mix10+30,idle10,churn150,retain120]
                               [--repo PATH] [--epochs 3] [--budget 900] [--json FILE] [--env RNN_LAB_X=V]

Each scenario starts its own `streamlit run` of `--repo` (default: this checkout; give another checkout to
measure it with the same client and the same figures) on a free 127.0.0.1 port, with a temporary
RNN_LAB_DATA, drives it, stops it, and stops by itself after `--budget` seconds at most. Scenarios:

- `trainN`: N students open the Train page (English, a small 3-epoch model), press Train together and watch
  their runs to the end, each pressing Pause once its run trains (and Resume after). Meanwhile a visitor
  opens the page in a fresh browser every second (the page load measured), and a probe asks the server's
  health route four times a second (an answer nobody got for over 1 s is a "server silence").
- `mixT+R`: T students train as above while R students read other pages (a new page every few seconds).
- `ray-mixT+R`: the same on a two-node Ray cluster started on this machine (one CPU per node, as in
  tests/test_ray_backend.py), the server joining it through RNN_LAB_RAY_ADDRESS.
- `idleK`: K tabs with paused runs; the web process's CPU while they poll minus while they do not,
  divided by the polls answered: the cost of a poll that finds nothing new.
- `churnN`: N short runs, each from a fresh browser, four at a time; the web process's memory after each
  tenth, and once Streamlit has dropped the closed tabs' sessions.
- `retainN`: the job manager alone (a process of its own, `--repo`'s code, no server): N runs of N owners,
  its memory and the jobs it keeps after each twentieth.

Printed per scenario, each figure beside the machine's 1-minute load average (this machine is shared: compare
two checkouts run back to back, not figures from different hours): visitor page load p50/p95/max, Pause
answered p50/p95, polls answered within 1 s of those sent (and fragment redraws the server dropped as
"finished early"), runs finished, server silences over 1 s (count, longest), CPU in cores of the web process
(/proc of its pid), of the training workers (every other process under the server, and the Ray cluster's) and
of this client, memory, zombie workers, and the server log's "fragment does not exist anymore" lines.
Talks only to 127.0.0.1. A script, not a test: its figures are measurements, not pass/fail.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # testkit, lm_core

from st_client import Page, ServerGone, StClient
from testkit import REPO, streamlit_server

RUN = "lang=en&model=rnn&hidden=32&batch=8&steps=10&opt=adam&lr=0.01&epochs={epochs}"
READ_PAGES = ("sampling", "hidden_states", "generate", "clipping", "my_runs", "gradients", "generalise", "")
MAX_SESSIONS = 80  # whatever a scenario asks
MAX_VISITORS_AT_ONCE = 70  # page loads in flight (each bounded by VISIT_TIMEOUT)
VISIT_TIMEOUT = 60.0
SILENCE = 1.0  # seconds without any answer from the server to anyone
SESSION_TTL = 120.0  # Streamlit's server.disconnectedSessionTTL: a closed tab's session is kept this long
FRAGMENT_GONE = "does not exist anymore"
TICK = os.sysconf("SC_CLK_TCK")
SERVER_ENV: dict[str, str] = {}  # --env KEY=VALUE: for every server this run starts (e.g. RNN_LAB_WORKERS=1)


# -- the machine, from /proc ---------------------------------------------------------------------------------


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass
class Proc:
    pid: int
    ppid: int
    state: str
    cpu: float  # seconds of user + system time
    rss_mib: float


def processes() -> dict[int, Proc]:
    """Every process of the machine (pid, parent, state, CPU seconds, resident memory)."""
    found = {}
    page = os.sysconf("SC_PAGE_SIZE") / 2**20
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            _, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        f = tail.split()
        found[int(entry.name)] = Proc(int(entry.name), int(f[1]), f[0], (int(f[11]) + int(f[12])) / TICK,
                                      int(f[21]) * page)  # fmt: skip
    return found


def descendants(procs: dict[int, Proc], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    out, todo = set(), [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            if kid not in out:
                out.add(kid)
                todo.append(kid)
    return out


class Sampler:
    """Every half second: CPU and memory of the web process, of every other process under it or under this
    script (workers, the Ray cluster), of this script; zombies under the server; the load average."""

    def __init__(self, server_pid: int) -> None:
        self.server = server_pid
        self.me = os.getpid()
        self.base: dict[int, float] = {}  # CPU seconds when the window opened (processes alive then)
        self.last: dict[int, float] = {}
        self.loads: list[float] = []
        self.server_rss: list[float] = []
        self.worker_rss: list[float] = []
        self.zombies = 0
        self._window: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _sample(self) -> None:
        procs = processes()
        mine = (descendants(procs, self.me) | descendants(procs, self.server)) - {self.server}
        with self._lock:
            for pid in mine | {self.server, self.me}:
                if pid in procs:
                    self.last[pid] = procs[pid].cpu
            if self._window is not None:
                self.loads.append(load_average())
                if self.server in procs:
                    self.server_rss.append(procs[self.server].rss_mib)
                self.worker_rss.append(sum(procs[p].rss_mib for p in mine if p in procs and p != self.me))
                zombies = sum(1 for p in descendants(procs, self.server) if procs[p].state == "Z")
                self.zombies = max(self.zombies, zombies)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def open_window(self) -> None:
        self._sample()
        with self._lock:
            self.base = dict(self.last)
            self._window = (time.monotonic(), 0.0)
            self.loads, self.server_rss, self.worker_rss, self.zombies = [load_average()], [], [], 0

    def close_window(self) -> dict[str, float]:
        self._sample()
        with self._lock:
            start = self._window[0] if self._window else time.monotonic()
            wall = max(1e-9, time.monotonic() - start)
            self._window = None

            def used(pid: int) -> float:
                return self.last.get(pid, 0.0) - self.base.get(pid, 0.0)

            workers = sum(used(p) for p in self.last if p not in (self.server, self.me))
            return {
                "seconds": wall,
                "web_cores": used(self.server) / wall,
                "worker_cores": workers / wall,
                "client_cores": used(self.me) / wall,
                "load_start": self.loads[0] if self.loads else float("nan"),
                "load_mean": statistics.fmean(self.loads) if self.loads else float("nan"),
                "load_max": max(self.loads, default=float("nan")),
                "web_rss_start": self.server_rss[0] if self.server_rss else float("nan"),
                "web_rss_max": max(self.server_rss, default=float("nan")),
                "web_rss_end": self.server_rss[-1] if self.server_rss else float("nan"),
                "worker_rss_max": max(self.worker_rss, default=float("nan")),
                "zombies_max": self.zombies,
            }

    def cpu(self, pid: int) -> float:
        """CPU seconds of `pid` at the last sample (call `sample_now` first for a fresh figure)."""
        with self._lock:
            return self.last.get(pid, 0.0)

    def sample_now(self) -> None:
        self._sample()


class Timeline:
    """When anyone heard anything from the server (every client's messages, the probe's answers)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def heard(self, at: float) -> None:
        with self._lock:
            self.times.append(at)

    def silences(self, start: float, end: float) -> list[tuple[float, float]]:
        """Each silence over `SILENCE` as (seconds after `start` it began, how long it lasted)."""
        with self._lock:
            times = sorted(t for t in self.times if start <= t <= end)
        edges = [start, *times, end]
        return [(a - start, b - a) for a, b in itertools.pairwise(edges) if b - a > SILENCE]


def probe(url: str, timeline: Timeline, stop: threading.Event, latencies: list[float]) -> None:
    """Ask the server's health route four times a second; each answer is something the server said."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            with opener.open(f"{url}/_stcore/health", timeout=30) as r:
                r.read()
            timeline.heard(time.monotonic())
            latencies.append(time.monotonic() - t0)
        except OSError:
            latencies.append(time.monotonic() - t0)
        stop.wait(max(0.0, 0.25 - (time.monotonic() - t0)))


# -- what students do ----------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One scenario's measurements (JSON-able, so two checkouts' runs can be compared later)."""

    scenario: str
    repo: str
    sessions: int = 0
    visitor_loads: list[float] = field(default_factory=list)
    visitor_failures: int = 0
    pauses: list[float] = field(default_factory=list)
    reader_loads: list[float] = field(default_factory=list)
    polls_sent: int = 0
    polls_fast: int = 0  # answered within 1 s
    polls_dropped: int = 0  # fragment reruns the server cut short ("finished early")
    redraws: int = 0  # fragment runs that reached a tab
    runs_started: int = 0
    runs_finished: int = 0
    jobs: list[str] = field(default_factory=list)  # each student's job id, from its URL
    runs_mixed: int = 0  # students who saw the same job, or jobs whose owners in the store coincide
    seconds_to_all_finished: float = 0.0
    silences: list[float] = field(default_factory=list)
    silence_starts: list[float] = field(default_factory=list)  # seconds after Train each silence began
    health: list[float] = field(default_factory=list)
    machine: dict[str, float] = field(default_factory=dict)
    fragment_gone_lines: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _progress(page: Page) -> str:
    return " ".join(page.progress)


def _finished(page: Page, epochs: int) -> bool:
    return any(f"Epoch {epochs}/{epochs}" in p and "Finished" in p for p in page.progress)


def _account(tab: StClient, figures: Figures, lock: threading.Lock) -> None:
    """Fold one tab's poll figures into the scenario's (timer reruns, or the poll component's requests)."""
    polls = tab.poll_stats()
    with lock:
        figures.polls_sent += polls["sent"]
        figures.polls_fast += polls["fast"]
        figures.polls_dropped += tab.dropped_fragment_runs
        figures.redraws += polls["redraws"]


def student(url: str, figures: Figures, lock: threading.Lock, ctx: Scenario, index: int) -> None:
    """Open the Train page, wait for everyone, press Train; Pause once it trains, Resume, watch it finish."""

    def left() -> float:
        return max(1.0, ctx.deadline - time.monotonic())

    try:
        with StClient(url, timeout=120.0, lifetime=left() + 30, on_message=ctx.timeline.heard) as tab:
            tab.open("", RUN.format(epochs=ctx.epochs), timeout=left())
            ctx.arrived()
            ctx.go.wait(left())
            tab.click("Train", timeout=left())
            with lock:
                figures.runs_started += 1
            try:
                tab.wait_for(lambda p: "Training" in _progress(p) or _finished(p, ctx.epochs), left(), "training")
                if not _finished(tab.page, ctx.epochs):
                    t0 = time.monotonic()
                    tab.click("Pause", timeout=left())
                    # A short run may end before the pause takes: then there is nothing to resume.
                    resumable = lambda p: p.widget("Resume", ("button",)) or _finished(p, ctx.epochs)
                    tab.wait_for(resumable, left(), "Resume")
                    if not _finished(tab.page, ctx.epochs):
                        with lock:
                            figures.pauses.append(time.monotonic() - t0)
                        tab.click("Resume", timeout=left())
                tab.wait_for(lambda p: _finished(p, ctx.epochs), left(), "Finished")
                with lock:
                    figures.runs_finished += 1
                    job = re.search(r"job=(\w+)", tab.query_string)
                    figures.jobs.append(job.group(1) if job else "")
            finally:
                _account(tab, figures, lock)
    except (TimeoutError, ServerGone) as exc:
        with lock:
            figures.errors.append(f"student {index}: {type(exc).__name__}: {str(exc)[:160]}")
    finally:
        ctx.arrived()  # idempotent per student: a student who failed to arrive must not hold the others
        ctx.left_one()


def reader(url: str, figures: Figures, lock: threading.Lock, ctx: Scenario, index: int) -> None:
    """Open a page, then another every 3-7 s, until the students are done."""
    rng = random.Random(index)
    pages = list(READ_PAGES)
    rng.shuffle(pages)
    try:
        with StClient(url, timeout=120.0, lifetime=ctx.deadline - time.monotonic() + 30,
                      on_message=ctx.timeline.heard) as tab:  # fmt: skip
            tab.open(pages[0], "lang=en", timeout=max(1.0, ctx.deadline - time.monotonic()))
            ctx.arrived()
            i = 0
            while not ctx.done.wait(rng.uniform(3.0, 7.0)):
                i += 1
                seconds = tab.open(pages[i % len(pages)], "lang=en", timeout=max(1.0, ctx.deadline - time.monotonic()))
                with lock:
                    figures.reader_loads.append(seconds)
            _account(tab, figures, lock)
    except (TimeoutError, ServerGone) as exc:
        with lock:
            figures.errors.append(f"reader {index}: {type(exc).__name__}: {str(exc)[:160]}")
    finally:
        ctx.arrived()


def visitor(url: str, figures: Figures, lock: threading.Lock, timeline: Timeline) -> None:
    """A fresh browser loads the Train page: seconds until its first run finished (60 s at most)."""
    t0 = time.monotonic()
    try:
        with StClient(url, timeout=VISIT_TIMEOUT, lifetime=VISIT_TIMEOUT + 10, on_message=timeline.heard) as tab:
            tab.open("", "lang=en", timeout=VISIT_TIMEOUT)
        with lock:
            figures.visitor_loads.append(time.monotonic() - t0)
    except (TimeoutError, ServerGone):
        with lock:
            figures.visitor_failures += 1


# -- scenarios -----------------------------------------------------------------------------------------------


class Scenario:
    """Shared state of one scenario's threads: the start signal, the end, the deadline."""

    def __init__(self, sessions: int, epochs: int, budget: float, timeline: Timeline) -> None:
        self.epochs = epochs
        self.deadline = time.monotonic() + budget
        self.timeline = timeline
        self.go = threading.Event()
        self.done = threading.Event()
        self._arrived: set[int] = set()
        self._left = 0
        self._sessions = sessions
        self._students = 0
        self._lock = threading.Condition()

    def arrived(self) -> None:
        with self._lock:
            self._arrived.add(threading.get_ident())
            self._lock.notify_all()

    def all_arrived(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self._arrived) >= self._sessions, timeout)

    def expect_students(self, n: int) -> None:
        self._students = n

    def left_one(self) -> None:
        with self._lock:
            self._left += 1
            if self._left >= self._students:
                self.done.set()
            self._lock.notify_all()


@contextmanager
def ray_cluster() -> Iterator[str]:
    """A head and a second node on this machine, one CPU each (as tests/test_ray_backend.py starts them)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    made = None
    try:
        made = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        made.add_node(num_cpus=1)
        made.wait_for_nodes()
        yield made.address
    finally:
        if made is not None:
            made.shutdown()


@contextmanager
def server(repo: Path, figures: Figures, env: dict[str, str] | None = None) -> Iterator[tuple[str, int, Path]]:
    data = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    log_path = data / "server.log"
    env = {**SERVER_ENV, **(env or {})}
    with log_path.open("w") as log, streamlit_server(str(data), log, 180.0, repo=repo, env=env) as running:
        # A server that has been up a while: its spare worker has imported torch.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(running.url + "/", timeout=60) as r:
            r.read()
        with StClient(running.url, timeout=120.0) as tab:
            tab.open("", "lang=en")
        time.sleep(8.0)
        yield running.url, running.pid, log_path
    figures.fragment_gone_lines = log_path.read_text(errors="replace").count(FRAGMENT_GONE)


def class_scenario(name: str, repo: Path, students: int, readers: int, epochs: int, budget: float,
                   ray: bool = False) -> Figures:  # fmt: skip
    figures = Figures(name, str(repo), sessions=students + readers)
    lock = threading.Lock()
    timeline = Timeline()
    with ray_cluster() if ray else nullcontext(None) as address:
        env = {"RNN_LAB_RAY_ADDRESS": address} if address else None
        with server(repo, figures, env) as (url, pid, log_path), Sampler(pid) as sampler:
            ctx = Scenario(students + readers, epochs, budget, timeline)
            ctx.expect_students(students)
            threads = []
            for i in range(students + readers):  # a class arrives a few at a time
                target = student if i < students else reader
                th = threading.Thread(target=target, args=(url, figures, lock, ctx, i), daemon=True)
                th.start()
                threads.append(th)
                time.sleep(0.25)
            if not ctx.all_arrived(max(1.0, ctx.deadline - time.monotonic())):
                figures.notes.append("not every session arrived before the deadline")
            stop = threading.Event()
            health = threading.Thread(target=probe, args=(url, timeline, stop, figures.health), daemon=True)
            health.start()
            sampler.open_window()
            start = time.monotonic()
            ctx.go.set()  # everyone presses Train
            visitors: list[threading.Thread] = []
            while not ctx.done.is_set() and time.monotonic() < ctx.deadline:
                visitors = [v for v in visitors if v.is_alive()]
                if len(visitors) < MAX_VISITORS_AT_ONCE:
                    v = threading.Thread(target=visitor, args=(url, figures, lock, timeline), daemon=True)
                    v.start()
                    visitors.append(v)
                ctx.done.wait(1.0)
            end = time.monotonic()
            if ctx.done.is_set():
                figures.seconds_to_all_finished = end - start
            figures.machine = sampler.close_window()
            ctx.done.set()
            stop.set()
            for th in [*threads, *visitors, health]:
                th.join(max(1.0, min(VISIT_TIMEOUT + 5, ctx.deadline + 30 - time.monotonic())))
            gaps = timeline.silences(start, end)
            figures.silences = [length for _, length in gaps]
            figures.silence_starts = [round(at, 2) for at, _ in gaps]
            if end >= ctx.deadline:
                figures.notes.append(f"stopped at the budget ({budget:.0f} s)")
            data = log_path.parent
    figures.runs_mixed = mixed_runs(figures.jobs, data / "runs.sqlite")
    return figures


def mixed_runs(jobs: list[str], store: Path) -> int:
    """Students who ended on the same job, plus jobs the run store gives the same owner (each student is
    a fresh browser, so every job must have its own owner)."""
    mixed = len(jobs) - len(set(jobs))
    try:
        with closing(sqlite3.connect(store)) as conn:
            owners = dict(conn.execute("SELECT job_id, owner FROM runs"))
    except sqlite3.Error:
        return mixed
    known = [owners[j] for j in set(jobs) if j in owners]
    return mixed + len(known) - len(set(known))


def idle_scenario(name: str, repo: Path, tabs: int, budget: float) -> Figures:
    """K tabs with paused runs: the web process's CPU per poll that finds nothing new."""
    figures = Figures(name, str(repo), sessions=tabs)
    timeline = Timeline()
    deadline = time.monotonic() + budget
    with server(repo, figures) as (url, pid, _), Sampler(pid) as sampler:
        clients = []
        try:
            for _ in range(tabs):
                tab = StClient(url, timeout=120.0, lifetime=budget + 30, on_message=timeline.heard)
                clients.append(tab)
                tab.open("", RUN.format(epochs=500), timeout=max(1.0, deadline - time.monotonic()))
                tab.click("Train")
                # Pause it whatever it is doing (queued or training): its run then waits, the slot is free.
                tab.click("Pause", timeout=max(1.0, deadline - time.monotonic()))
                tab.wait_for(lambda p: p.widget("Resume", ("button",)), max(1.0, deadline - time.monotonic()))
            time.sleep(5.0)  # the last pause settles
            quiet, busy = 20.0, 40.0
            for tab in clients:
                tab.follow_timers = False
            sampler.sample_now()
            c0, t0 = sampler.cpu(pid), time.monotonic()
            time.sleep(quiet)
            sampler.sample_now()
            c1, t1 = sampler.cpu(pid), time.monotonic()
            before = {id(tab): tab.poll_stats()["answered"] for tab in clients}
            sampler.open_window()
            for tab in clients:
                tab.follow_timers = True
            time.sleep(busy)
            figures.machine = sampler.close_window()
            c2, t2 = sampler.cpu(pid), time.monotonic()
            polls = sum(tab.poll_stats()["answered"] - before[id(tab)] for tab in clients)
            base_rate = (c1 - c0) / (t1 - t0)
            per_poll = ((c2 - c1) - base_rate * (t2 - t1)) / max(1, polls)
            figures.extra = {
                "idle_polls": polls,
                "idle_polls_per_s": polls / (t2 - t1),
                "web_cores_not_polling": base_rate,
                "web_cores_polling": (c2 - c1) / (t2 - t1),
                "web_ms_per_idle_poll": per_poll * 1000,
            }
        finally:
            for tab in clients:
                tab.close()
    return figures


def churn_scenario(name: str, repo: Path, runs: int, budget: float) -> Figures:
    """`runs` short runs, each from a fresh browser (a class: many owners), four at a time: the web process's
    memory as finished runs pile up (the server keeps a bounded number of them)."""
    figures = Figures(name, str(repo), sessions=4)
    timeline = Timeline()
    deadline = time.monotonic() + budget
    rss: list[tuple[int, float]] = []
    with server(repo, figures) as (url, pid, _), Sampler(pid) as sampler:
        sampler.open_window()
        lock = threading.Lock()

        def one_lane(index: int) -> None:
            while time.monotonic() < deadline:
                with lock:
                    if figures.runs_started >= runs:
                        return
                    figures.runs_started += 1
                try:
                    with StClient(url, timeout=120.0, lifetime=budget + 30, on_message=timeline.heard) as tab:
                        tab.open("", RUN.format(epochs=1).replace("hidden=32", "hidden=16"))
                        tab.click("Train", timeout=max(1.0, deadline - time.monotonic()))
                        tab.wait_for(lambda p: _finished(p, 1), max(1.0, deadline - time.monotonic()), "Finished")
                except (TimeoutError, ServerGone) as exc:
                    with lock:
                        figures.errors.append(f"lane {index}: {type(exc).__name__}: {str(exc)[:160]}")
                    continue
                with lock:
                    figures.runs_finished += 1
                    if figures.runs_finished % 10 == 0:
                        rss.append((figures.runs_finished, processes()[pid].rss_mib))

        threads = [threading.Thread(target=one_lane, args=(i,), daemon=True) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(max(1.0, deadline + 30 - time.monotonic()))
        time.sleep(5.0)  # the last tabs' sessions close
        rss.append((figures.runs_finished, processes()[pid].rss_mib))
        figures.machine = sampler.close_window()
        # Streamlit keeps a closed tab's session for server.disconnectedSessionTTL (120 s) in case it reconnects.
        time.sleep(max(0.0, min(SESSION_TTL + 10.0, deadline + 60 - time.monotonic())))
        settled = processes()[pid].rss_mib
    figures.extra = {"web_rss_by_runs": rss, "web_rss_sessions_gone": settled}
    return figures


# The job manager alone, in a process of its own, on `--repo`'s code: N short runs from N owners, the
# process's memory every 20 (what finished runs kept in memory cost, without any browser session).
_RETAIN = """
import gc, sys, tempfile
from pathlib import Path
def rss():
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
from lm_core.songci import songci_corpus
from lm_core.training import TrainConfig, Trainer
try:
    from lm_core.serve.manager import JobManager
    from lm_core.serve.store import RunStore
    from lm_core.serve import process_pool as pool
except ImportError:  # a checkout from before the job server had its own package
    from lm_core.jobs import JobManager
    from lm_core.runstore import RunStore
    from lm_core import process_backend as pool
corpus = songci_corpus()
config = dict(model="rnn", hidden=16, batch_size=8, num_steps=10, epochs=1, optimizer="adam", lr=0.01)
manager = JobManager(max_running=2, store=RunStore(tempfile.mkdtemp()), backend="process")
pool.wait_warm(120)
gc.collect()
print("0", rss(), 0, flush=True)
for i in range(int(sys.argv[1])):
    job = manager.submit(f"owner{i}", [Trainer(corpus, TrainConfig(**config))], ["rnn"], kind="train")
    job.thread.join(300)
    if (i + 1) % 20 == 0:
        gc.collect()
        print(i + 1, rss(), len(manager._jobs), flush=True)
manager.shutdown()
"""


def retain_scenario(name: str, repo: Path, runs: int, budget: float) -> Figures:
    """The job manager alone (no server, no session): memory as `runs` finished runs of as many owners pile up."""
    figures = Figures(name, str(repo), sessions=0)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", _RETAIN, str(runs)], cwd=repo, env={**env, **SERVER_ENV},
                          capture_output=True, text=True, timeout=budget, check=False)  # fmt: skip
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()]
    figures.extra = {"manager_rss": [(int(n), float(mib), int(kept)) for n, mib, kept in rows]}
    figures.runs_started = figures.runs_finished = int(rows[-1][0]) if rows else 0
    if done.returncode:
        figures.errors.append(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return figures


# -- printing ------------------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _s(values: list[float], q: float) -> str:
    return f"{_pct(values, q):.2f}" if values else "-"


def report(f: Figures) -> str:
    m = f.machine
    lines = [f"== {f.scenario} ({f.sessions} sessions) on {f.repo}"]
    if m:
        load = f"load avg {m['load_start']:.1f} at start, {m['load_mean']:.1f} mean, {m['load_max']:.1f} max"
        lines.append(f"   machine: {os.cpu_count()} cores, {load} over {m['seconds']:.0f} s")
    else:
        lines.append(f"   machine: {os.cpu_count()} cores, load avg {load_average():.1f} at the end")
    if f.visitor_loads or f.visitor_failures:
        lines.append(
            f"   visitor page load: p50 {_s(f.visitor_loads, 0.5)} / p95 {_s(f.visitor_loads, 0.95)} / max "
            f"{max(f.visitor_loads, default=float('nan')):.2f} s ({len(f.visitor_loads)} loads, "
            f"{f.visitor_failures} not answered within {VISIT_TIMEOUT:.0f} s)"
        )
    if f.pauses:
        lines.append(
            f"   Pause answered: p50 {_s(f.pauses, 0.5)} / p95 {_s(f.pauses, 0.95)} s ({len(f.pauses)} pauses)"
        )
    if f.reader_loads:
        lines.append(f"   reader page switch: p50 {_s(f.reader_loads, 0.5)} / p95 {_s(f.reader_loads, 0.95)} s")
    if f.polls_sent:
        lines.append(
            f"   polls answered within 1 s: {f.polls_fast:,} of {f.polls_sent:,} "
            f"({100 * f.polls_fast / f.polls_sent:.0f} %); redraws shown {f.redraws:,}, "
            f"dropped as finished early {f.polls_dropped:,}"
        )
    if f.runs_started:
        lines.append(
            f"   runs finished: {f.runs_finished}/{f.runs_started}"
            + (f", mixed between sessions: {f.runs_mixed}" if f.sessions else "")
            + (f"; all finished {f.seconds_to_all_finished:.0f} s after Train" if f.seconds_to_all_finished else "")
        )
    if f.health:
        lines.append(
            f"   server silences > {SILENCE:g} s: {len(f.silences)}, longest {max(f.silences, default=0):.1f} s"
            + "".join(f" ({n:.1f} s at {a:.1f} s after Train)" for a, n in zip(f.silence_starts, f.silences))
            + "; "
            f"health route p95 {_s(f.health, 0.95)} s, max {max(f.health):.2f} s"
        )
    if m:
        lines.append(
            f"   CPU (cores): web process {m['web_cores']:.2f}, workers {m['worker_cores']:.2f}, "
            f"this client {m['client_cores']:.2f}"
        )
        lines.append(
            f"   memory (MiB): web process {m['web_rss_start']:.0f} -> max {m['web_rss_max']:.0f} -> end "
            f"{m['web_rss_end']:.0f}; workers max {m['worker_rss_max']:.0f}; zombie workers max {m['zombies_max']}"
        )
    if f.sessions:
        lines.append(f"   server log: {f.fragment_gone_lines} lines '... {FRAGMENT_GONE}'")
    x = f.extra
    if "web_ms_per_idle_poll" in x:
        lines.append(
            f"   idle polls: {x['idle_polls']} answered ({x['idle_polls_per_s']:.1f}/s); web process "
            f"{x['web_cores_not_polling']:.3f} cores without polls, {x['web_cores_polling']:.3f} with: "
            f"{x['web_ms_per_idle_poll']:.2f} ms of CPU per idle poll"
        )
    if "manager_rss" in x:
        lines.append(
            "   job manager alone, MiB after N runs (jobs kept): "
            + ", ".join(f"{n}: {mib:.0f} ({kept})" for n, mib, kept in x["manager_rss"])
        )
    if "web_rss_by_runs" in x:
        lines.append("   web process MiB after N runs: " + ", ".join(f"{n}: {v:.0f}" for n, v in x["web_rss_by_runs"]))
        lines.append(
            f"   web process MiB once the closed tabs' sessions are gone ({SESSION_TTL:.0f} s later): "
            f"{x['web_rss_sessions_gone']:.0f}"
        )
    for note in f.notes:
        lines.append(f"   note: {note}")
    if f.errors:
        lines.append(f"   errors ({len(f.errors)}): " + "; ".join(f.errors[:3]))
    return "\n".join(lines)


def table(results: list[Figures]) -> str:
    head = (
        "| scenario | load avg (mean) | visitor load p50/p95/max s | Pause p50/p95 s | polls ≤ 1 s / sent "
        "(dropped) | runs | silences > 1 s (max) | web cores | worker cores | web MiB max |"
    )
    rows = [head, "|" + "---|" * 10]
    for f in results:
        m = f.machine
        visitor = (
            f"{_s(f.visitor_loads, 0.5)} / {_s(f.visitor_loads, 0.95)} / {max(f.visitor_loads, default=float('nan')):.2f}"
            + (f" ({f.visitor_failures} unanswered)" if f.visitor_failures else "")
        )
        rows.append(
            f"| {f.scenario} | {m.get('load_mean', float('nan')):.1f} | {visitor} | {_s(f.pauses, 0.5)} / "
            f"{_s(f.pauses, 0.95)} | {f.polls_fast:,} / {f.polls_sent:,} ({f.polls_dropped:,}) | "
            f"{f.runs_finished}/{f.runs_started} | {len(f.silences)} ({max(f.silences, default=0):.1f}) | "
            f"{m.get('web_cores', float('nan')):.2f} | {m.get('worker_cores', float('nan')):.2f} | "
            f"{m.get('web_rss_max', float('nan')):.0f} |"
        )
    return "\n".join(rows)


def run(name: str, repo: Path, epochs: int, budget: float) -> Figures:
    if m := re.fullmatch(r"train(\d+)", name):
        return class_scenario(name, repo, min(MAX_SESSIONS, int(m[1])), 0, epochs, budget)
    if m := re.fullmatch(r"(ray-)?mix(\d+)\+(\d+)", name):
        students, readers = int(m[2]), int(m[3])
        if students + readers > MAX_SESSIONS:
            raise SystemExit(f"at most {MAX_SESSIONS} sessions")
        return class_scenario(name, repo, students, readers, epochs, budget, ray=bool(m[1]))
    if m := re.fullmatch(r"idle(\d+)", name):
        return idle_scenario(name, repo, min(MAX_SESSIONS, int(m[1])), budget)
    if m := re.fullmatch(r"retain(\d+)", name):
        return retain_scenario(name, repo, min(1000, int(m[1])), budget)
    if m := re.fullmatch(r"churn(\d+)", name):
        return churn_scenario(name, repo, min(1000, int(m[1])), budget)
    raise SystemExit(f"unknown scenario {name!r}: trainN, mixT+R, ray-mixT+R, idleK, churnN or retainN")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="train20,train40,mix10+30,ray-mix10+30,idle10,churn150,retain120")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose server is measured")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds per scenario; it stops by itself")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="for the server; repeatable")
    args = parser.parse_args(argv)
    # Stopped from outside (a background run's SIGINT is ignored): leave through the `with` blocks, so the
    # server and the Ray cluster it started stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    repo = args.repo.resolve()
    if not (repo / "streamlit_app.py").is_file():
        raise SystemExit(f"{repo} has no streamlit_app.py")
    budget = max(60.0, min(args.budget, 3600.0))
    for pair in args.env:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("RNN_LAB_"):
            raise SystemExit(f"--env takes RNN_LAB_...=VALUE, not {pair!r}")
        SERVER_ENV[key] = value
    if SERVER_ENV:
        print(f"server environment: {SERVER_ENV}")
    results = []
    for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
        figures = run(name, repo, max(1, min(args.epochs, 50)), budget)
        results.append(figures)
        print(report(figures), flush=True)
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
