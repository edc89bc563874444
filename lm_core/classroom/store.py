"""The class store: classes, students, which browser is which student, lesson locks and failed attempts.

Its own SQLite file, `classes.sqlite`, in the run store's data folder (`RNN_LAB_DATA`): the same folder, so
one setting, one backup and one restart story; but its own file, because it holds credentials (PIN hashes;
the file is made readable by the server's user only), because the run store moves a damaged database aside
and starts afresh, which must not sign a whole class out (nor a damaged class file lose anyone's runs), and
so that servers sharing a data folder (Ray) share their classes through SQLite's own locking.

Students own runs as `"s:<student id>"` (`Student.owner`); the run store files runs under that owner like any
other. A browser is known by the hash of its identity cookie (never the cookie itself); joining binds it to a
student, leaving unbinds it. Wrong PINs and wrong teacher keys are counted here, per name (per browser for
the key) and in all, so limits hold across restarts and across the servers that share the file.
Every method may be called from any thread; a locked database is retried.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .. import limits
from ..messages import N_
from ..serve.store import data_dir
from .errors import ClassError, NewStudent
from .lesson import LessonLock
from .pins import check_pin, clean_name, hash_pin, name_key, new_code, read_code, verify_pin

DB_NAME = "classes.sqlite"
APP_ID = "rnn-lyrics-lab-classes"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000
RETRIES = 5
STUDENT_PREFIX = "s:"  # an owner id that is a student's
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (
    id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS students (
    id TEXT PRIMARY KEY, class_id TEXT NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL,
    pin_hash TEXT NOT NULL, created REAL NOT NULL, UNIQUE (class_id, name_key)
);
CREATE TABLE IF NOT EXISTS bindings (browser TEXT PRIMARY KEY, student_id TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS bindings_student ON bindings (student_id, created);
CREATE TABLE IF NOT EXISTS locks (
    class_id TEXT PRIMARY KEY, pages TEXT NOT NULL, settings TEXT, preset TEXT NOT NULL, ends REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (kind TEXT NOT NULL, subject TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_kind ON failures (kind, at);
CREATE TABLE IF NOT EXISTS unlocks (browser TEXT PRIMARY KEY, key_fingerprint TEXT NOT NULL, until REAL NOT NULL);
"""


@dataclass(frozen=True)
class ClassInfo:
    id: str
    code: str
    name: str
    created: float


@dataclass(frozen=True)
class StudentInfo:
    id: str
    class_id: str
    name: str
    created: float

    @property
    def owner(self) -> str:
        """The owner id the student's runs are filed under, in every browser they join from."""
        return f"{STUDENT_PREFIX}{self.id}"


@dataclass(frozen=True)
class Joined:
    """A successful join: who, in which class, and whether the name was new to the class."""

    student: StudentInfo
    klass: ClassInfo
    new: bool


class ClassStore:
    """The classes of one data folder (default: `RNN_LAB_DATA`)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else data_dir()
        self.path = self.folder / DB_NAME
        self._lock = threading.Lock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            self._conn = self._connect()
            if fresh:
                with contextlib.suppress(OSError):
                    os.chmod(self.path, 0o600)  # PIN hashes: the server's user only
        except (OSError, sqlite3.DatabaseError) as exc:
            raise ClassError("error.classes.store_failed", reason=str(exc)) from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise sqlite3.DatabaseError("a SQLite file of another program")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", [("app", APP_ID), ("schema", str(SCHEMA_VERSION))]
                )
                conn.commit()
            elif meta.get("app") != APP_ID:
                raise sqlite3.DatabaseError("a database of another program")
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- SQLite, retried when another server holds the lock -----------------------------------------------
    def _tx(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run `action` in one transaction (a read or a write); retry while the database is locked."""
        for attempt in range(RETRIES):
            try:
                with self._lock, self._conn:
                    return action(self._conn)
            except sqlite3.OperationalError as exc:
                if ("locked" in str(exc) or "busy" in str(exc)) and attempt < RETRIES - 1:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise ClassError("error.classes.store_failed", reason=str(exc)) from exc
            except sqlite3.DatabaseError as exc:
                raise ClassError("error.classes.store_failed", reason=str(exc)) from exc
        raise AssertionError("unreachable")

    def _rows(self, query: str, args: tuple = ()) -> list[tuple]:
        return self._tx(lambda c: c.execute(query, args).fetchall())

    # -- classes ------------------------------------------------------------------------------------------
    def create_class(self, name: str) -> ClassInfo:
        """A new class with a fresh code; refused past MAX_CLASSES or for a bad name."""
        name = clean_name(name)

        def action(c: sqlite3.Connection) -> ClassInfo:
            (count,) = c.execute("SELECT COUNT(*) FROM classes").fetchone()
            if count >= limits.MAX_CLASSES:
                raise ClassError("error.classes.too_many", n=limits.MAX_CLASSES)
            taken = {r[0] for r in c.execute("SELECT code FROM classes")}
            code = next(code for code in iter(new_code, None) if code not in taken)
            info = ClassInfo(uuid.uuid4().hex[:12], code, name, time.time())
            c.execute("INSERT INTO classes (id, code, name, created) VALUES (?, ?, ?, ?)", _class_row(info))
            return info

        return self._tx(action)

    def classes(self) -> list[ClassInfo]:
        """Every class, oldest first."""
        return [ClassInfo(*r) for r in self._rows("SELECT id, code, name, created FROM classes ORDER BY created")]

    def klass(self, class_id: str) -> ClassInfo | None:
        rows = self._rows("SELECT id, code, name, created FROM classes WHERE id = ?", (class_id,))
        return ClassInfo(*rows[0]) if rows else None

    def by_code(self, code: str) -> ClassInfo | None:
        """The class a typed code names (any case, spaces or dashes), None for no such class."""
        code = read_code(code)
        if code is None:
            return None
        rows = self._rows("SELECT id, code, name, created FROM classes WHERE code = ?", (code,))
        return ClassInfo(*rows[0]) if rows else None

    def delete_class(self, class_id: str) -> list[str]:
        """Remove a class, its students, their browsers' bindings and its lock; returns the students' owner ids
        (their runs are the run store's to delete)."""
        owners = [s.owner for s in self.students(class_id)]

        def action(c: sqlite3.Connection) -> None:
            c.execute(
                "DELETE FROM bindings WHERE student_id IN (SELECT id FROM students WHERE class_id = ?)", (class_id,)
            )
            c.execute("DELETE FROM students WHERE class_id = ?", (class_id,))
            c.execute("DELETE FROM locks WHERE class_id = ?", (class_id,))
            c.execute("DELETE FROM classes WHERE id = ?", (class_id,))

        self._tx(action)
        return owners

    # -- students ----------------------------------------------------------------------------------------
    def students(self, class_id: str) -> list[StudentInfo]:
        """A class's students, in the order they first joined."""
        rows = self._rows(
            "SELECT id, class_id, name, created FROM students WHERE class_id = ? ORDER BY created", (class_id,)
        )
        return [StudentInfo(*r) for r in rows]

    def student(self, student_id: str) -> StudentInfo | None:
        rows = self._rows("SELECT id, class_id, name, created FROM students WHERE id = ?", (student_id,))
        return StudentInfo(*rows[0]) if rows else None

    def student_by_owner(self, owner: str) -> StudentInfo | None:
        """The student whose runs are filed under `owner`; None for an anonymous browser's owner id."""
        if not owner.startswith(STUDENT_PREFIX):
            return None
        return self.student(owner.removeprefix(STUDENT_PREFIX))

    def join(self, code: str, name: str, pin: str, browser: str, allow_new: bool = False) -> Joined:
        """Sign `browser` in as student `name` of the class `code` names, with `pin`.

        A name the class has: the PIN must match (a wrong one says only "name or PIN not recognised"). A new
        name: `NewStudent` unless `allow_new` (the page asks first, so a typo does not make a second student),
        then the student is added with this PIN, hashed. Refused while too many wrong PINs were tried for this
        name (JOIN_FAILURES_PER_NAME) or on the whole server (JOIN_FAILURES_GLOBAL) within JOIN_FAILURE_WINDOW:
        the `ClassError` says how long to wait. Unknown codes count as wrong tries in the global limit.
        """
        now = time.time()
        self._refuse_while_limited(
            "join", None, limits.JOIN_FAILURES_GLOBAL, limits.JOIN_FAILURE_WINDOW, now, N_("error.classes.wait")
        )
        name, key = clean_name(name), name_key(name)
        check_pin(pin)  # a PIN of the wrong form is no guess: said as such, never counted
        klass = self.by_code(code)
        if klass is None:
            self._fail("join", "?", now)
            raise ClassError("error.classes.unknown_code")
        subject = f"{klass.id}/{key}"
        self._refuse_while_limited(
            "join",
            subject,
            limits.JOIN_FAILURES_PER_NAME,
            limits.JOIN_FAILURE_WINDOW,
            now,
            N_("error.classes.wait_name"),
        )
        rows = self._rows(
            "SELECT id, class_id, name, created, pin_hash FROM students WHERE class_id = ? AND name_key = ?",
            (klass.id, key),
        )
        if rows:
            *fields, stored = rows[0]
            if not verify_pin(pin, stored):
                self._fail("join", subject, now)
                raise ClassError("error.classes.not_recognised")
            student, new = StudentInfo(*fields), False
            self._tx(lambda c: c.execute("DELETE FROM failures WHERE kind = 'join' AND subject = ?", (subject,)))
        else:
            if not allow_new:
                raise NewStudent("error.classes.new_name", name=name, klass=klass.name)
            student, new = self._add_student(klass, name, key, hash_pin(pin)), True
        self._bind(browser, student)
        return Joined(student, klass, new)

    def _add_student(self, klass: ClassInfo, name: str, key: str, pin_hash: str) -> StudentInfo:
        def action(c: sqlite3.Connection) -> StudentInfo:
            (count,) = c.execute("SELECT COUNT(*) FROM students WHERE class_id = ?", (klass.id,)).fetchone()
            if count >= limits.MAX_STUDENTS_PER_CLASS:
                raise ClassError("error.classes.class_full", n=limits.MAX_STUDENTS_PER_CLASS)
            taken = c.execute("SELECT 1 FROM students WHERE class_id = ? AND name_key = ?", (klass.id, key)).fetchone()
            if taken:  # another browser added the same name a moment ago: its PIN decides, not this one
                raise ClassError("error.classes.not_recognised")
            student = StudentInfo(uuid.uuid4().hex[:12], klass.id, name, time.time())
            c.execute(
                "INSERT INTO students (id, class_id, name, name_key, pin_hash, created) VALUES (?, ?, ?, ?, ?, ?)",
                (student.id, klass.id, name, key, pin_hash, student.created),
            )
            return student

        return self._tx(action)

    def _bind(self, browser: str, student: StudentInfo) -> None:
        """Bind the browser to the student; past MAX_BROWSERS_PER_STUDENT the student's oldest browser is unbound."""

        def action(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR REPLACE INTO bindings (browser, student_id, created) VALUES (?, ?, ?)",
                (browser, student.id, time.time()),
            )
            c.execute(
                "DELETE FROM bindings WHERE student_id = ? AND browser NOT IN (SELECT browser FROM bindings "
                "WHERE student_id = ? ORDER BY created DESC LIMIT ?)",
                (student.id, student.id, limits.MAX_BROWSERS_PER_STUDENT),
            )

        self._tx(action)

    def signed_in(self, browser: str) -> tuple[StudentInfo, ClassInfo] | None:
        """The student (and class) `browser` joined as; None when it is not bound (or the student is gone)."""
        rows = self._rows(
            "SELECT s.id, s.class_id, s.name, s.created, c.id, c.code, c.name, c.created FROM bindings b "
            "JOIN students s ON s.id = b.student_id JOIN classes c ON c.id = s.class_id WHERE b.browser = ?",
            (browser,),
        )
        return (StudentInfo(*rows[0][:4]), ClassInfo(*rows[0][4:])) if rows else None

    def leave(self, browser: str) -> None:
        """Unbind this browser (the student's other browsers stay signed in)."""
        self._tx(lambda c: c.execute("DELETE FROM bindings WHERE browser = ?", (browser,)))

    def reset_pin(self, student_id: str, pin: str) -> None:
        """The teacher's new PIN for a student (hashed); the name's wrong tries are forgotten."""
        pin_hash = hash_pin(pin)
        student = self.student(student_id)
        if student is None:
            return
        subject = f"{student.class_id}/{name_key(student.name)}"

        def action(c: sqlite3.Connection) -> None:
            c.execute("UPDATE students SET pin_hash = ? WHERE id = ?", (pin_hash, student_id))
            c.execute("DELETE FROM failures WHERE kind = 'join' AND subject = ?", (subject,))

        self._tx(action)

    def remove_student(self, student_id: str) -> None:
        """Remove a student and sign out every browser bound to them (their runs are the run store's)."""

        def action(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM bindings WHERE student_id = ?", (student_id,))
            c.execute("DELETE FROM students WHERE id = ?", (student_id,))

        self._tx(action)

    # -- lesson locks ------------------------------------------------------------------------------------
    def set_lock(self, lock: LessonLock) -> None:
        self._tx(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO locks (class_id, pages, settings, preset, ends) VALUES (?, ?, ?, ?, ?)",
                lock.to_row(),
            )
        )

    def lift_lock(self, class_id: str) -> None:
        self._tx(lambda c: c.execute("DELETE FROM locks WHERE class_id = ?", (class_id,)))

    def lock(self, class_id: str, now: float | None = None) -> LessonLock | None:
        """The class's lesson lock while it is in force (None before, after its end, or when lifted)."""
        rows = self._rows("SELECT class_id, pages, settings, preset, ends FROM locks WHERE class_id = ?", (class_id,))
        if not rows:
            return None
        lock = LessonLock.from_row(rows[0])
        return lock if lock.active(now) else None

    # -- the teacher's unlock ----------------------------------------------------------------------------
    def unlock_teacher(self, browser: str, candidate_matches: bool, fingerprint: str) -> None:
        """Record a try of the teacher key from `browser`: unlock it for TEACHER_UNLOCK_SECONDS when it matched.

        Refused (a `ClassError` saying how long to wait) after TEACHER_FAILURES_PER_BROWSER wrong keys from this
        browser or TEACHER_FAILURES_GLOBAL in all within TEACHER_FAILURE_WINDOW, even with the right key, so
        the limit really bounds guesses; a wrong key raises `ClassError("error.classes.wrong_key")`.
        """
        now = time.time()
        window = limits.TEACHER_FAILURE_WINDOW
        wait = N_("error.classes.wait_key")
        self._refuse_while_limited("teacher", None, limits.TEACHER_FAILURES_GLOBAL, window, now, wait)
        self._refuse_while_limited("teacher", browser, limits.TEACHER_FAILURES_PER_BROWSER, window, now, wait)
        if not candidate_matches:
            self._fail("teacher", browser, now)
            raise ClassError("error.classes.wrong_key")
        until = now + limits.TEACHER_UNLOCK_SECONDS
        self._tx(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO unlocks (browser, key_fingerprint, until) VALUES (?, ?, ?)",
                (browser, fingerprint, until),
            )
        )

    def teacher_unlocked(self, browser: str, fingerprint: str, now: float | None = None) -> bool:
        rows = self._rows("SELECT key_fingerprint, until FROM unlocks WHERE browser = ?", (browser,))
        now = time.time() if now is None else now
        return bool(rows) and rows[0][0] == fingerprint and rows[0][1] > now

    def lock_teacher(self, browser: str) -> None:
        """End this browser's teacher unlock (the Teacher page's "Lock" on a shared PC)."""
        self._tx(lambda c: c.execute("DELETE FROM unlocks WHERE browser = ?", (browser,)))

    # -- failed attempts ---------------------------------------------------------------------------------
    def _fail(self, kind: str, subject: str, now: float) -> None:
        window = limits.JOIN_FAILURE_WINDOW if kind == "join" else limits.TEACHER_FAILURE_WINDOW

        def action(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM failures WHERE kind = ? AND at < ?", (kind, now - window))
            c.execute("INSERT INTO failures (kind, subject, at) VALUES (?, ?, ?)", (kind, subject, now))

        self._tx(action)

    def _refuse_while_limited(
        self, kind: str, subject: str | None, limit: int, window: float, now: float, key: str
    ) -> None:
        """Raise `ClassError(key, minutes=...)` (the minutes until a try is allowed again) while `limit` failures
        of `kind` (for `subject`, or in all when None) fall within the last `window` seconds."""
        where, args = ("kind = ? AND at >= ?", (kind, now - window))
        if subject is not None:
            where, args = where + " AND subject = ?", (*args, subject)
        rows = self._rows(f"SELECT at FROM failures WHERE {where} ORDER BY at DESC LIMIT ?", (*args, limit))
        if len(rows) < limit:
            return
        free_at = rows[-1][0] + window  # the oldest of the last `limit` failures leaves the window then
        raise ClassError(key, minutes=max(1, math.ceil((free_at - now) / 60)))


def _class_row(info: ClassInfo) -> tuple:
    return info.id, info.code, info.name, info.created
