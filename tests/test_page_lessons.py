"""The Lessons page: the chapter's six exercises and the book's experiments, each a link that opens its page set up.

A link is checked three ways: its target is a page of the entrypoint's `PAGES`; every query parameter is a
setting (or corpus choice) the target page draws, read back through the settings' own URL code, so a renamed
parameter or a page that stops showing a setting fails here; and the URL, opened by a browser, lands with the
lesson's settings selected (no "ignored" warning).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from apptest_helpers import (
    REPO,
    TIMEOUT,
    _clean_runtime,
    all_text,
    app_page,
    entrypoint_pages,
    setting_values,
)
from streamlit.testing.v1 import AppTest

from lab_ui import corpus_ui, lesson, settings
from lm_core.exercises import EXERCISES, EXPERIMENTS, all_lessons
from lm_core.messages import LANGS, text

PAGE = "lessons"
CORPUS_KEYS = {param: key for key, param in corpus_ui.URL_PARAMS.items()}  # URL parameter -> picker widget key
SETTING_NAMES = {settings.URL_KEYS.get(name, name): name for name in settings.FIELDS}  # URL parameter -> setting


def _links(at: AppTest) -> list[dict[str, str]]:
    """The main area's links' query parameters, in page order (the sidebar's menu is page links too)."""
    return [dict(parse_qsl(link.proto.query_string)) for link in at.main.get("page_link")]


def _open(params: dict[str, str], page: str) -> AppTest:
    """A fresh browser opening `page`'s URL with `params` (call inside `_clean_runtime`)."""
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    return at.switch_page(lesson.page_file(page)).run()


def _expected(params: dict[str, str], page: str) -> dict[str, object]:
    """The settings a link's query sets, parsed by the settings' own code; a parameter the page does not draw fails."""
    found = {}
    for param, raw in params.items():
        if param == "lang" or param in CORPUS_KEYS:
            continue
        assert param in SETTING_NAMES, f"{param} is no setting's URL parameter"
        name = SETTING_NAMES[param]
        assert name in settings.PAGE_FIELDS[page], f"{page} does not show {name}"
        found[name] = settings.FIELDS[name].parse(raw)
    return found


@pytest.mark.parametrize("lang", LANGS)
def test_the_page_lists_the_six_exercises_and_the_experiments(lang: str) -> None:
    with app_page(f"pages/{PAGE}.py", lang=lang) as at:
        assert not at.exception, [e.value for e in at.exception]
        shown = [str(m.value) for m in at.markdown]
        for number, item in enumerate(all_lessons(), start=1):
            assert f"**{number}. {text(item.title, lang)}**" in shown
            assert any(text(item.question, lang) in m for m in shown), item.key
        assert len(EXERCISES) == 6
        assert len(at.main.get("page_link")) == len(EXERCISES) + len(EXPERIMENTS)
        assert all(params["lang"] == lang for params in _links(at))


def test_every_link_opens_a_page_of_the_app_with_settings_it_reads() -> None:
    pages = entrypoint_pages()
    for item in all_lessons():
        assert pages.get(item.page) == lesson.page_file(item.page), item.key
        params = lesson.lesson_params(item, "en")
        expected = _expected(params, item.page)
        assert expected == lesson.lesson_values(item), item.key  # the URL says the lesson's whole run, no more
        for param, raw in params.items():
            if param in CORPUS_KEYS:
                assert corpus_ui.URL_PARAMS[CORPUS_KEYS[param]] == param and raw


def test_the_page_shows_the_links_lesson_params_builds() -> None:
    with app_page(f"pages/{PAGE}.py", lang="en") as at:
        assert _links(at) == [lesson.lesson_params(item, "en") for item in all_lessons()]


@pytest.mark.parametrize("item", [i for i in all_lessons() if i.config is not None], ids=lambda i: i.key)
def test_opening_a_link_lands_with_its_settings(item) -> None:
    params = lesson.lesson_params(item, "en")
    with _clean_runtime():
        at = _open(params, item.page)
        assert not at.exception, [e.value for e in at.exception]
        assert at.session_state["page"] == item.page
        expected = _expected(params, item.page)
        assert setting_values(at, item.page, list(expected)) == expected
        assert "ignored" not in all_text(at)
        if item.corpus:
            assert at.number_input(key="corpus:max_chars").value == item.corpus["max_chars"]


def test_the_detach_and_relu_exercises_set_what_they_are_about() -> None:
    by_key = {item.key: item for item in EXERCISES}
    with _clean_runtime():
        at = _open(lesson.lesson_params(by_key["no_detach"], "en"), "train")
        # The run as the book trains it, and beside it, in lockstep, the same run not detached.
        assert at.toggle(key=settings.widget_key("train", "detach")).value is True
        assert at.radio(key=settings.widget_key("train", "sampling")).value == "adjacent"
        assert at.selectbox(key=settings.widget_key("train", "compare")).value == settings.NOT_DETACHED
        assert not at.warning, [w.value for w in at.warning]  # a valid comparison that fits
    with _clean_runtime():
        at = _open(lesson.lesson_params(by_key["relu"], "en"), "clipping")
        assert at.radio(key=settings.widget_key("clipping", "nonlinearity")).value == "relu"


def test_a_link_followed_within_the_session_sets_a_page_already_visited() -> None:
    """The page's settings come from a link only on its first visit; the Lessons page lets its links set them again."""
    no_detach = next(item for item in EXERCISES if item.key == "no_detach")
    with app_page("pages/train.py") as at:
        assert at.selectbox(key=settings.widget_key("train", "compare")).value == "none"  # visited, the default
        at.switch_page(f"pages/{PAGE}.py").run()
        at.query_params.update(lesson.lesson_params(no_detach, "zh"))  # what following the link sends
        at.switch_page("pages/train.py").run()
        assert not at.exception
        assert at.selectbox(key=settings.widget_key("train", "compare")).value == settings.NOT_DETACHED


def test_a_page_a_lesson_lock_closed_gets_no_link_but_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed page is a stand-in without its file (`class_ui.closed_page`): a link to it would fail to draw."""
    from lab_ui import identity

    open_page = identity.page_visible
    monkeypatch.setattr(identity, "page_visible", lambda page: page != "clipping" and open_page(page))
    with app_page(f"pages/{PAGE}.py", lang="en") as at:
        assert not at.exception, [e.value for e in at.exception]
        to_clipping = [item for item in all_lessons() if item.page == "clipping"]
        assert len(at.main.get("page_link")) == len(all_lessons()) - len(to_clipping)
        closed = text("lessons.closed", "en").format(page=text("common.page_clipping", "en"))
        assert [c.value for c in at.caption].count(closed) == len(to_clipping)
