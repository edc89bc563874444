"""Real-browser test: a deep link as the very first request a fresh `streamlit run` serves.

With a `pages/` folder beside the entrypoint, Streamlit 1.67 would start in its
legacy multipage mode (a menu of file names, /clipping served by running
pages/clipping.py alone) until some session has run `st.navigation`; the app
leaves that mode before its first session (`streamlit_app._leave_legacy_pages_mode`,
and `lab_ui.session.entrypoint_ran_instead` as a second line).
`test_browser.py` shares one server whose first request is `/`, so only a
server of its own can show what a student who opens a shared /clipping link
first sees. Same Chromium and flags as there.
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
# Installed before the page's own scripts: notes every sidebar link label ever on screen (Streamlit's own menu
# or the lab's), every 20 ms from the first paint on, so a menu shown for a moment is caught too.
SEEN_LABELS_JS = """(() => {
    const seen = window.__seenLabels = new Set();
    setInterval(() => document.querySelectorAll(
        '[data-testid="stSidebar"] [data-testid="stSidebarNavLink"], [data-testid="stSidebar"] [data-testid="stPageLink"] a'
    ).forEach(link => {
        const label = link.cloneNode(true);
        label.querySelectorAll('[data-testid="stIconMaterial"]').forEach(icon => icon.remove());
        seen.add(label.textContent.trim());
    }), 20);
})();"""


def test_a_fresh_servers_first_visit_never_shows_file_names(tmp_path) -> None:
    """The very first request of a fresh server is `/`: from the first paint on, the sidebar lists the pages by
    their titles, never by file name ("streamlit app", "hidden states": Streamlit's legacy pages/ menu)."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    title = text("train.title", "en")  # the Train page's heading
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "server_fresh_root.log"
    with log_path.open("w") as log, streamlit_server(str(tmp_path), log) as running, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.add_init_script(SEEN_LABELS_JS)
            page.goto(f"{running.url}/?lang=en")
            expect(_main(page).locator("h1")).to_have_text(title, timeout=WAIT)
            # the menu is Streamlit's navigation (st.navigation), drawn without a lazily loaded element
            links = page.get_by_test_id("stSidebar").get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink")
            expect(links).to_have_count(len(PAGE_TITLES), timeout=WAIT)
            _wait_ready(page, timeout=WAIT)
            _shot(page, "fresh_root_menu")
            assert set(links.evaluate_all(NAV_LABELS_JS)) == PAGE_TITLES
            seen = set(page.evaluate("() => Array.from(window.__seenLabels)"))
            assert seen <= PAGE_TITLES, f"labels other than page titles were on screen: {seen - PAGE_TITLES}"
        finally:
            browser.close()
    assert "Traceback" not in log_path.read_text()


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
