"""A class in real browsers: `streamlit run` on 127.0.0.1, Chromium contexts as the teacher and two students.

The teacher unlocks the Teacher page with the key the server wrote to its log (no RNN_LAB_TEACHER_KEY) and
creates a class; students A and B join in their own browser contexts and train; A's context is closed and a
fresh one joins as A: A's runs are listed on My runs and Resume works; B sees none of A's runs; the teacher
sees both live and stops B's run. Every step waits for what it then asserts (Playwright's `expect`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from test_browser import ARTIFACTS, _main, _require_browser, _shot, _wait_ready, expect
from testkit import CHROMIUM, CHROMIUM_ARGS, streamlit_server, wait_until

from lm_core import messages
from lm_core.classroom.lesson import make_lock
from lm_core.classroom.store import ClassStore
from lm_core.classroom.teacher import TEACHER_KEY_ENV

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TRAINING = 90_000  # ms: an upper bound for a few epochs on a loaded 2-core machine
# ms: an upper bound for an element or a finished script run, never a pass condition by itself. Twice the single
# browser tests' bound: three browsers, two runs training and the Teacher page's live redraws share the cores.
WAIT = 60_000
# Small runs through the URL (a lesson link): batch 8, num_steps 10, 250 minibatches an epoch of 20,000 characters,
# so an epoch takes a second or two and no run can reach its 500th before the test is done with it (at 2,000
# characters a quiet machine finished B's run before the teacher looked for it, training).
TINY = "lang=en&chars=20000&batch=8&steps=10&epochs=500"
# Two runs train at once on this server, as the test needs: A's resumed run and B's are both seen training by the
# teacher. (On a 2-core machine the default is one at a time, and A's resumed run would wait behind B's, as a
# queued run should: `lab_ui.session.default_workers`.)
TWO_AT_ONCE = {"RNN_LAB_WORKERS": "2"}
# My runs names a run by its model's label in the page's language (then corpus, date, epochs and its tag).
GRU, SCRATCH_RNN = messages.text("common.model_gru", "en"), messages.text("common.model_scratch_rnn", "en")
KEY_LINE = re.compile(r"Teacher key for this server \(" + TEACHER_KEY_ENV + r" is not set\): (\S+)")


class ClassServer(NamedTuple):
    url: str
    key: str
    data: str  # its data folder (RNN_LAB_DATA)


@pytest.fixture(scope="module")
def class_server(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[ClassServer]:
    """A server without RNN_LAB_TEACHER_KEY: it makes a key and writes it to its log, where the operator reads it."""
    _require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    monkeypatch_module.delenv(TEACHER_KEY_ENV, raising=False)
    data = tempfile.mkdtemp(prefix="lab-class-")
    log_path = ARTIFACTS / "server_class.log"
    with log_path.open("w") as log, streamlit_server(data, log, env=TWO_AT_ONCE) as running:
        assert wait_until(lambda: KEY_LINE.search(log_path.read_text()) is not None, 30)
        yield ClassServer(running.url, KEY_LINE.search(log_path.read_text()).group(1), data)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def chromium(class_server: ClassServer):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _click_button(pg, name: str, attempts: int = 5) -> None:
    """Click the main area's one button `name` once the page shows exactly one (see test_browser's helper),
    allowing the click itself as long as an element may take to arrive: with two runs training on a loaded
    2-core machine, a live panel's redraw can keep a button busy for seconds."""
    from playwright.sync_api import Error

    button = _main(pg).get_by_role("button", name=name, exact=True)
    for attempt in range(attempts):
        expect(button).to_have_count(1, timeout=WAIT)
        try:
            button.click(timeout=WAIT)
            return
        except Error as exc:
            if "strict mode violation" not in str(exc) or attempt == attempts - 1:
                raise


def _ready(pg) -> None:
    _wait_ready(pg, timeout=WAIT)


def _context(chromium):
    """A browser of its own; every action (a click, a fill) may wait up to WAIT for its element to settle."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1600})
    context.set_default_timeout(WAIT)
    return context


def _open_join_box(sidebar):
    """Unfold "Join a class" until its class-code box shows: a page's own script run, still under way when the
    header was clicked, can draw the box folded again (the click is then repeated)."""
    box = sidebar.get_by_label("Class code", exact=True)
    for _ in range(5):
        if box.is_visible():  # a decision only: what follows waits for the box
            break
        sidebar.get_by_text("Join a class", exact=True).click()
        try:
            expect(box).to_be_visible(timeout=5_000)
            break
        except AssertionError:
            continue
    expect(box).to_be_visible(timeout=WAIT)
    return box


def _join(pg, code: str, name: str, pin: str, new: bool) -> None:
    """Join from the sidebar (the labels the issue names), answering the new-student question when asked."""
    sidebar = pg.get_by_test_id("stSidebar")
    _open_join_box(sidebar).fill(code)
    sidebar.get_by_label("Your name", exact=True).fill(name)
    sidebar.get_by_label("PIN", exact=True).fill(pin)
    sidebar.get_by_role("button", name="Join", exact=True).click()
    if new:
        sidebar.get_by_role("button", name="Join as a new student", exact=True).click()
    expect(sidebar).to_contain_text(f"You are {name} in Class 3A", timeout=WAIT)
    _ready(pg)


def _epoch_at_least(pg, n: int) -> None:
    """Wait for the page's progress to pass epoch `n`; on a timeout, keep a screenshot of what the page showed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        pg.wait_for_function(
            f"() => {{ const m = document.body.innerText.match(/Epoch (\\d+)\\/500/); return m && +m[1] >= {n}; }}",
            timeout=TRAINING,
        )
    except PlaywrightTimeout:
        _shot(pg, f"class_epoch_{n}_timeout")
        raise


def _run_options(pg):
    """The runs My runs offers to open (its run picker's options, opened): real DOM text, unlike the table's cells,
    which the data grid draws on a canvas and mirrors into an accessible table only once it has laid them out."""
    picker = _main(pg).get_by_role("combobox", name="Open a run", exact=True)
    picker.click()
    return pg.get_by_role("option")


def _run_row(pg, name: str):
    """The row of `name`'s run in the page's first table (st.dataframe keeps an accessible copy of its cells)."""
    return pg.get_by_test_id("stDataFrame").first.locator("tr", has_text=name)


def test_a_class_lesson_in_three_browsers(chromium, class_server: ClassServer) -> None:
    url = class_server.url
    teacher = _context(chromium).new_page()
    teacher.goto(f"{url}/teacher?lang=en")
    _ready(teacher)
    _main(teacher).get_by_label("Teacher key", exact=True).fill(class_server.key)
    _click_button(teacher, "Unlock")
    _main(teacher).get_by_label("Class name", exact=True).fill("Class 3A")
    _click_button(teacher, "Create class")
    code_shown = _main(teacher).get_by_test_id("stMetricValue").first
    expect(code_shown).to_have_text(re.compile(r"^[A-HJKMNP-Z2-9]{6}$"), timeout=WAIT)
    code = code_shown.inner_text().strip()
    assert class_server.key not in teacher.url and class_server.key not in teacher.content()

    # A trains a GRU and stops it part-way; B trains the book's RNN and leaves it running.
    a_context = _context(chromium)
    a = a_context.new_page()
    a.goto(f"{url}/?{TINY}&model=gru&hidden=32&opt=adam&lr=0.01")
    _ready(a)
    _join(a, code, "Ada", "2468", new=True)
    _click_button(a, "Train")
    _epoch_at_least(a, 2)
    _click_button(a, "Stop training")
    expect(_main(a).get_by_test_id("stProgress")).to_contain_text("Stopped", timeout=WAIT)
    a_job = re.search(r"job=([0-9a-f]+)", a.url).group(1)
    stopped_at = int(re.search(r"Epoch (\d+)/500", _main(a).get_by_test_id("stProgress").inner_text()).group(1))

    b = _context(chromium).new_page()
    b.goto(f"{url}/?{TINY}&model=scratch-rnn&hidden=64")
    _ready(b)
    _join(b, code, "Bo", "1357", new=True)
    _click_button(b, "Train")
    _epoch_at_least(b, 1)

    # A's browser is gone; a fresh one joins as A (a known name: no question) and finds the run on My runs.
    a_context.close()
    a = _context(chromium).new_page()
    a.goto(f"{url}/my_runs?lang=en")
    _ready(a)
    _join(a, code, "Ada", "2468", new=False)
    expect(_run_options(a)).to_have_text(
        [re.compile(rf"^{re.escape(GRU)} · .* · {stopped_at}/500 · #[0-9a-f/]+$")], timeout=WAIT
    )
    a.keyboard.press("Escape")
    _click_button(a, f"Resume (from epoch {stopped_at})")
    _epoch_at_least(a, stopped_at + 1)
    expect(_main(a).get_by_test_id("stProgress")).to_contain_text("Training", timeout=WAIT)
    _shot(a, "class_student_resumed")

    # B sees only B's run, and A's run by its link is not B's to see.
    b.goto(f"{url}/my_runs?lang=en")
    _ready(b)
    expect(_run_options(b)).to_have_text([re.compile(rf"^{re.escape(SCRATCH_RNN)} · ")], timeout=WAIT)
    b.keyboard.press("Escape")
    b.goto(f"{url}/?lang=en&job={a_job}")
    _ready(b)
    expect(_main(b)).to_contain_text("not available in this browser", timeout=WAIT)

    # The teacher sees both runs live, then stops B's.
    expect(_run_row(teacher, "Ada")).to_contain_text("Training", timeout=WAIT)
    expect(_run_row(teacher, "Bo")).to_contain_text("Training", timeout=WAIT)
    _shot(teacher, "class_teacher_live")
    runs = _main(teacher).get_by_role("combobox", name="Run", exact=True)  # the run picker (its label is hidden)
    runs.click()
    teacher.get_by_role("option", name=re.compile(r"^Bo · ")).click()
    expect(runs).to_have_value(re.compile(r"^Bo · "), timeout=WAIT)
    _click_button(teacher, "Stop")
    expect(_main(teacher)).to_contain_text("Stopped Bo's run.", timeout=WAIT)
    expect(_run_row(teacher, "Bo")).to_contain_text("Stopped", timeout=WAIT)
    expect(_run_row(teacher, "Ada")).to_contain_text("Training", timeout=WAIT)
    b.goto(f"{url}/my_runs?lang=en")
    _ready(b)
    expect(_main(b)).to_contain_text(re.compile(r"Stopped after \d+ of 500 epochs"), timeout=WAIT)
    _click_button(a, "Stop training")  # leave nothing training behind
    expect(_main(a).get_by_test_id("stProgress")).to_contain_text("Stopped", timeout=WAIT)


def test_a_lesson_lock_closes_pages_to_a_student_by_address_too(chromium, class_server: ClassServer) -> None:
    """The lock set for the class (here straight in its store, as the Teacher page does) holds at the student's
    next page: closed pages are out of the menu, their addresses show why, Train shows only the lesson's settings."""
    classes = ClassStore(class_server.data)
    klass = classes.create_class("Class 3A")
    student = _context(chromium).new_page()
    student.goto(f"{class_server.url}/?lang=en")
    _ready(student)
    _join(student, klass.code, "Cy", "8642", new=True)
    classes.set_lock(make_lock(klass.id, ["train", "my_runs"], ["epochs", "lr"], 30))
    classes.close()
    student.goto(f"{class_server.url}/clipping?lang=en&clipping=off")
    _ready(student)
    expect(_main(student)).to_contain_text("This page is closed to your class", timeout=WAIT)
    expect(_main(student).get_by_test_id("stSlider")).to_have_count(0)
    nav = student.get_by_test_id("stSidebar").get_by_test_id("stSidebarNav")  # the menu (st.navigation)
    expect(nav).to_contain_text("My runs", timeout=WAIT)
    expect(nav).not_to_contain_text("Gradient clipping")
    expect(nav).not_to_contain_text("Teacher")
    student.goto(f"{class_server.url}/teacher?lang=en")
    _ready(student)
    expect(_main(student)).to_contain_text("The Teacher page is the teacher's", timeout=WAIT)
    student.goto(f"{class_server.url}/?lang=en&hidden=512&model=lstm")
    _ready(student)
    sliders = _main(student).get_by_test_id("stSlider")
    expect(sliders).to_have_count(2, timeout=WAIT)
    expect(sliders.first).to_contain_text("Learning rate")
    expect(sliders.last).to_contain_text("Epochs")
    expect(_main(student)).to_contain_text("Your teacher fixed the other settings")
    _shot(student, "class_student_locked")
