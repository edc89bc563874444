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

from typing import NamedTuple


class Student(NamedTuple):
    """The student this browser is signed in as: their class and the name they chose (shown as text only)."""

    class_id: str
    class_name: str
    display_name: str


def current_student() -> Student | None:
    """The class and display name of the student who joined in this browser; None for a browser alone.

    Read once per script run from the class store (bound to the browser's identity cookie), so a student the
    teacher removed, or one who left the class in another tab, is anonymous again at the next rerun.
    Display names come from visitors: show them with `st.text`, a dataframe, or escaped (`lab_ui.text`).
    """
    return None


def teacher_unlocked() -> bool:
    """True when this browser unlocked the Teacher page with the teacher key (and the unlock has not ended).

    The unlock is stored on the server against this browser's identity and the key's fingerprint: a new
    generated key (a server restart without `RNN_LAB_TEACHER_KEY`) ends every unlock made with the old one.
    """
    return False


def page_visible(page: str) -> bool:
    """Whether page `page` (a key of the entrypoint's `PAGES`, e.g. "train", "my_runs") is open to this browser.

    False only for a student of a class whose lesson lock is on (its end time not passed) and leaves `page`
    out; the entrypoint leaves such pages out of the navigation, so their address does not open them either.
    The teacher's browser and a browser alone see every page.
    """
    return True


def setting_visible(page: str, field: str) -> bool:
    """Whether setting `field` (a `lab_ui.settings.FIELDS` name) is drawn on `page` for this browser.

    False for a student under a lesson lock that leaves `field` out: `settings.settings_ui` then draws no
    widget for it and uses the lesson's value, whatever the URL, a preset or a lesson link says.
    """
    return True


def lesson_value(page: str, field: str, default: object) -> object:
    """The value a hidden setting takes under the lesson lock: the lock's preset's, else `default` (the page's)."""
    return default


def display_name(owner: str) -> str | None:
    """The display name of the student whose owner id is `owner`, if they are in this browser's class.

    For the class board, which names each run's owner: None for an owner of another class, an anonymous
    browser or a removed student, so no page can look up names outside the viewer's own class (the teacher's
    browser sees every class's names).
    """
    return None
