"""Real-browser test: `streamlit run` on 127.0.0.1 driven by Debian's Chromium via Playwright.

Skipped on a developer machine without Chromium; in CI (env CI set) a missing
browser is a failure, not a skip. No browser is ever downloaded.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import CHROMIUM, CHROMIUM_ARGS, streamlit_server

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT = 30_000  # ms: an upper bound for an element to arrive, never a pass condition by itself


def _require_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("chromium (apt-get install chromium fonts-wqy-microhei)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test, but these are missing: " + ", ".join(missing))
        pytest.skip("no browser here: " + ", ".join(missing))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    data = tempfile.mkdtemp(prefix="lab-browser-")  # never the repo's lab-data/
    with (ARTIFACTS / "server.log").open("w") as log, streamlit_server(data, log) as running:
        yield running.url


@pytest.fixture(scope="module")
def browser(server: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 2000})
    pg = context.new_page()
    yield pg
    context.close()


def expect(*args, **kwargs):
    """Playwright's `expect` (it waits for what it asserts), imported on use: without Playwright these tests skip."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


def _main(pg):
    return pg.get_by_test_id("stMainBlockContainer")


# The app root says where the script run is ("initial" before the first run, then "running" / "notRunning"), and
# the header shows a status widget while a run is slow; both are waited for, so "ready" means a finished run.
READY_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.dataset.testScriptState === 'notRunning'
        && !document.querySelector('[data-testid="stStatusWidget"]');
}"""


def _wait_ready(pg, timeout: float = 30_000) -> None:
    """Until the main block is drawn and a script run has finished (not merely: none shown running yet)."""
    _main(pg).wait_for(timeout=timeout)
    pg.wait_for_function(READY_JS, timeout=timeout)


def _click_button(pg, name: str, attempts: int = 5) -> None:
    """Click the main area's one button called `name`, once the page shows exactly one.

    While a live panel's fragment run is cut short by the next poll's, the panel can show an old copy of its
    buttons beside the new ones for a moment (Streamlit clears stale elements only when a run completes), so a
    click may meet two: wait until the copy is gone, and try again if another poll brought one back meanwhile.
    """
    from playwright.sync_api import Error

    button = _main(pg).get_by_role("button", name=name, exact=True)
    for attempt in range(attempts):
        expect(button).to_have_count(1, timeout=WAIT)
        try:
            button.click(timeout=5_000)
            return
        except Error as exc:
            if "strict mode violation" not in str(exc) or attempt == attempts - 1:
                raise


def _progress_text(pg) -> str:
    return _main(pg).get_by_test_id("stProgress").inner_text(timeout=10_000)


def _epoch_done(pg) -> int:
    m = re.search(r"Epoch (\d+)/(\d+)", _progress_text(pg))
    return int(m.group(1)) if m else -1


def _chart_points(pg) -> list[list[int]]:
    """Number of x values of every trace of every Plotly chart on the page."""
    return pg.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(d => (d.data || []).map(t => (t.x || []).length))"
    )


def _shot(pg, name: str) -> None:
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("path", ["", "sampling", "hidden_states", "clipping", "generate"])
def test_every_page_opens_without_error(page, server: str, path: str) -> None:
    page.goto(f"{server}/{path}?lang=en")
    _wait_ready(page)
    expect(_main(page).get_by_role("heading").first).not_to_be_empty(timeout=WAIT)
    expect(page.get_by_test_id("stException"), f"/{path} shows an exception").to_have_count(0)
    expect(page.get_by_role("dialog"), f"/{path} opens a dialog (e.g. 'Page not found')").to_have_count(0)
    _shot(page, f"page_{path or 'train'}")


def test_train_three_epochs_draws_three_points(page, server: str) -> None:
    page.goto(f"{server}/?lang=en&model=rnn&hidden=32&batch=8&steps=10&epochs=3&opt=adam&lr=0.01")
    _wait_ready(page)
    _click_button(page, "Train")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-testid=\"stProgress\"]'))"
        ".some(e => /Epoch 3\\/3/.test(e.innerText) && /Finished/.test(e.innerText))",
        timeout=60_000,
    )
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".some(d => (d.data || []).some(t => (t.x || []).length === 3))",
        timeout=20_000,
    )
    assert [3] in _chart_points(page) or any(3 in c for c in _chart_points(page))
    assert "job=" in page.url, "the job id must be in the URL so a reload re-attaches"
    _shot(page, "train_3_epochs")
    # A reload (a new websocket session, same browser) finds the same finished run.
    page.reload()
    _wait_ready(page)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-testid=\"stProgress\"]'))"
        ".some(e => /Epoch 3\\/3/.test(e.innerText))",
        timeout=30_000,
    )


def test_the_panel_asks_the_poll_route_and_follows_the_run_without_it(page, server: str) -> None:
    """The live panel's component asks the lab's route (no timer reruns the page); refused, it redraws on a
    timer instead, so the run is still followed to its end."""
    asked: list[int] = []

    def refuse(route) -> None:
        asked.append(1)
        route.fulfill(status=403, content_type="application/json", body='{"error": "no identity"}')

    page.route("**/_lab/poll?*", refuse)
    page.goto(f"{server}/?lang=en&model=rnn&hidden=32&batch=8&steps=10&epochs=3&opt=adam&lr=0.01")
    _wait_ready(page)
    _click_button(page, "Train")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('[data-testid=\"stProgress\"]'))"
        ".some(e => /Epoch 3\\/3/.test(e.innerText) && /Finished/.test(e.innerText))",
        timeout=90_000,
    )
    assert asked, "the panel never asked the poll route"


def test_pause_resume_and_stop_respond(page, server: str) -> None:
    page.goto(f"{server}/?lang=en&model=scratch-rnn&hidden=64&batch=8&steps=10&epochs=500")
    _wait_ready(page)
    _click_button(page, "Train")
    page.wait_for_function("() => /Epoch [1-9]\\d*\\/500/.test(document.body.innerText)", timeout=60_000)
    _click_button(page, "Pause")
    _main(page).get_by_role("button", name="Resume", exact=True).wait_for(timeout=10_000)
    page.wait_for_function("() => /Paused/.test(document.body.innerText)", timeout=10_000)
    paused_at = _epoch_done(page)
    # While paused nothing advances: poll the page a few times over several seconds.
    for _ in range(4):
        page.wait_for_timeout(1000)
        assert _epoch_done(page) <= paused_at + 1  # the epoch running when Pause was pressed may finish
    settled = _epoch_done(page)
    _click_button(page, "Resume")
    page.wait_for_function(
        f"() => {{ const m = document.body.innerText.match(/Epoch (\\d+)\\/500/); return m && +m[1] > {settled}; }}",
        timeout=60_000,
    )
    _click_button(page, "Stop training")
    page.wait_for_function("() => /Stopped/.test(document.body.innerText)", timeout=15_000)
    _shot(page, "train_stopped")


def test_generate_writes_from_fen_kai(page, server: str) -> None:
    page.goto(f"{server}/generate?lang=en")
    _wait_ready(page)
    main = _main(page)
    main.get_by_text("The lyrics").wait_for(timeout=30_000)  # written on first view, before any click
    main.get_by_role("button", name="Generate", exact=True).click()
    lyrics = main.get_by_test_id("stHtml").first
    expect(lyrics).to_have_text(re.compile(r"^分开.{19,}", re.DOTALL), timeout=WAIT)
    _wait_ready(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    _shot(page, "generate_fen_kai")


def test_language_switch_relabels_the_page(page, server: str) -> None:
    page.goto(f"{server}/?lang=en")
    _wait_ready(page)
    _main(page).get_by_role("button", name="Train", exact=True).wait_for(timeout=30_000)
    page.get_by_test_id("stSidebar").get_by_text("中文", exact=True).click()
    _main(page).get_by_role("button", name="开始训练", exact=True).wait_for(timeout=20_000)
    expect(page).to_have_url(re.compile(r"lang=zh"), timeout=WAIT)
    _wait_ready(page)
    # Every choice stays visible under the new labels: the browser matches a choice by its label, so
    # without the switch pushing values again a selectbox kept its English label and a radio lost its dot.
    # The values arrive after the labels: wait until the corpus source reads in Chinese, then check them all.
    shown_js = "() => Array.from(document.querySelectorAll('[data-testid=stSelectbox] input')).map(i => i.value)"
    page.wait_for_function(f"() => ({shown_js})().includes('宋词（内置）')", timeout=WAIT)
    shown = page.evaluate(shown_js)
    assert not any("Song ci" in s or "Book" in s for s in shown), shown
    radios = _main(page).get_by_test_id("stRadio")
    expect(radios.first).to_be_visible(timeout=WAIT)
    for i in range(radios.count()):
        expect(radios.nth(i).locator("input:checked"), radios.nth(i).inner_text()).to_have_count(1, timeout=WAIT)


def test_uploaded_corpora_good_and_bad(page, server: str, tmp_path: Path) -> None:
    text = "".join(f"春风{i % 7}吹过小河边，月光照在老树上。" for i in range(700))
    gbk = tmp_path / "gbk_lyrics.txt"
    gbk.write_bytes(text.encode("gbk"))
    fake = tmp_path / "photo.txt"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    page.goto(f"{server}/?lang=en")
    _wait_ready(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Upload a file").click()
    upload = sidebar.locator("input[type=file]")
    upload.set_input_files(str(gbk))
    _main(page).get_by_text("gbk_lyrics.txt").first.wait_for(timeout=20_000)  # summary: name, size, vocabulary
    expect(_main(page)).to_contain_text("10,000 characters", timeout=20_000)
    upload.set_input_files(str(fake))
    _main(page).get_by_text("PNG image").wait_for(timeout=20_000)
    # The run that shows the message also disables Train; elements arrive one by one, so wait for it.
    expect(_main(page).get_by_role("button", name="Train", exact=True)).to_be_disabled(timeout=20_000)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_no_request_leaves_this_machine(page, server: str) -> None:
    """Offline classrooms: every page, in both languages, loads nothing from the internet (icons, fonts, favicon)."""
    outside: list[str] = []

    def record(request) -> None:
        url = request.url
        if not url.startswith(("data:", "blob:", "http://127.0.0.1:", "ws://127.0.0.1:")):
            outside.append(url)

    page.on("request", record)
    for lang in ("zh", "en"):
        for path in ("", "sampling", "hidden_states", "clipping", "generate"):
            page.goto(f"{server}/{path}?lang={lang}")
            _wait_ready(page)
            page.wait_for_timeout(500)  # late requests: favicon, icon fonts
    assert outside == [], f"requests left 127.0.0.1: {sorted(set(outside))}"
    # The navigation icons are drawn from the Material Symbols font bundled with Streamlit.
    assert page.evaluate("() => document.fonts.check('24px \"Material Symbols Rounded\"')")
    favicon = page.evaluate("() => document.querySelector('link[rel~=\"icon\"]')?.href || ''")
    assert favicon.startswith(server), favicon
    _shot(page, "offline_generate")


def test_the_menu_lists_page_titles_and_switches_pages_within_the_session(page, server: str) -> None:
    """The menu (Streamlit's navigation, in the sidebar) names pages by their titles, and a click on one switches
    page in the same browser document over the same websocket: the session (its runs, its settings) is never lost
    to a reload. It is Streamlit's navigation, not `st.page_link` elements, whose code the browser loads only when
    the first one arrives: under load those stood as grey placeholders for seconds after the title."""
    from lab_ui.i18n import PAGE_TITLES as PAGE_KEYS
    from lm_core.messages import text

    titles = {text(key, "en") for key in PAGE_KEYS.values()}
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{server}/?lang=en")
    _wait_ready(page)
    links = page.get_by_test_id("stSidebar").get_by_test_id("stSidebarNav").get_by_test_id("stSidebarNavLink")
    expect(links).to_have_count(len(titles), timeout=WAIT)
    labels = links.evaluate_all("""links => links.map(link => {
        const label = link.cloneNode(true);
        label.querySelectorAll('[data-testid="stIconMaterial"]').forEach(icon => icon.remove());
        return label.textContent.trim();
    })""")
    assert set(labels) == titles, labels
    opened = len(sockets)
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the click reloaded the page
    clipping = text(PAGE_KEYS["clipping"], "en")
    links.filter(has_text=clipping).click()
    expect(_main(page).locator("h1")).to_have_text(clipping, timeout=WAIT)  # in English: the session's language
    expect(page).to_have_url(re.compile(r"/clipping"), timeout=WAIT)
    _wait_ready(page)
    assert page.evaluate("() => window.__sameDocument === true"), "the menu reloaded the page"
    assert len(sockets) == opened, f"a new websocket (a new session) was opened: {sockets}"
    _shot(page, "menu_switched_to_clipping")
