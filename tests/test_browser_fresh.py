"""Real-browser test: a deep link as the very first request a fresh `streamlit run` serves.

With a `pages/` folder beside the entrypoint, Streamlit 1.67 starts in its
legacy multipage mode and serves /clipping by running pages/clipping.py alone,
until some session has run `st.navigation` (see `lab_ui.session.entrypoint_ran_instead`).
`test_browser.py` shares one server whose first request is `/`, which leaves
that mode for good, so only a server of its own can show what a student who
opens a shared /clipping link first sees. Same Chromium and flags as there.
"""

from __future__ import annotations

import pytest
from test_browser import ARTIFACTS, _main, _require_browser, _shot, _wait_ready, expect
from testkit import CHROMIUM, CHROMIUM_ARGS, streamlit_server

from lab_ui.i18n import PAGE_TITLES as PAGE_KEYS
from lm_core.messages import text

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The page titles the entrypoint gives `st.navigation`; a legacy sidebar lists file names instead.
PAGE_TITLES = {text(key, "en") for key in PAGE_KEYS.values()}
# Streamlit's labels for the files in legacy mode: the entrypoint and a page named after its file.
RAW_NAMES = ("streamlit app", "clipping", "hidden states", "my runs")
# Each nav link's text without its icon (a Material Symbols ligature such as "content_cut").
NAV_LABELS_JS = """links => links.map(link => {
    const label = link.cloneNode(true);
    label.querySelectorAll('[data-testid="stIconMaterial"]').forEach(icon => icon.remove());
    return label.textContent.trim();
})"""
WAIT = 30_000  # ms: an upper bound for an element to arrive, never a pass condition by itself


def test_deep_link_as_a_fresh_servers_first_request(tmp_path) -> None:
    _require_browser()
    from playwright.sync_api import sync_playwright

    title = text(PAGE_KEYS["clipping"], "en")  # also the page's own title (pages/clipping.py runs when imported)
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "server_fresh.log"
    with log_path.open("w") as log, streamlit_server(str(tmp_path), log) as running, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.goto(f"{running.url}/clipping?lang=en")  # no request before this one ran a script
            _wait_ready(page, timeout=60_000)
            sidebar = page.get_by_test_id("stSidebar")
            nav = sidebar.get_by_test_id("stSidebarNav")
            expect(nav).to_contain_text(title, timeout=WAIT)  # a legacy sidebar says "clipping"
            expect(_main(page).locator("h1")).to_have_text(title, timeout=WAIT)
            # Elements arrive one by one after the title: wait for each thing asserted, never count at once.
            language = sidebar.get_by_test_id("stRadio").filter(has=page.get_by_text("中文", exact=True))
            expect(language, "one language radio, from session.init()").to_have_count(1, timeout=WAIT)
            links = nav.get_by_test_id("stSidebarNavLink")
            expect(links).to_have_count(len(PAGE_TITLES), timeout=WAIT)
            _wait_ready(page, timeout=WAIT)  # the run is over: nothing more will be drawn
            _shot(page, "fresh_deep_link_clipping")
            expect(page.locator("h1"), "the page is drawn once, by the entrypoint").to_have_count(1)
            labels = links.evaluate_all(NAV_LABELS_JS)
            assert set(labels) == PAGE_TITLES, labels
            assert not set(labels) & set(RAW_NAMES), labels
            expect(page.get_by_test_id("stException")).to_have_count(0)
            expect(page.get_by_role("dialog"), "no 'Page not found' dialog").to_have_count(0)
        finally:
            browser.close()
    server_log = log_path.read_text()
    assert "Traceback" not in server_log, server_log[-3000:]
