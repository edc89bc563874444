"""Bounded load test: N headless browser sessions arrive, two loading at a time, then all start a short run at once.

    python tests/load_test.py [--n 20] [--epochs 3] [--budget 600]

Talks only to 127.0.0.1 (a `streamlit run` it starts on a free port, with a
temporary RNN_LAB_DATA), stops by itself after `--budget` seconds at most,
and prints: runs finished / lost / mixed between sessions, the queue positions
the pages showed, p95 page-load time of fresh loads while the load runs, how
long Pause and Resume took to show on the page, and server + worker memory.
A script, not a pytest test (its figures are measurements, not pass/fail).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from testkit import CHROMIUM, CHROMIUM_ARGS, streamlit_server

MAX_SESSIONS = 60  # a hard cap whatever --n says
RUN_URL = "/?lang=en&model=rnn&hidden=32&batch=8&steps=10&epochs={epochs}&opt=adam&lr=0.01"
READY_JS = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far: the whole machine, the server, and its worker processes (live or ended).

    The browsers run on the same cores as the server here (in a class they are the students' own
    machines), so the report says who used the CPU during the load: "others" is mostly Chromium.
    """
    tick = os.sysconf("SC_CLK_TCK")

    def own_and_reaped(pid: int) -> tuple[float, float]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0, 0.0
        return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick

    server, reaped = own_and_reaped(server_pid)
    workers = reaped + sum(sum(own_and_reaped(kid)) for kid in _children(server_pid))
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = (sum(int(v) for v in cpu) - int(cpu[3]) - int(cpu[4])) / tick  # all but idle and iowait
    return {"machine": busy, "server": server, "workers": workers}


def _p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def _load_once(browser, base: str, context=None) -> float:
    """Seconds to a usable Train page: in a new browser context (cold cache) or in `context` (cached assets)."""
    own = context is None
    context = context or await browser.new_context()
    page = await context.new_page()
    t0 = time.monotonic()
    try:
        await page.goto(f"{base}/?lang=en", timeout=60_000)
        await (
            page.get_by_test_id("stMainBlockContainer")
            .get_by_role("button", name="Train", exact=True)
            .wait_for(timeout=60_000)
        )
        return time.monotonic() - t0
    except Exception:  # noqa: BLE001 -- a load that does not finish counts as the time budget
        return 60.0
    finally:
        await (context.close() if own else page.close())


async def _session(
    browser, base: str, epochs: int, arrive: asyncio.Semaphore, start: asyncio.Event, out: dict, deadline: float
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 1400})
    page = await context.new_page()
    main = page.get_by_test_id("stMainBlockContainer")
    statuses: set[str] = set()
    try:
        async with arrive:  # a class arrives over a minute or two; then everyone presses Train together
            await page.goto(base + RUN_URL.format(epochs=epochs), timeout=120_000)
            await main.get_by_role("button", name="Train", exact=True).wait_for(timeout=120_000)
            await page.wait_for_function(READY_JS, timeout=120_000)
        out["loaded"] = True
        await start.wait()
        await main.get_by_role("button", name="Train", exact=True).click()
        paused = False
        while time.monotonic() < deadline:
            text = await page.inner_text("body")
            for m in re.finditer(r"Queued[^\n·]*", text):
                statuses.add(m.group(0).strip())
            if re.search(rf"Epoch {epochs}/{epochs}", text) and "Finished" in text:
                out["finished"] = True
                break
            if not paused and re.search(r"Epoch [1-9]\d*/", text) and "Training" in text:
                paused = True
                t0 = time.monotonic()
                await main.get_by_role("button", name="Pause", exact=True).first.click(timeout=30_000)
                await main.get_by_role("button", name="Resume", exact=True).first.wait_for(timeout=30_000)
                out["pause_s"] = time.monotonic() - t0
                t0 = time.monotonic()
                await main.get_by_role("button", name="Resume", exact=True).first.click(timeout=30_000)
                await main.get_by_role("button", name="Pause", exact=True).first.wait_for(timeout=30_000)
                out["resume_s"] = time.monotonic() - t0
            await asyncio.sleep(0.5)
        m = re.search(r"job=([0-9a-f]+)", page.url)
        out["job"] = m.group(1) if m else None
    except Exception as exc:  # noqa: BLE001 -- a session that breaks is reported as lost
        out["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"
    finally:
        out["queued_texts"] = sorted(statuses)
        await context.close()


async def _drive(base: str, n: int, epochs: int, budget: float, server_pid: int) -> dict:
    from playwright.async_api import async_playwright

    deadline = time.monotonic() + budget
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        results = [{} for _ in range(n)]
        start, arrive = asyncio.Event(), asyncio.Semaphore(2)
        tasks = [
            asyncio.create_task(_session(browser, base, epochs, arrive, start, results[i], deadline)) for i in range(n)
        ]
        cached = await browser.new_context()  # a browser that has opened the lab before: its assets are cached
        await _load_once(browser, base, cached)
        arrival_deadline = time.monotonic() + budget / 3
        while time.monotonic() < arrival_deadline and not all(
            r.get("loaded") or t.done() for r, t in zip(results, tasks)
        ):
            await asyncio.sleep(0.5)
        start.set()  # the simultaneous click
        cpu_from, load_from = _cpu_seconds(server_pid), time.monotonic()
        loads, cached_loads, peak = [], [], {"server": 0.0, "workers": 0.0}
        while not all(t.done() for t in tasks) and time.monotonic() < deadline:
            loads.append(await _load_once(browser, base))
            cached_loads.append(await _load_once(browser, base, cached))
            kids = _children(server_pid)
            peak["server"] = max(peak["server"], _rss_mib(server_pid))
            peak["workers"] = max(peak["workers"], sum(_rss_mib(k) for k in kids))
            await asyncio.sleep(1.0)
        cpu_to, load_seconds = _cpu_seconds(server_pid), time.monotonic() - load_from
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await cached.close()
        await browser.close()
    cpu = {k: (cpu_to[k] - cpu_from[k]) / max(load_seconds, 1e-9) for k in cpu_to}
    cpu["others"] = max(0.0, cpu["machine"] - cpu["server"] - cpu["workers"])
    return {"results": results, "loads": loads, "cached_loads": cached_loads, "peak": peak, "cpu": cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds; the test stops by itself after this")
    args = parser.parse_args()
    n = max(1, min(args.n, MAX_SESSIONS))
    budget = max(30.0, min(args.budget, 1800.0))
    data = tempfile.mkdtemp(prefix="lab-load-")
    with open(Path(data) / "server.log", "w") as log, streamlit_server(data, log, ready_within=120.0) as server:
        t0 = time.monotonic()
        report = asyncio.run(_drive(server.url, n, args.epochs, budget, server.pid))
        wall = time.monotonic() - t0
    results = report["results"]
    jobs = [r.get("job") for r in results if r.get("job")]
    finished = sum(1 for r in results if r.get("finished"))
    mixed = len(jobs) - len(set(jobs))
    owners = {}
    try:
        conn = sqlite3.connect(Path(data) / "runs.sqlite")
        owners = dict(conn.execute("SELECT job_id, owner FROM runs"))
        conn.close()
    except sqlite3.Error:
        pass
    mixed += len(jobs) - len({owners.get(j) for j in jobs if j in owners}) if len(owners) >= len(set(jobs)) else 0
    pauses = [r["pause_s"] for r in results if "pause_s" in r]
    resumes = [r["resume_s"] for r in results if "resume_s" in r]
    queued = sorted({q for r in results for q in r.get("queued_texts", [])})
    print(f"sessions: {n}, epochs per run: {args.epochs}, cores: {os.cpu_count()}, wall: {wall:.0f} s")
    print(f"runs finished: {finished}, lost: {n - finished}, mixed between sessions: {mixed}")
    print(f"queue texts shown: {queued[:6]}{' ...' if len(queued) > 6 else ''}")
    for name, key in (("cold cache (a new browser)", "loads"), ("cached assets (a reload)", "cached_loads")):
        loads = report[key]
        if loads:
            print(
                f"page loads during the load, {name}: {len(loads)}, median {statistics.median(loads):.2f} s, "
                f"p95 {_p95(loads):.2f} s"
            )
    if pauses:
        print(f"Pause shown after: median {statistics.median(pauses):.2f} s, max {max(pauses):.2f} s (n={len(pauses)})")
    if resumes:
        print(f"Resume shown after: median {statistics.median(resumes):.2f} s, max {max(resumes):.2f} s")
    cpu = report["cpu"]
    print(
        "CPU during the load, in cores: "
        + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        + f" (of {os.cpu_count()}; others are mostly the {n} headless browsers, which in a class run on the "
        "students' own machines)"
    )
    print(
        f"peak memory: server {report['peak']['server']:.0f} MiB, workers together {report['peak']['workers']:.0f} MiB"
    )
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        print(f"session errors ({len(errors)}): {errors[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
