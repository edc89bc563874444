"""Lessons: the chapter's six exercises and the book's own experiments, each a link to the page that does it."""

from __future__ import annotations

import streamlit as st

from lab_ui import lesson, session
from lab_ui.i18n import t
from lm_core.exercises import EXERCISES, EXPERIMENTS

PAGE = "lessons"


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    st.title(t("lessons.title"))
    st.caption(t("lessons.intro"))
    st.subheader(t("lessons.exercises"))
    lesson.lessons_ui(EXERCISES)
    st.subheader(t("lessons.experiments"))
    lesson.lessons_ui(EXPERIMENTS, first_number=len(EXERCISES) + 1)


main()
