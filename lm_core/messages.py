"""Every sentence a visitor reads, looked up by key in one gettext catalogue per language.

The catalogues are `locales/<language>/LC_MESSAGES/lab.po` beside this file:
`msgid` is a stable key (`train.title`, `error.corpus.empty`: the part before
the first dot says where the text is shown, `common.` for shared ones,
`error.` for the engine's messages) and `msgstr` the text, a `str.format`
template. English (`en`) is the source every other catalogue translates; a
key missing from a translation falls back to it. The UI (`lab_ui.i18n.t`),
the engine's errors (`errors.LabError`) and the command line read them here,
parsed once per process at first use (Babel reads the `.po` text; nothing is
compiled). How to add a string or a language: docs/translating.md.

A text's parameters may themselves need the language (a list, a nested
error, a count of characters): such a value has a `localize(lang)` method and
is rendered in the same language as the text around it.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "lab"
SOURCE_LANG = "en"  # the catalogue the others translate; `str(error)`, logs and the command line use it
LANGS = ("zh", "en", "zh-Hant")  # the UI's language codes (URL `lang=`), in the language switch's order
DEFAULT_LANG = "zh"  # the book and most users are Chinese


@runtime_checkable
class Localizable(Protocol):
    """A parameter whose text depends on the language it is shown in."""

    def localize(self, lang: str) -> str: ...


def locale_id(lang: str) -> str:
    """The catalogue folder of a UI language code: `zh-Hant` (a URL's spelling) is gettext's `zh_Hant`."""
    return lang.replace("-", "_")


def catalogue_path(lang: str) -> Path:
    return LOCALES / locale_id(lang) / "LC_MESSAGES" / f"{DOMAIN}.po"


def N_(key: str) -> str:
    """Mark `key` as a catalogue key where it is stored for a later lookup (gettext's `N_`): returns it unchanged.

    The catalogue check finds every key in the code by its literal in `t(...)`, `N_(...)` or an error's
    first argument, so a key kept in a table or a dataclass is written as `N_("page.key")`.
    """
    return key


@functools.cache
def catalogue(lang: str) -> Mapping[str, str]:
    """`{key: text}` of one language, parsed at first use (an absent catalogue is empty: texts fall back)."""
    from babel.messages.pofile import read_po  # import here: only processes that show a text pay for Babel

    path = catalogue_path(lang)
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        parsed = read_po(f, locale=locale_id(lang), domain=DOMAIN)
    return {m.id: m.string for m in parsed if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def has_key(key: str) -> bool:
    return key in catalogue(SOURCE_LANG)


def template(key: str, lang: str) -> str | None:
    """The raw text of `key` in `lang`, else in English; None when the key is in no catalogue."""
    return catalogue(lang).get(key) or catalogue(SOURCE_LANG).get(key)


def render(value: Any, lang: str) -> Any:
    """A parameter as shown in `lang`: a `Localizable` becomes its text there, anything else stays as it is."""
    return value.localize(lang) if isinstance(value, Localizable) else value


def fill(text: str, lang: str, params: Mapping[str, Any]) -> str:
    """`text.format(**params)` with each parameter rendered in `lang`; a text without parameters is left as it is.

    A template that does not fit its parameters (a translation naming a field the code does not pass)
    is shown unformatted rather than failing: the catalogue check catches that before it ships.
    """
    if not params:
        return text
    try:
        return text.format(**{name: render(value, lang) for name, value in params.items()})
    except (KeyError, IndexError, ValueError):
        return text


def text(key: str, lang: str = SOURCE_LANG, /, **params: Any) -> str:
    """The text of `key` in `lang`, formatted with `params`. A key in no catalogue raises `KeyError`."""
    found = template(key, lang)
    if found is None:
        raise KeyError(key)
    return fill(found, lang, params)


def placeholders(text: str) -> set[str]:
    """The `{field!conversion:spec}` placeholders of a template, written out (what every translation must keep)."""
    out = set()
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is not None:
            out.add("{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}")
    return out


@dataclass(frozen=True)
class Message:
    """A catalogue text still to be rendered: a key and its parameters (plain, picklable data).

    Errors carry one (`errors.LabError`), so they are shown in whatever language the reader has chosen,
    not the one in force where they were raised.
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def localize(self, lang: str) -> str:
        found = template(self.key, lang)
        # Not a key: a sentence from outside (another program's message) is shown as it is.
        return self.key if found is None else fill(found, lang, self.params)


@dataclass(frozen=True)
class Listed:
    """Items joined the way a language lists them (`a, b` in English, `a、b` in Chinese)."""

    items: Sequence[Any]

    def localize(self, lang: str) -> str:
        return text(N_("common.list_separator"), lang).join(str(render(item, lang)) for item in self.items)
