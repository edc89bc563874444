"""A lesson lock: which pages and which settings a class's students see, until an end time.

The teacher sets it for one class (e.g. only Train, with only epochs and learning rate) and can lift it
early; past its end time it is simply not in force. The rules are plain functions of the lock, so the
entrypoint's navigation, the settings widgets and the tests ask the same question the same way.
A setting a lock hides takes the lesson's value: the preset the teacher chose, else the page's own default.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..limits import MAX_LESSON_MINUTES
from .errors import ClassError


@dataclass(frozen=True)
class LessonLock:
    """What a class's students see until `ends` (seconds since the epoch).

    `pages`: the page keys students see (the entrypoint's `PAGES`); `settings`: the setting names they see
    on those pages (`lab_ui.settings.FIELDS`), None for all of them; `preset`: whose values the hidden
    settings take ("" = each page's defaults).
    """

    class_id: str
    pages: frozenset[str]
    settings: frozenset[str] | None
    preset: str
    ends: float

    def active(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.ends

    def page_open(self, page: str) -> bool:
        return page in self.pages

    def setting_open(self, field: str) -> bool:
        return self.settings is None or field in self.settings

    def to_row(self) -> tuple[str, str, str | None, str, float]:
        settings = None if self.settings is None else json.dumps(sorted(self.settings))
        return self.class_id, json.dumps(sorted(self.pages)), settings, self.preset, self.ends

    @classmethod
    def from_row(cls, row: tuple) -> LessonLock:
        class_id, pages, settings, preset, ends = row
        return cls(
            class_id,
            frozenset(json.loads(pages)),
            None if settings is None else frozenset(json.loads(settings)),
            preset,
            float(ends),
        )


def make_lock(
    class_id: str,
    pages: Iterable[str],
    settings: Iterable[str] | None,
    minutes: int,
    preset: str = "",
    now: float | None = None,
) -> LessonLock:
    """A lock from the teacher's choices; at least one page, 1 to MAX_LESSON_MINUTES minutes."""
    pages = frozenset(pages)
    if not pages:
        raise ClassError("error.classes.lock_no_page")
    if not isinstance(minutes, int) or not 1 <= minutes <= MAX_LESSON_MINUTES:
        raise ClassError("error.classes.lock_minutes", n=MAX_LESSON_MINUTES)
    start = time.time() if now is None else now
    return LessonLock(class_id, pages, None if settings is None else frozenset(settings), preset, start + minutes * 60)


def page_visible(lock: LessonLock | None, page: str, now: float | None = None) -> bool:
    """Whether a student under `lock` (None: no lock) sees page `page` now."""
    return lock is None or not lock.active(now) or lock.page_open(page)


def setting_visible(lock: LessonLock | None, page: str, field: str, now: float | None = None) -> bool:
    """Whether a student under `lock` sees setting `field` on `page` now (a hidden page shows nothing)."""
    if lock is None or not lock.active(now):
        return True
    return lock.page_open(page) and lock.setting_open(field)
