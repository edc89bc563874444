"""Teacher: unlock with the teacher key, then make classes, watch every student's runs live and steer them,
reset PINs, lock a lesson to a few pages and settings, and export the class's results."""

from __future__ import annotations

import streamlit as st

from lab_ui import identity, session, teacher_ui
from lab_ui.i18n import t

PAGE = "teacher"


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    st.title(t("teacher.title"))
    store = identity.class_store()
    if store is None:
        st.info(t("teacher.no_store"))
        return
    if not identity.teacher_unlocked():
        teacher_ui.unlock_ui()
        return
    teacher_ui.teacher_ui(store)


main()
