"""The websocket client (`tests/st_client.py`) against a real `streamlit run` on 127.0.0.1.

It is the tool of the flood test, the raw-websocket probes and the load
benchmark, so it is tested like one: it opens a page and reads it, trains
through the Train button to "Finished", answers a fragment's reruns, behaves
like a browser with its cookies, and stops within its bounds when the server
goes away. The last test is a raw-websocket probe: one visitor clearing the
server's caches under another visitor's run.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from st_client import Page, ServerGone, StClient
from testkit import Server, streamlit_server, wait_until

from lab_ui.web import COOKIE as IDENTITY

pytestmark = [pytest.mark.server, pytest.mark.slow]

WAIT = 120.0  # seconds: a bound for a loaded 2-core machine, never a pass condition by itself
TINY = "model=rnn&hidden=32&batch=8&steps=10&opt=adam&lr=0.01"  # the browser test's tiny run, epochs added per test
LONG = 500  # epochs of a run that must outlive the test (the most a link may ask for); the test stops it
TITLE = "Train a character-level RNN"
FOREIGN = "not available in this browser"


def _server(log_name: str) -> Iterator[Server]:
    data = tempfile.mkdtemp(prefix="lab-st-client-")  # never the repo's lab-data/
    with (Path(data) / log_name).open("w") as log, streamlit_server(data, log, ready_within=120.0) as running:
        yield running


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _server("server.log")


@pytest.fixture()
def own_server() -> Iterator[Server]:
    """A server for one test that kills it or leaves it in an odd state."""
    yield from _server("own-server.log")


def _epoch(page: Page) -> int:
    m = next((re.search(r"Epoch (\d+)/", p) for p in page.progress), None)
    return int(m.group(1)) if m else -1


def test_open_train_in_english_and_read_its_title(server: Server) -> None:
    with StClient(server.url, timeout=WAIT) as tab:
        seconds = tab.open("", "lang=en")
        page = tab.page
        assert page.title == TITLE and page.tab_title == "RNN Lyrics Lab"
        assert "Train" in page.buttons and not page.exceptions
        assert {"_streamlit_xsrf", IDENTITY} <= {c.name for c in tab.cookies}  # a fresh browser got both cookies
        assert tab.session_id and 0 < seconds < WAIT and tab.answers[-1][0] == "open"
        tab.open("sampling", "lang=en")  # another page of the same tab, by its URL path
        assert tab.page.title != TITLE and tab.page.title and not tab.page_not_found


def test_train_with_tiny_settings_reaches_finished_and_cookies_follow_the_browser(server: Server) -> None:
    with StClient(server.url, timeout=WAIT) as tab:
        tab.open("", f"lang=en&{TINY}&epochs=3")
        tab.click("Train")
        tab.wait_for(lambda p: any("Epoch 3/3" in t and "Finished" in t for t in p.progress), WAIT, "Finished")
        job = re.search(r"job=(\w+)", tab.query_string).group(1)  # the page put its run in the URL
        # The full run that shows "Finished" may still be going: wait for it to answer the news that started it.
        tab.wait_for(lambda _: any(what == "news" for what, _s in tab.answers), WAIT, "a redraw on news")
        redraws = [s for what, s in tab.answers if what == "news"]
        assert redraws and all(0 < s < WAIT for s in redraws)  # the panel's redraws on news, each timed
        assert tab.poll_stats()["answered"] >= 1  # ... which the poll route announced
        cookies = tab.cookies

    link = f"lang=en&job={job}"
    with StClient(server.url, cookies=cookies, timeout=WAIT) as same_browser:
        same_browser.open("", link)
        assert any("Finished" in t for t in same_browser.page.progress)
        assert not same_browser.page.has_text(FOREIGN)
    with StClient(server.url, timeout=WAIT) as other_browser:
        other_browser.open("", link)
        assert other_browser.page.has_text(FOREIGN) and not other_browser.page.progress
    with StClient(server.url, page_load=False, timeout=WAIT) as bare:  # no page load: no cookie at all
        bare.open("", link)
        assert not list(bare.cookies) and bare.page.has_text(FOREIGN)


def _panel_fragment(page: Page) -> str:
    """The fragment id of the live panel: its poll component's (the panel's first element)."""
    poller = next(
        (e for e in page.of("bidi_component") if e.proto.bidi_component.component_name == "rnnlab_poll"), None
    )
    return poller.fragment_id if poller is not None else ""


def test_fragment_reruns_are_answered_and_redraw_only_the_fragment(server: Server) -> None:
    """Without its polls, the page changes only when the tab itself sends the fragment's reruns."""
    with StClient(server.url, timeout=WAIT, follow_timers=False) as tab:
        tab.open("", f"lang=en&{TINY}&epochs={LONG}")
        tab.click("Train")
        fragment = tab.wait_for(_panel_fragment, WAIT, "the live panel")
        assert tab.fragments == {}  # no `run_every` timer: the panel is not rerun on a clock
        first = _epoch(tab.page)
        answers = []
        deadline = time.monotonic() + WAIT
        while _epoch(tab.page) <= max(first, 1) and time.monotonic() < deadline:
            answers.append(tab.rerun_fragment(fragment, auto=False))
        assert _epoch(tab.page) > max(first, 1), "the fragment's reruns never showed a later epoch"
        assert all(0 < s < WAIT for s in answers) and len(tab.answers) >= len(answers)
        assert tab.page.title == TITLE and "Train" in tab.page.buttons  # outside the fragment: kept as drawn
        tab.follow_timers = True  # the stop takes effect between minibatches: let the polls show it
        tab.click("Stop training")
        tab.wait_for(lambda p: any("Stopped" in t for t in p.progress), WAIT, "Stopped")


def test_a_paused_run_is_polled_through_the_route_and_never_redrawn(server: Server) -> None:
    """A poll that finds nothing new costs no script run: the route answers, the panel stays as drawn."""
    with StClient(server.url, timeout=WAIT) as tab:
        tab.open("", f"lang=en&{TINY}&epochs={LONG}")
        tab.click("Train")
        tab.wait_for(lambda p: _epoch(p) >= 1, WAIT, "a first epoch")
        tab.click("Pause")
        tab.wait_for(lambda p: any("Paused" in t for t in p.progress), WAIT, "Paused")
        tab.wait_for(lambda p: p.widget("Resume", ("button",)), WAIT, "Resume")
        for _ in range(3):  # the worker's own word that it paused may come after the click's redraw: news once
            before, page, dropped = tab.poll_stats(), tab.page, tab.dropped_fragment_runs
            asked = before["answered"]
            assert wait_until(lambda asked=asked: tab.poll_stats()["answered"] >= asked + 3, WAIT)
            after = tab.poll_stats()
            if after["redraws"] == before["redraws"] and tab.dropped_fragment_runs == dropped:
                break
        # Three questions with nothing new: no redraw, none started and cut short either.
        assert after["redraws"] == before["redraws"] and tab.dropped_fragment_runs == dropped
        assert tab.page.elements == page.elements  # ... and nothing blanked either
        tab.click("Resume")
        tab.wait_for(lambda p: _epoch(p) > _epoch(page), WAIT, "the next epoch, after Resume")
        assert tab.poll_stats()["redraws"] > after["redraws"]  # news again: redrawn
        tab.click("Stop training")
        tab.wait_for(lambda p: any("Stopped" in t for t in p.progress), WAIT, "Stopped")


def test_a_tab_without_the_identity_cookie_still_follows_its_run(server: Server) -> None:
    """The poll route refuses a browser without the lab's cookie (403); its panel is then redrawn on a timer."""
    with StClient(server.url, page_load=False, timeout=WAIT) as bare:
        bare.open("", f"lang=en&{TINY}&epochs=3")
        bare.click("Train")
        bare.wait_for(lambda p: any("Epoch 3/3" in t and "Finished" in t for t in p.progress), WAIT, "Finished")
        polls = bare.poll_stats()
        assert polls["sent"] >= 1 and polls["answered"] == 0  # every question refused, the run followed anyway


def test_it_refuses_any_host_but_127_0_0_1() -> None:
    for url in ("http://localhost:8501", "http://10.0.0.1:8501", "https://127.0.0.1:8501", "http://127.0.0.1"):
        with pytest.raises(ValueError, match="127.0.0.1"):
            StClient(url)


def test_it_stops_within_its_bounds_when_the_server_is_gone(own_server: Server) -> None:
    tab = StClient(own_server.url, timeout=WAIT)
    try:
        tab.open("", "lang=en")
        os.kill(own_server.pid, signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(ServerGone):
            tab.wait_for(lambda p: False, WAIT, "a page that never comes")
        assert time.monotonic() - start < 20.0  # the close is seen at once, not after WAIT
        with pytest.raises(ServerGone):
            tab.rerun()
        assert wait_until(lambda: not tab._reader.is_alive(), 10.0)
    finally:
        tab.close()
    start = time.monotonic()
    with pytest.raises(ServerGone):  # nothing listens any more: refused within the connect bound
        StClient(own_server.url, timeout=10.0).open("", "lang=en")
    assert time.monotonic() - start < 15.0


def test_it_closes_itself_when_its_lifetime_is_over(server: Server) -> None:
    start = time.monotonic()
    tab = StClient(server.url, timeout=WAIT, lifetime=15.0)
    with pytest.raises(ServerGone, match="lifetime"):
        tab.open("", "lang=en")  # on a slow machine the lifetime may end during the page load: same proof
        tab.wait_for(lambda p: False, WAIT, "a page that never comes")
    assert time.monotonic() - start < 15.0 + 10.0
    assert wait_until(lambda: not tab._reader.is_alive(), 10.0)
    tab.close()


def test_an_anonymous_clear_cache_leaves_another_visitors_run_listed_and_controllable(own_server: Server) -> None:
    """A bare websocket (no page load, no cookie) sends what the menu's "Clear cache" sends.

    Streamlit would clear `st.cache_resource` for the whole server, the job manager with it; the lab's server
    refuses the message (lab_ui/web.py), so the other visitor's run is still theirs to see and stop.
    """
    with StClient(own_server.url, timeout=WAIT) as owner:
        owner.open("", f"lang=en&{TINY}&epochs={LONG}")
        owner.click("Train")
        owner.wait_for(lambda p: _epoch(p) >= 1, WAIT, "a running epoch")
        with StClient(own_server.url, page_load=False, timeout=WAIT) as stranger:
            stranger.open("", "lang=en")
            stranger.clear_cache()
            stranger.rerun()  # its messages are handled in order: once this is answered, the cache was cleared
        owner.rerun()  # the owner's next page run, as any click of theirs would start
        page = owner.page
        assert _epoch(page) >= 1 and "Stop training" in page.buttons, page.texts[-3:]
        owner.click("Stop training", timeout=30.0)
        owner.wait_for(lambda p: any("Stopped" in t for t in p.progress), 30.0, "Stopped")
