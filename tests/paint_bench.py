"""Benchmark: how soon a student sees something, in a real browser (Chromium via Playwright) on a fresh server.

    python tests/paint_bench.py [--repo PATH] [--visits 3] [--trains 3] [--only paint,heavy,train,fresh]

Starts its own `streamlit run` of `--repo` (default: this checkout; give another checkout, e.g. main's, to
compare) with a temporary RNN_LAB_DATA and prints, in seconds after the browser asked for the page
(`performance.now()`, the page's own clock):

- first paint of `/`: the server's very first visit, then `--visits` visits of new browsers to the warm server:
  when the title (h1) showed, when the navigation listed every page by its title, and whether a navigation of
  file names ("streamlit app", "hidden states") was ever on screen;
- the heavy pages, each opened for the first time on this server, then again by a new browser: when the title,
  the first slider and the first figure showed, and when the script run ended; then a slider move: key press
  to the run's end;
- `--only fresh`: each heavy page as the very first visit of its own fresh server, right after the server
  started and `--delays` seconds later (warm-up threads running meanwhile): when title, slider, the first
  coloured text (Gradients' section 1) and the first figure showed;
- the quick demo preset's first point: Train pressed to "Epoch 1/20" on the progress bar (`--trains` times).

Numbers, not assertions: the machine's load (printed) decides them. Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit import CHROMIUM, CHROMIUM_ARGS, REPO, streamlit_server

ARTIFACTS = REPO / "tests" / "artifacts"

from lab_ui.i18n import PAGE_TITLES
from lm_core.messages import text

TITLES = [text(key, "en") for key in PAGE_TITLES.values()]
RAW_NAMES = [
    "streamlit app",
    "hidden states",
    "clipping",
    "generalise",
    "my runs",
]  # "My runs" is also a title: case counts
WAIT = 120_000  # ms: an upper bound, never a figure

# Installed before the page's own scripts: every 20 ms it notes the first time each thing is on screen.
RECORDER_JS = """
(() => {
  const titles = %s, raw = %s;
  const marks = window.__marks = {};
  const note = (name, yes) => { if (yes && !(name in marks)) marks[name] = performance.now(); };
  const labels = () => Array.from(document.querySelectorAll(
      '[data-testid="stSidebar"] [data-testid="stSidebarNavLink"], [data-testid="stSidebar"] [data-testid="stPageLink"] a'))
    .map(a => { const c = a.cloneNode(true);
                c.querySelectorAll('[data-testid="stIconMaterial"]').forEach(i => i.remove());
                return c.textContent.trim(); });
  const tick = () => {
    const main = document.querySelector('[data-testid="stMainBlockContainer"]');
    const h1 = main && main.querySelector('h1');
    note('title', h1 && h1.textContent.trim().length > 0);
    const shown = labels();
    note("nav", titles.every(t => shown.includes(t)));
    marks.__labels = shown;
    note('raw_nav', shown.some(l => raw.includes(l)));
    note('slider', main && main.querySelector('[data-testid="stSlider"]'));
    note('figure', main && main.querySelector('.js-plotly-plot'));
    note('influence', main && main.querySelector('[data-testid="stHtml"] span[title]'));
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.dataset.testScriptState;
    if (state === 'running') marks.__ran = true;
    if (marks.__ran && state === 'notRunning') { marks.__ran = false; marks.done = performance.now(); }
  };
  setInterval(tick, 20);
})();
"""


# Watches one slider move: from the click to the end of the run it started (the state flips to running, back).
MOVE_WATCH_JS = """() => {
  const move = window.__move = {start: performance.now()};
  const app = () => document.querySelector('[data-testid="stApp"]').dataset.testScriptState;
  const timer = setInterval(() => {
    if (app() === 'running') move.ran = true;
    else if (move.ran) { move.end = performance.now(); clearInterval(timer); }
  }, 5);
}"""


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def _visit(browser, url: str, wait_for: str = "done", shot: str = "") -> dict[str, float]:
    """Open `url` in a new browser context; the first-seen times (s) once `wait_for` was seen."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.add_init_script(RECORDER_JS % (json.dumps(TITLES), json.dumps(RAW_NAMES)))
    page.goto(url)
    page.wait_for_function(f"() => window.__marks && '{wait_for}' in window.__marks", timeout=WAIT)
    # the last run's end: no run for a second (a new browser's first run is followed by another, its cookie set)
    page.wait_for_function(
        "() => 'done' in window.__marks && !window.__marks.__ran && performance.now() - window.__marks.done > 1000",
        timeout=WAIT,
    )
    try:  # the menu may still be grey placeholders after the run (its code loading): its time counts too
        page.wait_for_function("() => 'nav' in window.__marks", timeout=WAIT)
    except PlaywrightTimeout:
        pass
    marks = page.evaluate("() => window.__marks")
    if "nav" not in marks:
        print("    (no full menu; last labels:", marks.get("__labels"), ")")
        page.screenshot(path=str(ARTIFACTS / "bench_no_menu.png"))
    if shot:
        page.screenshot(path=shot, full_page=True)
    context.close()
    return {k: v / 1000 for k, v in marks.items() if not k.startswith("__")}


def _fmt(marks: dict[str, float], names: tuple[str, ...]) -> str:
    return "  ".join(f"{n} {marks[n]:5.2f}" if n in marks else f"{n}   —  " for n in names)


def first_paint(browser, base: str, visits: int) -> None:
    names = ("title", "nav", "done")
    first = _visit(browser, f"{base}/?lang=en")
    print(f"  fresh server, first visit:  {_fmt(first, names)}  file-name nav seen: {'raw_nav' in first}")
    warm = [_visit(browser, f"{base}/?lang=en") for _ in range(visits)]
    for name in names:
        got = [m[name] for m in warm if name in m]
        if got:
            print(
                f"  warm server, {name:5s}: median {statistics.median(got):5.2f}  ({', '.join(f'{g:.2f}' for g in got)})"
            )
    print(f"  warm server, file-name nav seen in {sum('raw_nav' in m for m in warm)} of {len(warm)} visits")


def heavy_page(browser, base: str, path: str) -> None:
    names = ("title", "slider", "figure", "done")
    for when in ("first open", "new browser"):
        marks = _visit(browser, f"{base}/{path}?lang=en", "figure", str(ARTIFACTS / f"bench_{path}.png"))
        print(f"  {path:14s} {when:11s}: {_fmt(marks, names)}")
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.goto(f"{base}/{path}?lang=en")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'"
        " && document.querySelector('[data-testid=\"stMainBlockContainer\"] .js-plotly-plot')",
        timeout=WAIT,
    )
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / f"bench_{path}_slider.png"), full_page=True)
    moves = []
    for fraction in (0.3, 0.7, 0.5):
        page.evaluate(MOVE_WATCH_JS)
        box = page.get_by_test_id("stMainBlockContainer").get_by_test_id("stSlider").first.bounding_box()
        page.mouse.click(box["x"] + fraction * box["width"], box["y"] + box["height"] - 12)
        page.wait_for_function("() => window.__move.end !== undefined", timeout=WAIT, polling=10)
        moves.append(page.evaluate("() => (window.__move.end - window.__move.start) / 1000"))
        page.wait_for_timeout(500)
    context.close()
    print(f"  {path:14s} slider move → run ended: {', '.join(f'{m:.2f}' for m in moves)} s")


def fresh_server_page(browser, repo: Path, path: str, delay: float) -> None:
    """`path` as the first page a fresh server serves, `delay` s after it answered its health check (its
    warm-up threads run meanwhile, as when a teacher starts the server before class; 0: a student who is there
    first). Each measurement starts its own server."""
    names = ("title", "slider", "influence", "figure", "done")
    with (
        tempfile.TemporaryDirectory() as data,
        open(Path(data) / "server.log", "w") as log,
        streamlit_server(data, log, repo=repo) as server,
    ):
        time.sleep(delay)
        marks = _visit(browser, f"{server.url}/{path}?lang=en", "figure", str(ARTIFACTS / f"bench_fresh_{path}.png"))
    print(f"  {path:14s} visited {delay:4.1f} s after start: {_fmt(marks, names)}")


def quick_demo_first_point(browser, base: str, trains: int) -> None:
    from lab_ui.presets import PRESETS
    from lab_ui.settings import FIELDS, URL_KEYS

    values = {k: v for k, v in PRESETS["quick_demo"].items() if k in FIELDS}
    query = {URL_KEYS.get(k, k): FIELDS[k].dump(v) for k, v in values.items()} | {"lang": "en"}
    url = f"{base}/?{urllib.parse.urlencode(query)}"
    got, shown = [], []
    for _ in range(trains):
        context = browser.new_context(viewport={"width": 1400, "height": 1600})
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'"
            " && document.querySelector('[data-testid=\"stMainBlockContainer\"] h1')",
            timeout=WAIT,
        )
        button = page.locator('[data-testid="stMainBlockContainer"]').get_by_role("button", name="Train", exact=True)
        button.wait_for(timeout=WAIT)
        t0 = time.monotonic()
        button.click()
        page.wait_for_function(
            "() => /Epoch \\d+\\/20/.test(document.querySelector('[data-testid=\"stProgress\"]')?.innerText || '')",
            timeout=WAIT,
            polling=10,
        )
        shown.append(time.monotonic() - t0)
        page.wait_for_function(
            "() => /Epoch [1-9]\\d*\\/20/.test(document.querySelector('[data-testid=\"stProgress\"]')?.innerText || '')",
            timeout=WAIT,
            polling=10,
        )
        got.append(time.monotonic() - t0)
        page.wait_for_function(  # the run ends and its worker goes back to the pool, as between two students
            "() => /Epoch 20\\/20/.test(document.querySelector('[data-testid=\"stProgress\"]')?.innerText || '')",
            timeout=WAIT,
        )
        context.close()
        time.sleep(2)
    print(f"  Train → progress bar (epoch 0): {', '.join(f'{g:.2f}' for g in shown)} s")
    print(f"  Train → first point: {', '.join(f'{g:.2f}' for g in got)} s (median {statistics.median(got):.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(REPO))
    parser.add_argument("--visits", type=int, default=3)
    parser.add_argument("--trains", type=int, default=3)
    parser.add_argument("--only", default="paint,heavy,train")
    parser.add_argument("--delays", default="0,10", help="fresh: seconds between the server's start and the visit")
    parser.add_argument("--rounds", type=int, default=1, help="fresh: how many servers per page and delay")
    parser.add_argument("--pages", default="hidden_states,gradients", help="heavy, fresh: which pages")
    args = parser.parse_args()
    only = set(args.only.split(","))
    from playwright.sync_api import sync_playwright

    print(f"repo {args.repo}; load average {os.getloadavg()[0]:.2f}")
    if "fresh" in only:
        print("heavy pages as a fresh server's first visit (s after the request):")
        with sync_playwright() as p:
            browser = _browser(p)
            for _ in range(args.rounds):
                for delay in (float(d) for d in args.delays.split(",")):
                    for path in args.pages.split(","):
                        fresh_server_page(browser, Path(args.repo), path, delay)
            browser.close()
        only.discard("fresh")
        if not only:
            return 0
    with (
        tempfile.TemporaryDirectory() as data,
        open(Path(data) / "server.log", "w") as log,
        streamlit_server(data, log, repo=Path(args.repo)) as server,
        sync_playwright() as p,
    ):
        browser = _browser(p)
        if "paint" in only:
            print("first paint of / (s after the request):")
            first_paint(browser, server.url, args.visits)
        if "heavy" in only:
            print("heavy pages (s after the request):")
            for path in args.pages.split(","):
                heavy_page(browser, server.url, path)
        if "train" in only:
            print("quick demo:")
            quick_demo_first_point(browser, server.url, args.trains)
        browser.close()
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
