"""Errors that carry a message meant for the person at the keyboard.

Everything the UI or the CLI can cause by bad input raises a subclass of
`LabError` whose `str()` is one sentence a user can act on; callers show it
verbatim instead of a traceback. The same sentence in Chinese travels along
as `exc.zh`; `localized(exc, lang)` picks the one to show.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class: the message is written for the user, not for a developer.

    `str(exc)` is the English message; `exc.zh` the same facts in Chinese (None if missing).
    """

    def __init__(self, message: str, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh


class CorpusError(LabError):
    """The corpus cannot be read or is unusable (empty, binary, too short, ...)."""


class ConfigError(LabError):
    """A training or generation setting is out of its valid range."""


class VocabularyError(LabError):
    """Text contains characters the model has never seen."""


class CheckpointError(LabError):
    """A checkpoint file is missing, corrupt, or does not fit the current model."""


def detached(exc: LabError) -> LabError:
    """The error's two texts alone, without traceback, cause or subclass, to keep in a cache.

    A cached error outlives the request: its frames may hold a whole uploaded file, and
    the text must be picked (`localized`) when shown, so a language switch still reads right.
    """
    return LabError(str(exc), zh=exc.zh)


def localized(exc: BaseException, lang: str) -> str:
    """The user-facing text of `exc` in `lang`: its Chinese text for "zh" when it has one, else `str(exc)`."""
    zh = getattr(exc, "zh", None)
    return zh if lang == "zh" and zh else str(exc)
