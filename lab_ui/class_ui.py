"""The sidebar's class box: join a class (class code, your name, PIN), or see who you are and leave.

Drawn by `session.init` on every page, under the language switch. A browser alone sees a folded "Join a
class"; a signed-in student sees their name and class and a one-click "Leave class" (a shared lab PC). The
join runs in the form's callback, before the page draws, so the page already shows the student's runs.
A name the class does not have yet is asked about first ("join as a new student?"), so a typo does not
quietly make a second student without the first one's runs.
"""

from __future__ import annotations

import streamlit as st

from lm_core.classroom.errors import ClassError, NewStudent
from lm_core.errors import localized
from lm_core.limits import MAX_NAME_CHARS, MAX_PIN_DIGITS, MIN_PIN_DIGITS

from . import identity
from .i18n import N_, current_lang, t
from .text import escape_markdown

CODE, NAME, PIN, BRING = "class:code", "class:name", "class:pin", "class:bring"
ERROR, ASK_NEW, FLASH = "class:error", "class:ask_new", "class:flash"
# The code and name last typed, kept outside the widgets: a widget's identity includes the script that draws it,
# and the sidebar is drawn once for the entrypoint and then for each page, so the boxes can start afresh after
# Join; they start from these values, and a student who mistyped a name corrects it without typing it all again.
TYPED = "class:typed"


def _join() -> None:
    """The form's callback: sign in, or keep why not (or the new-name question) for the panel to say."""
    typed = (st.session_state.get(CODE, ""), st.session_state.get(NAME, ""), st.session_state.get(PIN, ""))
    _try_join(*typed, bring=bool(st.session_state.get(BRING)), allow_new=False)


def _join_new() -> None:
    """The answer "join as a new student": the same code, name and PIN as the question was about."""
    pending = st.session_state.get(ASK_NEW)
    if pending is not None:
        _, code, name, pin, bring = pending
        _try_join(code, name, pin, bring=bring, allow_new=True)


def _try_join(code: str, name: str, pin: str, bring: bool, allow_new: bool) -> None:
    st.session_state.pop(ERROR, None)
    st.session_state.pop(ASK_NEW, None)
    st.session_state[TYPED] = (code, name)
    try:
        joined, moved = identity.join(code, name, pin, allow_new=allow_new, bring_along=bring)
    except NewStudent as exc:  # kept with what was typed until answered: the form's values may be gone by then
        st.session_state[ASK_NEW] = (exc, code, name, pin, bring)
        return
    except ClassError as exc:
        st.session_state[ERROR] = exc
        return
    st.session_state[PIN] = ""  # the PIN does not wait in the form for the next person at this computer
    st.session_state.pop(TYPED, None)
    st.session_state[FLASH] = (joined.student.name, joined.klass.name, joined.new, moved)


def _cancel_new() -> None:
    st.session_state.pop(ASK_NEW, None)


def _leave() -> None:
    identity.leave()
    st.session_state[FLASH] = None
    st.session_state["class:left"] = True


def class_box() -> None:
    """The class box in the sidebar (nothing when classes are off: no data folder)."""
    if identity.class_store() is None:
        return
    student = identity.current_student()
    with st.sidebar:
        if student is not None:
            _signed_in_ui(student)
        else:
            _join_ui()


def _signed_in_ui(student: identity.Student) -> None:
    with st.container(border=True):
        flash = st.session_state.pop(FLASH, None)
        if flash:
            name, klass, new, moved = flash
            st.success(t.md("class.welcome_new" if new else "class.welcome", name=name, klass=klass))
            if moved:
                st.caption(t("class.moved", n=moved))
        st.markdown(t.md("class.signed_in", name=student.display_name, klass=student.class_name))
        st.button(t("class.leave"), key="class:leave", on_click=_leave, help=t("class.leave_help"), width="stretch")


def _join_ui() -> None:
    if st.session_state.pop("class:left", False):
        st.info(t("class.left"))
    pending = st.session_state.get(ASK_NEW)
    asking: NewStudent | None = pending[0] if pending else None
    error: ClassError | None = st.session_state.get(ERROR)
    with st.expander(t("class.join_title"), expanded=asking is not None or error is not None):
        with st.form("class:join", border=False):
            code, name = st.session_state.get(TYPED, ("", ""))
            st.text_input(t("class.code"), value=code, key=CODE, max_chars=12, help=t("class.code_help"))
            st.text_input(
                t("class.name"),
                value=name,
                key=NAME,
                max_chars=MAX_NAME_CHARS,
                help=t("class.name_help", n=MAX_NAME_CHARS),
            )
            st.text_input(
                t("class.pin"),
                key=PIN,
                type="password",
                max_chars=MAX_PIN_DIGITS,
                help=t("class.pin_help", lo=MIN_PIN_DIGITS, hi=MAX_PIN_DIGITS),
            )
            _bring_along_ui()
            st.form_submit_button(t("class.join"), on_click=_join, type="primary")
        if error is not None:
            st.error(escape_markdown(localized(error, current_lang())))
        if asking is not None:
            st.warning(escape_markdown(localized(asking, current_lang())))
            yes, no = st.columns(2)
            yes.button(t("class.join_new"), key="class:join_new", on_click=_join_new, type="primary")
            no.button(t("class.cancel"), key="class:cancel", on_click=_cancel_new)


def _bring_along_ui() -> None:
    """Offer to bring this browser's own runs into the class (off by default: on a shared PC they may be another's)."""
    from .session import manager

    store = manager().store
    mine = len(store.runs(identity.browser_id())) if store is not None else 0
    if mine:
        st.checkbox(t("class.bring", n=mine), key=BRING, help=t("class.bring_help"))
    else:
        st.session_state.pop(BRING, None)


def closed_page(key: str, page: st.Page, open_page: st.Page) -> st.Page:
    """A stand-in for a page closed to this browser (a lesson lock, or the Teacher page for a student).

    It keeps the page's address but is not in the menu, and the page's own code never runs: its address shows
    why and links to an open page; the default page's address (/) goes straight to the first open page.
    """

    default = page.url_path == ""  # the default page is served at /

    def closed() -> None:
        if default:
            st.switch_page(open_page)
        st.title(page.title)
        st.info(t(CLOSED_TEXTS.get(key, N_("class.page_closed"))))
        st.page_link(open_page, label=open_page.title, icon=open_page.icon)

    return st.Page(
        closed, title=page.title, icon=page.icon, url_path=page.url_path or key, default=default, visibility="hidden"
    )


CLOSED_TEXTS = {"teacher": N_("class.teacher_closed")}
