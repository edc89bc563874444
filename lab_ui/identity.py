"""Who is at this browser: an anonymous browser, a student of a class, the teacher; and what a lesson lets them see.

This is the one place the pages ask. `session.owner_id()` stays the one owner concept (every run, job and
store row is filed under it); this module decides what it resolves to:

- a browser alone (no class, the laptop case): the hash of the lab's lasting HttpOnly cookie (`lab_ui.web`),
  so its runs survive a reload and a browser restart, as before;
- a browser where a student joined a class (class code + name + PIN): the browser's identity is bound to the
  student on the server (the class store, `lm_core.classroom`), and the owner is the student's, `"s:<id>"`,
  the same in every browser where that student joined, before and after a server restart. Leaving the class
  unbinds this browser only (one click on a shared lab PC); its own anonymous runs are there again.

The teacher is not an owner: the Teacher page is unlocked per browser with the operator's teacher key, bound
on the server to the browser's identity (never kept in the URL or the page), and acts on students' runs by
their owner ids. A lesson lock (set by the teacher for a class, with an end time) narrows the pages and the
settings the class's students see; the teacher's own browser always sees everything.

Nothing here trusts the URL: the student, the teacher unlock and the lock come from the server's store keyed
by the cookie, so a student cannot widen what they see with a query parameter or another page's address.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Sequence
from typing import NamedTuple

import streamlit as st

from lm_core.classroom import lesson as lesson_rules
from lm_core.classroom import teacher
from lm_core.classroom.errors import ClassError
from lm_core.classroom.lesson import LessonLock
from lm_core.classroom.store import ClassInfo, ClassStore, Joined, StudentInfo

from . import web
from .process_state import process_object

# Session-state keys this module keeps (once per script run, by `refresh`); "owner" is `session.owner_id`'s.
BROWSER_KEY = "_identity:browser"
STUDENT_KEY = "_identity:student"
TEACHER_KEY = "_identity:teacher"
LOCK_KEY = "_identity:lock"
OWNER_KEY = "owner"
TEACHER_PAGE = "teacher"
log = logging.getLogger(__name__)


class Student(NamedTuple):
    """The student this browser is signed in as: their class and the name they chose (shown as text only)."""

    class_id: str
    class_name: str
    display_name: str


@process_object
def _class_store() -> tuple[ClassStore | None, ClassError | None]:
    """The data folder's class store, once per server process (or why it cannot be opened)."""
    try:
        return ClassStore(), None
    except ClassError as exc:
        log.warning("Classes are off: %s", exc)
        return None, exc


def class_store() -> ClassStore | None:
    """The class store while runs are saved too (a class without a run store would lose its runs); else None."""
    from .session import manager

    store, _ = _class_store()
    return store if store is not None and manager().store is not None else None


def classes_error() -> ClassError | None:
    """Why the class store could not be opened (None when it is open, or when only the run store is off)."""
    return _class_store()[1]


def browser_id() -> str:
    """This browser's identity: the hash of the lab's HttpOnly cookie (`lab_ui.web`), never the token itself.

    It is the owner of a browser alone (the same hash as before classes existed, so its runs stay its own) and
    the key a join or a teacher unlock is bound to. A client without a valid cookie (AppTest, a raw websocket
    client) gets a random identity for this session only.
    """
    if BROWSER_KEY not in st.session_state:
        try:
            token = st.context.cookies.get(web.COOKIE)
        except Exception:  # noqa: BLE001 -- no request context (AppTest)
            token = None
        if web.valid_token(token):
            browser = web.owner_of(token)
        else:
            browser = secrets.token_hex(8)
        st.session_state[BROWSER_KEY] = browser
    return st.session_state[BROWSER_KEY]


def owner_of_browser(browser: str) -> str:
    """The owner a browser's runs are filed under, outside any script run (the poll route): the student it is
    signed in as, else the browser itself. A class store that fails answers for the browser alone."""
    store, _ = _class_store()
    if store is None:
        return browser
    try:
        signed = store.signed_in(browser)
    except ClassError:
        return browser
    return signed[0].owner if signed is not None else browser


def refresh() -> None:
    """Read who this browser is from the class store: once per script run, by `session.init` (and on a join).

    Sets the owner `session.owner_id` returns, the student, the teacher unlock and the class's lesson lock.
    When the owner changed (joined, left, removed by the teacher), the pages' remembered job ids are dropped,
    so no page goes on showing a run of the previous owner.
    """
    browser = browser_id()
    store = class_store()
    signed: tuple[StudentInfo, ClassInfo] | None = None
    unlocked, lock = False, None
    if store is not None:
        try:
            signed = store.signed_in(browser)
            unlocked = store.teacher_unlocked(browser, teacher.fingerprint())
            lock = store.lock(signed[1].id) if signed is not None else None
        except ClassError as exc:  # a store that fails now: this browser is anonymous for this run
            log.warning("Class store: %s", exc)
    owner = signed[0].owner if signed is not None else browser
    previous = st.session_state.get(OWNER_KEY)
    if previous is not None and previous != owner:
        _forget_page_jobs()
    st.session_state[OWNER_KEY] = owner
    st.session_state[STUDENT_KEY] = Student(signed[1].id, signed[1].name, signed[0].name) if signed else None
    st.session_state[TEACHER_KEY] = unlocked
    st.session_state[LOCK_KEY] = lock


def _forget_page_jobs() -> None:
    """Drop every page's job id (and the URL's): they belonged to the previous owner."""
    from .i18n import PAGE_TITLES
    from .jobs_ui import job_key

    for page in PAGE_TITLES:
        st.session_state.pop(job_key(page), None)
        st.session_state.pop(f"{page}:url_checked", None)
    st.session_state.pop("my_runs:open", None)
    if "job" in st.query_params:
        del st.query_params["job"]


def current_student() -> Student | None:
    """The class and display name of the student who joined in this browser; None for a browser alone.

    Read once per script run from the class store (bound to the browser's identity cookie), so a student the
    teacher removed, or one who left the class in another tab, is anonymous again at the next rerun.
    Display names come from visitors: show them with `st.text`, a dataframe, or escaped (`lab_ui.text`).
    """
    return st.session_state.get(STUDENT_KEY)


def teacher_unlocked() -> bool:
    """True when this browser unlocked the Teacher page with the teacher key (and the unlock has not ended).

    The unlock is stored on the server against this browser's identity and the key's fingerprint: a new
    generated key (a server restart without `RNN_LAB_TEACHER_KEY`) ends every unlock made with the old one.
    """
    return bool(st.session_state.get(TEACHER_KEY))


def lesson_lock() -> LessonLock | None:
    """The lesson lock this browser's student is under now (None: no class, no lock, or the teacher's browser)."""
    lock = st.session_state.get(LOCK_KEY)
    if teacher_unlocked() or lock is None or not lock.active():
        return None
    return lock


def page_visible(page: str) -> bool:
    """Whether page `page` (a key of the entrypoint's `PAGES`, e.g. "train", "my_runs") is open to this browser.

    False for a student of a class whose lesson lock is on (its end time not passed) and leaves `page` out;
    the entrypoint leaves such pages out of the navigation, so their address does not open them either.
    The Teacher page is left out for a signed-in student whose browser is not unlocked (the key is the
    teacher's); the teacher's browser and a browser alone see every page.
    """
    if page == TEACHER_PAGE:
        return teacher_unlocked() or current_student() is None
    return lesson_rules.page_visible(lesson_lock(), page)


def setting_visible(page: str, field: str) -> bool:
    """Whether setting `field` (a `lab_ui.settings.FIELDS` name) is drawn on `page` for this browser.

    False for a student under a lesson lock that leaves `field` out: `settings.settings_ui` then draws no
    widget for it and uses the lesson's value (`lesson_value`), whatever the URL, a preset or a lesson link says.
    """
    return lesson_rules.setting_visible(lesson_lock(), page, field)


def lesson_value(page: str, field: str, default: object) -> object:
    """The value a hidden setting takes under the lesson lock: the lock's preset's, else `default` (the page's)."""
    from .presets import PRESETS

    lock = lesson_lock()
    if lock is not None and lock.preset in PRESETS:
        return PRESETS[lock.preset].get(field, default)
    return default


def display_name(owner: str) -> str | None:
    """The display name of the student whose owner id is `owner`, if they are in this browser's class.

    For the class board, which names each run's owner: None for an owner of another class, an anonymous
    browser or a removed student, so no page can look up names outside the viewer's own class (the teacher's
    browser sees every class's names). Show it as text (a dataframe, `st.text`) or escaped.
    """
    store = class_store()
    found = store.student_by_owner(owner) if store is not None else None
    if found is None:
        return None
    me = current_student()
    return found.name if teacher_unlocked() or (me is not None and me.class_id == found.class_id) else None


def join(code: str, name: str, pin: str, allow_new: bool = False, bring_along: bool = False) -> tuple[Joined, int]:
    """Sign this browser in as a student (see `ClassStore.join`); returns the join and how many runs came along.

    `bring_along`: the runs this browser made alone (stored and live) are filed under the student from now
    on; otherwise they stay with the browser and are its own again after `leave`. Raises `ClassError` (a
    wrong PIN, a wait, a full class, `NewStudent` for a name the class does not have yet when not `allow_new`).
    """
    from .session import manager

    store = class_store()
    if store is None:
        raise ClassError("error.classes.off")
    browser = browser_id()
    joined = store.join(code, name, pin, browser, allow_new=allow_new)
    moved = 0
    if bring_along:
        mgr = manager()
        mgr.reassign(browser, joined.student.owner)
        if mgr.store is not None:
            moved = mgr.store.reassign(browser, joined.student.owner)
            evicted = mgr.store.enforce_quota(joined.student.owner)
            if evicted:
                mgr.evicted[joined.student.owner] = evicted
    refresh()
    return joined, moved


def leave() -> None:
    """Sign this browser out of its class (one click on a shared PC); the student's other browsers stay in."""
    store = class_store()
    if store is not None:
        store.leave(browser_id())
    refresh()


def unlock_teacher(candidate: str) -> None:
    """Unlock the Teacher page in this browser with the teacher key (rate-limited; `ClassError` says why not)."""
    store = class_store()
    if store is None:
        raise ClassError("error.classes.off")
    store.unlock_teacher(browser_id(), teacher.key_matches(candidate), teacher.fingerprint())
    refresh()


def lock_teacher() -> None:
    """End this browser's teacher unlock (before leaving a shared or projected computer)."""
    store = class_store()
    if store is not None:
        store.lock_teacher(browser_id())
    refresh()


def settings_fixed(page: str, names: Sequence[str]) -> bool:
    """Whether the lesson lock hides any of the settings `names` on `page`: then what would set them behind the
    student's back (presets, the book button, starting from a checkpoint) is not offered either."""
    return any(not setting_visible(page, name) for name in names)


def lesson_minutes_left() -> int | None:
    """Whole minutes until this browser's lesson lock ends (at least 1), None without a lock."""
    lock = lesson_lock()
    return None if lock is None else max(1, math.ceil((lock.ends - time.time()) / 60))
