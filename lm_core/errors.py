"""Errors that carry a message meant for the person at the keyboard.

Everything the UI or the CLI can cause by bad input raises a subclass of
`LabError` whose `str()` is one sentence a user can act on; callers show it
verbatim instead of a traceback.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class: the message is written for the user, not for a developer."""


class CorpusError(LabError):
    """The corpus cannot be read or is unusable (empty, binary, too short, ...)."""


class ConfigError(LabError):
    """A training or generation setting is out of its valid range."""


class VocabularyError(LabError):
    """Text contains characters the model has never seen."""


class CheckpointError(LabError):
    """A checkpoint file is missing, corrupt, or does not fit the current model."""
