"""A flood of fresh browsers against a real `streamlit run` on 127.0.0.1: the server's job cap holds.

Each session is a new browser (an empty cookie jar, so a new owner: the per-browser cap never applies), pastes
a text of its own and presses Train. The first `CAP` get a run (and pause it, so it holds its place without
taking a core); every later one is told the lab is full, in its own language, instead of queueing without end;
the server never holds more than `CAP` live jobs, and a page load still answers. Bounded: a few sessions of a
few megabytes each. `python tests/flood_bench.py` is the full-size version, with memory and timing figures.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from st_client import Page, StClient
from testkit import Server, flood_text, streamlit_server

from lm_core.serve.store import DB_NAME
from lm_core.serve.views import LIVE_STATUSES

pytestmark = [pytest.mark.server, pytest.mark.slow]

WAIT = 120.0  # seconds: a bound for a loaded 2-core machine, never a pass condition by itself
CAP = 3
SESSIONS = 5
TEXT_MB = 0.5  # every poll of a tab sends its pasted text again (as a browser does): kept small here
TINY = "model=rnn&hidden=32&batch=8&steps=10&opt=adam&lr=0.01&epochs=500"
FULL = {"en": "The lab is full", "zh": "实验室已满"}
TITLE = "Train a character-level RNN"


@pytest.fixture(scope="module")
def flooded() -> Iterator[tuple[Server, Path]]:
    data = Path(tempfile.mkdtemp(prefix="lab-flood-"))  # never the repo's lab-data/
    env = {"RNN_LAB_MAX_JOBS": str(CAP), "RNN_LAB_WORKERS": "1"}
    with (data / "server.log").open("w") as log, streamlit_server(str(data), log, 120.0, env=env) as running:
        yield running, data


def _outcome(page: Page) -> str | None:
    if any(page.has_text(text) for text in FULL.values()):
        return "full"
    if "Pause" in page.buttons or "暂停" in page.buttons:
        return "run"
    return None


def _live_jobs(data: Path) -> int:
    """Jobs the server's run store holds as queued, training or paused (read-only, beside the server)."""
    marks = ",".join("?" * len(LIVE_STATUSES))
    with sqlite3.connect(f"file:{data / DB_NAME}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute(f"SELECT COUNT(DISTINCT job_id) FROM runs WHERE status IN ({marks})", LIVE_STATUSES)
        return rows.fetchone()[0]


def test_fresh_browsers_beyond_the_cap_are_told_the_lab_is_full_and_pages_still_load(
    flooded: tuple[Server, Path],
) -> None:
    server, data = flooded
    tabs: list[StClient] = []
    outcomes: list[str] = []
    try:
        for i in range(SESSIONS):
            lang = "zh" if i == SESSIONS - 1 else "en"
            tab = StClient(server.url, timeout=WAIT, lifetime=600.0, keepalive=WAIT)  # a new browser: a new owner
            tabs.append(tab)
            tab.open("", f"lang={lang}&corpus=paste&{TINY}")
            tab.set_value("在此粘贴文本" if lang == "zh" else "Paste text here", flood_text(i, TEXT_MB))
            tab.click("开始训练" if lang == "zh" else "Train")
            outcome = tab.wait_for(_outcome, WAIT, "a run or the lab-is-full message")
            outcomes.append(outcome)
            if outcome == "run":  # the run keeps its place without taking the core
                tab.click("暂停" if lang == "zh" else "Pause")
            else:
                assert tab.page.has_text(FULL[lang]), tab.page.texts[-3:]
                assert not tab.page.exceptions
            assert _live_jobs(data) <= CAP
        assert outcomes == ["run"] * CAP + ["full"] * (SESSIONS - CAP)
        assert _live_jobs(data) == CAP
        with StClient(server.url, timeout=WAIT) as visitor:  # someone opens the lab meanwhile
            visitor.open("", "lang=en")
            assert visitor.wait_for(lambda p: p.title == TITLE, WAIT, "the Train page")
    finally:
        for tab in tabs:
            tab.close()
