"""The one error of the class features: what a teacher or a student did that the class store refuses."""

from __future__ import annotations

from ..errors import LabError


class ClassError(LabError):
    """A class action refused with a reason the person can act on (a full class, a PIN's form, a wait)."""


class NewStudent(ClassError):
    """The name is not in the class yet: joining would add a new student (the page asks before it does)."""
