"""Lesson links: a shareable link to the current page's settings, and the Lessons page's links to the exercises.

Every setting already lives in the URL; the shared link is that URL without
the job id, so whoever opens it gets the same settings and seed but their own
run, never the teacher's. A lesson of `lm_core.exercises` becomes such a URL
of its page, written by the settings' own URL code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from lm_core.exercises import Lesson

from . import corpus_ui, identity, settings
from .i18n import PAGE_TITLES, current_lang, t


def lesson_url(base_url: str, params: dict[str, str]) -> str:
    """`base_url` with `params` as its query, minus any job id."""
    parts = urlsplit(base_url)
    query = urlencode({k: v for k, v in params.items() if k != "job"})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def lesson_link_ui() -> None:
    try:
        base = st.context.url or ""
    except Exception:  # noqa: BLE001 -- no request context (AppTest)
        base = ""
    if not isinstance(base, str):
        base = ""
    with st.expander(t("lesson.share")):
        st.caption(t("lesson.share_help"))
        st.code(lesson_url(base, st.query_params.to_dict()), language=None)


def lesson_values(lesson: Lesson) -> dict[str, Any]:
    """The settings a lesson's link sets on its page: every setting the page shows, from the lesson's whole run."""
    if lesson.config is None:
        return {}
    values = {**settings.defaults_from(lesson.config), "compare": lesson.compare}
    return {name: values.get(name, settings.NEW_FIELD_DEFAULTS.get(name)) for name in settings.PAGE_FIELDS[lesson.page]}


def lesson_params(lesson: Lesson, lang: str) -> dict[str, str]:
    """The lesson's page URL query: its settings written by the settings' own URL code, its corpus, the language."""
    params = {
        settings.URL_KEYS.get(name, name): settings.FIELDS[name].dump(value)
        for name, value in lesson_values(lesson).items()
    }
    for name, value in lesson.corpus.items():
        params[corpus_ui.URL_PARAMS[f"corpus:{name}"]] = str(value)
    return {**params, "lang": lang}


def page_file(page: str) -> str:
    """The page file of page key `page` (a lesson's target; the entrypoint's PAGES, which the tests compare)."""
    return f"pages/{page}.py"


def lessons_ui(lessons: Sequence[Lesson], first_number: int = 1) -> None:
    """Each lesson in a box: its number and title, a link to its page with its settings, what to look for, a question.

    Links open pages within the session, where a page takes its settings from the URL only on its first visit:
    drawing the links lets each target page (and the corpus picker) read the URL again.
    """
    lang = current_lang()
    corpus_ui.forget_url_read()
    for number, lesson in enumerate(lessons, start=first_number):
        settings.forget_visit(lesson.page)
        with st.container(border=True):
            st.markdown(f"**{number}. {t(lesson.title)}**")
            if identity.page_visible(lesson.page):
                st.page_link(
                    page_file(lesson.page),
                    label=t(
                        "lessons.open" if lesson.config is not None else "lessons.open_page",
                        page=t(PAGE_TITLES[lesson.page]),
                    ),
                    icon=":material/arrow_forward:",
                    query_params=lesson_params(lesson, lang),
                )
            else:  # a lesson lock closed the page: its link would open nothing
                st.caption(t("lessons.closed", page=t(PAGE_TITLES[lesson.page])))
            if lesson.instead:
                st.caption(t(lesson.instead))
            st.markdown(t("lessons.look", text=t(lesson.look)))
            st.markdown(t("lessons.question", text=t(lesson.question)))
