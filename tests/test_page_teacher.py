"""Classes in the app (AppTest): joining from the sidebar, runs that follow a student, leaving, the Teacher page
(unlock, live runs, Stop, PINs, removing a student, export) and a lesson lock that really hides pages and settings.

Each AppTest is one browser (its own session and a random identity); several in one test share the server's
cached job manager and class store, as browsers share a real server. Runs train in threads of this process.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

import pytest
import streamlit as st
from apptest_helpers import REPO, TIMEOUT, set_settings, setting_widget, shown, use_tiny_settings, wait_for_job
from streamlit.testing.v1 import AppTest
from testkit import wait_until

from lab_ui import class_ui, identity, jobs_ui, session, settings, teacher_ui
from lab_ui.i18n import LANGS
from lm_core import messages
from lm_core.classroom import teacher
from lm_core.classroom.lesson import make_lock

KEY = "correct horse battery"
PIN = "2468"


@pytest.fixture(autouse=True)
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One fresh server per test: thread backend, a known teacher key; every run stopped afterwards."""
    monkeypatch.setenv(session.BACKEND_ENV, "thread")
    monkeypatch.setenv(teacher.TEACHER_KEY_ENV, KEY)
    session.shutdown_manager()
    st.cache_resource.clear()
    yield
    session.shutdown_manager()
    st.cache_resource.clear()


def browser(lang: str = "en", **query: str) -> AppTest:
    """A new browser opening the app (the Train page) with `?lang=...` and `query`."""
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params["lang"] = lang
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def press(at: AppTest, label: str) -> AppTest:
    """Click the one button (form buttons included) labelled `label`, and rerun."""
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, f"{len(found)} buttons {label!r}: {[b.label for b in at.button]}"
    found[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def join(at: AppTest, code: str, name: str, pin: str = PIN, new: bool = False, bring: bool = False) -> AppTest:
    at.text_input(key=class_ui.CODE).input(code)
    at.text_input(key=class_ui.NAME).input(name)
    at.text_input(key=class_ui.PIN).input(pin)
    if bring:
        at.checkbox(key=class_ui.BRING).check()
    press(at, "Join")
    if new:
        at.button(key="class:join_new").click().run()
    return at


def new_class(name: str = "Class 3A"):
    return identity.class_store().create_class(name)


def sidebar_text(at: AppTest) -> str:
    parts = [
        e.value for kind in ("error", "warning", "info", "success", "markdown", "caption") for e in at.sidebar.get(kind)
    ]
    return "\n".join(shown(str(p)) for p in parts)


def my_runs(at: AppTest) -> list[str]:
    """The runs My runs lists for this browser (their labels), [] when it says there are none."""
    at.switch_page("pages/my_runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return list(at.dataframe[0].value["Run"]) if at.dataframe else []


def train(at: AppTest, **overrides: object):
    """Tiny settings (plus `overrides`), Train pressed on the Train page; the job, still running or not."""
    at.switch_page("pages/train.py").run()
    use_tiny_settings(at, "train", **overrides)
    at.button(key="train:start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = session.manager().get(at.session_state[jobs_ui.job_key("train")], at.session_state["owner"])
    assert job is not None
    return job


def unlocked_teacher(lang: str = "en") -> AppTest:
    at = browser(lang)
    at.switch_page("pages/teacher.py").run()
    at.text_input(key="teacher:key").input(KEY)
    return press(at, {"en": "Unlock", "zh": "解锁"}[lang])


# -- joining -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "labels", "button"),
    [
        ("en", ["Class code", "Your name", "PIN"], "Join"),
        ("zh", ["班级代码", "你的名字", "PIN 码"], "加入"),
        ("zh-Hant", ["班級代碼", "你的名字", "PIN 碼"], "加入"),
    ],
)
def test_the_join_form_has_its_labels_in_every_language(lang: str, labels: list[str], button: str) -> None:
    at = browser(lang)
    assert [w.label for w in at.sidebar.text_input] == labels
    assert at.text_input(key=class_ui.PIN).proto.type == at.text_input(key=class_ui.PIN).proto.PASSWORD
    assert button in [b.label for b in at.sidebar.button]


def test_a_students_runs_follow_them_to_another_browser_and_no_one_else_sees_them() -> None:
    ada = browser()
    klass = new_class()
    join(ada, klass.code.lower(), "Ada", new=True)
    owner = ada.session_state["owner"]
    assert owner.startswith("s:") and "Ada" in sidebar_text(ada) and "Class 3A" in sidebar_text(ada)
    job = train(ada)
    job.thread.join(TIMEOUT)
    assert job.owner == owner and [r.owner for r in session.manager().store.runs(owner)] == [owner]

    laptop = join(browser(), klass.code, "  ada ")  # a known name: no question, straight in
    assert laptop.session_state["owner"] == owner
    assert len(my_runs(laptop)) == 1

    bo = join(browser(), klass.code, "Bo", "1357", new=True)
    assert bo.session_state["owner"] not in (owner, None)
    assert my_runs(bo) == []
    peek = browser(job=job.id)  # A's run by its link, from another browser: not shown, and said so
    assert "not available in this browser" in "\n".join(shown(str(i.value)) for i in peek.info)
    assert session.manager().get(job.id, peek.session_state["owner"]) is None and not peek.get("plotly_chart")


def test_a_wrong_pin_says_only_name_or_pin_not_recognised() -> None:
    klass = new_class()
    join(browser(), klass.code, "Ada", new=True)
    guess = join(browser(), klass.code, "Ada", "9999")
    assert [shown(e.value) for e in guess.sidebar.error] == ["Name or PIN not recognised."]
    assert not guess.session_state["owner"].startswith("s:") and identity.STUDENT_KEY in guess.session_state
    assert guess.session_state[identity.STUDENT_KEY] is None


def test_a_name_new_to_the_class_is_asked_about_and_what_was_typed_stays_to_correct() -> None:
    klass = new_class()
    at = browser()
    at.text_input(key=class_ui.CODE).input(klass.code.lower())
    at.text_input(key=class_ui.NAME).input("Adda")
    at.text_input(key=class_ui.PIN).input(PIN)
    press(at, "Join")
    assert "There is no student called Adda in Class 3A yet" in sidebar_text(at)
    assert at.text_input(key=class_ui.CODE).value == klass.code.lower()
    assert at.text_input(key=class_ui.NAME).value == "Adda"
    at.button(key="class:cancel").click().run()
    assert identity.class_store().students(klass.id) == []  # no second student made from a typo
    assert at.text_input(key=class_ui.NAME).value == "Adda"


def test_leaving_is_one_click_and_this_browsers_own_runs_come_back() -> None:
    pc = browser()
    alone = train(pc)
    alone.thread.join(TIMEOUT)
    klass = new_class()
    join(pc, klass.code, "Ada", new=True)
    assert my_runs(pc) == []  # not brought along: they stay with the browser
    pc.button(key="class:leave").click().run()
    assert pc.session_state[identity.STUDENT_KEY] is None and not pc.session_state["owner"].startswith("s:")
    assert "You left the class" in sidebar_text(pc)
    assert len(my_runs(pc)) == 1


def test_runs_made_before_joining_can_come_along_live_ones_too() -> None:
    pc = browser()
    done = train(pc)
    done.thread.join(TIMEOUT)
    live = train(pc, epochs=500)
    klass = new_class()
    join(pc, klass.code, "Ada", new=True, bring=True)
    owner = pc.session_state["owner"]
    assert live.owner == owner and {r.job_id for r in session.manager().store.runs(owner)} == {done.id, live.id}
    assert "Runs of this browser that came with you: 2." in sidebar_text(pc)
    live.stop()


def test_display_names_are_shown_as_text_never_markdown_or_html() -> None:
    name = "**Bo** <b>x</b> [link](http://e.x)"
    klass = new_class("_Class_ <i>")
    student = join(browser(), klass.code, name, new=True)
    signed_in = [m.value for m in student.sidebar.markdown if "Bo" in m.value]
    assert signed_in and shown(signed_in[0]) == f"You are **{name}** in **_Class_ <i>**."
    assert "<b>" not in signed_in[0].replace("\\<b\\>", "")  # every Markdown and HTML character escaped
    at = unlocked_teacher()
    assert list(at.dataframe[1].value["Student"]) == [name]  # the students table (the runs table is empty)
    assert [o for o in at.selectbox(key="teacher:student").options] == [name]


# -- the Teacher page -----------------------------------------------------------------------------------------
def test_the_teacher_page_opens_only_with_the_key_kept_on_the_server() -> None:
    at = browser()
    at.switch_page("pages/teacher.py").run()
    assert at.session_state["page"] == "teacher"
    assert [w.key for w in at.text_input if w.key.startswith("teacher:")] == ["teacher:key"]  # inert without it
    at.text_input(key="teacher:key").input("wrong guess")
    press(at, "Unlock")
    assert [shown(e.value) for e in at.error] == ["That is not the teacher key."]
    at.text_input(key="teacher:key").input(KEY)
    press(at, "Unlock")
    assert at.text_input(key="teacher:new_name") is not None and not at.error
    assert KEY not in str(dict(at.query_params))  # the unlock is the server's, bound to this browser
    assert identity.class_store().teacher_unlocked(at.session_state[identity.BROWSER_KEY], teacher.fingerprint())
    other = browser()  # another browser is not unlocked by this one
    other.switch_page("pages/teacher.py").run()
    assert [w.key for w in other.text_input if w.key.startswith("teacher:")] == ["teacher:key"]
    press(at, "Lock this page")
    assert [w.key for w in at.text_input if w.key.startswith("teacher:")] == ["teacher:key"]


def test_a_student_does_not_get_the_teacher_page() -> None:
    klass = new_class()
    student = join(browser(), klass.code, "Ada", new=True)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        student.switch_page("pages/teacher.py")  # not in the navigation: its address opens the first page


def test_the_teacher_creates_a_class_and_sees_its_code() -> None:
    at = unlocked_teacher()
    at.text_input(key="teacher:new_name").input("Class 3A")
    press(at, "Create class")
    code = at.metric[0].value
    assert identity.class_store().by_code(code).name == "Class 3A"
    assert "Class 3A is ready" in "\n".join(shown(s.value) for s in at.success)


def test_the_teacher_page_speaks_each_language_of_the_lab() -> None:
    """Unlocked in English, 中文 and 繁體中文: the title, tabs, buttons, metrics and a run's status are that
    language's texts (a label of one language only would be a text the page did not look up)."""
    klass = new_class()
    train(join(browser(), klass.code, "Ada", new=True)).thread.join(TIMEOUT)
    seen: dict[str, list[str]] = {}
    for lang in LANGS:
        at = browser(lang)
        at.switch_page("pages/teacher.py").run()
        at.text_input(key="teacher:key").input(KEY)
        at = press(at, messages.text("teacher.unlock", lang))
        texts = set(messages.catalogue(lang).values())
        assert at.title[0].value == messages.text("teacher.title", lang)
        tabs = ("teacher.tab_runs", "teacher.tab_students", "teacher.tab_lesson", "teacher.tab_export")
        assert [tab.label for tab in at.tabs] == [messages.text(k, lang) for k in tabs]
        assert [m.label for m in at.metric] == [messages.text(k, lang) for k in ("teacher.code", "teacher.students")]
        labels = [b.label for b in at.main.button] + [w.label for w in (*at.main.selectbox, *at.main.text_input)]
        assert labels and all(label in texts for label in labels), [x for x in labels if x not in texts]
        assert list(at.dataframe[0].value["status"]) == [messages.text("common.status_finished", lang)]
        seen[lang] = labels
    assert seen["en"] != seen["zh"] != seen["zh-Hant"]  # three languages, not one text shown three times


def test_the_teacher_sees_every_students_runs_live_and_stops_one() -> None:
    klass = new_class()
    ada = join(browser(), klass.code, "Ada", new=True)
    bo = join(browser(), klass.code, "Bo", "1357", new=True)
    done = train(ada)
    done.thread.join(TIMEOUT)
    running = train(bo, epochs=500)
    assert wait_until(lambda: session.manager().view(running).epoch >= 1, TIMEOUT)
    at = unlocked_teacher()
    table = at.dataframe[0].value
    assert sorted(table["student"]) == ["Ada", "Bo"]
    assert dict(zip(table["student"], table["status"], strict=True)) == {"Ada": "Finished", "Bo": "Training"}
    assert all(len(curve) >= 1 for curve in table["curve"])
    at.selectbox(key="teacher:run").set_value(f"{running.id}-0").run()
    assert at.selectbox(key="teacher:run").value == f"{running.id}-0"
    press(at, "Stop")
    assert wait_until(lambda: running.done, TIMEOUT) and running.status == "stopped"
    assert "Stopped Bo's run." in "\n".join(shown(s.value) for s in at.success)
    assert done.status == "finished"  # Ada's run was not touched
    press(at, "Delete")
    assert session.manager().store.runs(bo.session_state["owner"]) == []


def test_the_teacher_resets_a_pin_and_removes_a_student() -> None:
    klass = new_class()
    ada = join(browser(), klass.code, "Ada", new=True)
    job = train(ada)
    job.thread.join(TIMEOUT)
    at = unlocked_teacher()
    at.text_input(key="teacher:new_pin").input("9753")
    press(at, "Reset PIN")
    assert "PIN reset." in [s.value for s in at.success]
    assert join(browser(), klass.code, "Ada", PIN).sidebar.error
    assert join(browser(), klass.code, "Ada", "9753").session_state["owner"] == ada.session_state["owner"]
    press(at, "Remove student")  # not confirmed: nothing happens
    assert identity.class_store().students(klass.id)
    at.checkbox(key="teacher:confirm_remove").check()
    press(at, "Remove student")
    assert identity.class_store().students(klass.id) == []
    assert session.manager().store.runs(ada.session_state["owner"]) == []
    ada.run()
    assert ada.session_state[identity.STUDENT_KEY] is None  # signed out everywhere


def test_the_class_csv_holds_every_students_runs() -> None:
    klass = new_class()
    for name, pin in (("Ada", PIN), ("=cmd|' /C calc'!A0", "1357")):
        job = train(join(browser(), klass.code, name, pin, new=True))
        job.thread.join(TIMEOUT)
    rows = list(csv.DictReader(io.StringIO(teacher_ui.class_csv(identity.class_store(), klass).decode("utf-8-sig"))))
    assert sorted(r["student"] for r in rows) == ["'=cmd|' /C calc'!A0", "Ada"]
    assert {r["status"] for r in rows} == {"finished"} and {r["epoch"] for r in rows} == {"2"}


# -- the lesson lock ------------------------------------------------------------------------------------------
def test_a_lesson_lock_hides_pages_and_settings_whatever_the_url() -> None:
    klass = new_class()
    at = unlocked_teacher()
    at.multiselect(key="teacher:lock_pages").set_value(["train", "my_runs"])
    at.multiselect(key="teacher:lock_fields").set_value(["epochs", "lr"])
    at.selectbox(key="teacher:lock_preset").set_value("quick_demo")
    press(at, "Start the lesson lock")
    lock = identity.class_store().lock(klass.id)
    assert lock is not None and lock.pages == {"train", "my_runs"} and lock.settings == {"epochs", "lr"}

    student = join(browser(model="rnn", hidden="16", layers="2", epochs="1"), klass.code, "Ada", new=True)
    shown_fields = [n for n in settings.FIELDS if _has_widget(student, "train", n)]
    assert shown_fields == ["lr", "epochs"]
    assert not [w for w in student.selectbox if w.key in ("train:preset", "train:from")]
    assert not [b for b in student.button if b.key == "train:book"]
    assert "Your teacher fixed the other settings" in "\n".join(c.value for c in student.caption)
    for page in ("clipping", "teacher", "generate"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            student.switch_page(f"pages/{page}.py")
    student.number_input(key="corpus:max_chars").set_value(3000).run()
    set_settings(student, "train", {"epochs": 1})
    student.button(key="train:start").click().run()
    job = wait_for_job(student, "train")
    config = job.config(0)
    assert (config.model, config.hidden, config.num_layers) == ("gru", 128, 1)  # the lesson's preset, not the URL's

    at.run()
    assert any(b.key == "teacher:lift" for b in at.button) and not at.exception
    press(at, "Lift the lock")
    student.run()  # the student's next rerun reads the lock again
    student.switch_page("pages/clipping.py").run()
    assert student.session_state["page"] == "clipping"
    student.switch_page("pages/train.py").run()
    assert _has_widget(student, "train", "hidden")


def test_a_lock_past_its_end_hides_nothing() -> None:
    klass = new_class()
    identity.class_store().set_lock(make_lock(klass.id, ["train"], [], 1, now=time.time() - 120))
    student = join(browser(), klass.code, "Ada", new=True)
    student.switch_page("pages/clipping.py").run()
    assert student.session_state["page"] == "clipping"


def _has_widget(at: AppTest, page: str, name: str) -> bool:
    try:
        setting_widget(at, page, name)
    except AssertionError:
        return False
    return True
