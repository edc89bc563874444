"""Errors that carry a message meant for the person at the keyboard.

Everything the UI or the CLI can cause by bad input raises a subclass of
`LabError` whose text is one sentence a user can act on; callers show it
verbatim instead of a traceback. An error names its sentence by a catalogue
key and the facts that fill it (`CorpusError("error.corpus.empty", name=...)`,
see `messages`): `str(exc)` is the English text (the CLI and the logs), and
`localized(exc, lang)` the same facts in the reader's language.
"""

from __future__ import annotations

from typing import Any

from .messages import SOURCE_LANG, Message


class LabError(Exception):
    """Base class: the message is written for the user, not for a developer.

    `LabError(key, **params)`: `key` names the sentence in the catalogues, `params` fill its
    placeholders (a parameter may be `Localizable`, e.g. a `Cause` or `messages.Listed`). A first
    argument that is not a catalogue key is shown as it is, in every language.
    """

    def __init__(self, key: str, /, **params: Any) -> None:
        self.message = Message(key, params)
        super().__init__(self.message.localize(SOURCE_LANG))

    @property
    def key(self) -> str:
        return self.message.key

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.message.params)

    def localize(self, lang: str) -> str:
        return self.message.localize(lang)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from key and parameters whatever a subclass's constructor takes (an error may cross processes).
        return _rebuild, (type(self), self.message), self.__dict__


def _rebuild(cls: type[LabError], message: Message) -> LabError:
    exc = cls.__new__(cls)
    LabError.__init__(exc, message.key, **message.params)
    return exc


class CorpusError(LabError):
    """The corpus cannot be read or is unusable (empty, binary, too short, ...)."""


class ConfigError(LabError):
    """A training or generation setting is out of its valid range."""


class VocabularyError(LabError):
    """Text contains characters the model has never seen."""


class CheckpointError(LabError):
    """A checkpoint file is missing, corrupt, or does not fit the current model."""


class Cause:
    """Another exception quoted inside a message, by its first line, in the message's language.

    A `LabError` keeps its key (so a Chinese message quotes its Chinese text); any other exception
    is quoted by its own text (English, as its library wrote it), or its type when it has none.
    Only text is kept: no traceback or frame outlives the message.
    """

    def __init__(self, exc: BaseException) -> None:
        self.inner: Message | str = exc.message if isinstance(exc, LabError) else (str(exc) or type(exc).__name__)

    def localize(self, lang: str) -> str:
        text = (self.inner.localize(lang) if isinstance(self.inner, Message) else self.inner).strip()
        return text.splitlines()[0][:200] if text else ""


def detached(exc: LabError) -> LabError:
    """The error's message alone, without traceback, cause or subclass, to keep in a cache.

    A cached error outlives the request: its frames may hold a whole uploaded file, and
    the text must be picked (`localized`) when shown, so a language switch still reads right.
    """
    return LabError(exc.key, **exc.params)


def localized(exc: BaseException, lang: str) -> str:
    """The user-facing text of `exc` in `lang` (any other exception: `str(exc)`)."""
    return exc.localize(lang) if isinstance(exc, LabError) else str(exc)
