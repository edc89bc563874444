"""The session's language and `t(key)`: every label, help text and explanation comes from the catalogues.

Texts live in one gettext catalogue per language (`lm_core/locales`, read by
`lm_core.messages`), named by keys such as `train.title` (`common.` for the
ones several pages share). `t("key", **fmt)` gives the text in the language
chosen in the sidebar (kept in the URL as `lang`); `t.md` escapes the
arguments for a Markdown-rendering call. A key in no catalogue raises, so a
typo fails loudly in tests rather than showing a raw key to a class.
How to add a string: docs/translating.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import streamlit as st

from lm_core import messages
from lm_core.messages import DEFAULT_LANG, LANGS, N_

from .text import escape_markdown

if TYPE_CHECKING:
    from lm_core.serve.store import RunRecord

__all__ = [
    "DEFAULT_LANG",
    "LANGS",
    "N_",
    "PAGE_TITLES",
    "current_lang",
    "labels",
    "model_label",
    "multiselect_words",
    "run_label",
    "t",
]

# The name of each language in itself, as the language switch shows it.
LANG_NAMES = {"zh": N_("common.lang_zh"), "en": N_("common.lang_en"), "zh-Hant": N_("common.lang_zh_hant")}
MODEL_LABELS = {
    "scratch-rnn": N_("common.model_scratch_rnn"),
    "scratch-gru": N_("common.model_scratch_gru"),
    "scratch-lstm": N_("common.model_scratch_lstm"),
    "rnn": N_("common.model_rnn"),
    "gru": N_("common.model_gru"),
    "lstm": N_("common.model_lstm"),
}
# Each page's title in the menu, by the page's key (`PAGE` in its file, the entrypoint's `PAGES`).
PAGE_TITLES = {
    "train": N_("common.page_train"),
    "sampling": N_("common.page_sampling"),
    "hidden": N_("common.page_hidden"),
    "clipping": N_("common.page_clipping"),
    "generalise": N_("common.page_generalise"),
    "generate": N_("common.page_generate"),
    "gradients": N_("common.page_gradients"),
    "lessons": N_("common.page_lessons"),
    "my_runs": N_("common.page_my_runs"),
    "board": N_("common.page_board"),
    "teacher": N_("common.page_teacher"),
}
# A job stores language-free run keys; these are their names (a model kind is named by `model_label`).
RUN_LABELS = {
    "random": N_("common.run_random"),
    "adjacent": N_("common.run_adjacent"),
    "noclip": N_("common.run_noclip"),
    "small": N_("common.run_small"),  # the memorise-or-generalise lesson's two corpora
    "large": N_("common.run_large"),
    "detach": N_("common.run_detach"),  # the Train page's "not detached" comparison
    "no_detach": N_("common.run_no_detach"),
}


def current_lang() -> str:
    lang = st.session_state.get("lang") or st.query_params.get("lang", DEFAULT_LANG)
    return lang if lang in LANGS else DEFAULT_LANG


class Translator:
    """`t("key", **fmt)`: the text of `key` in the current language, formatted."""

    def __call__(self, key: str, **fmt: object) -> str:
        return messages.text(key, current_lang(), **fmt)

    def md(self, key: str, **fmt: object) -> str:
        """The text for a Markdown-rendering call: every text argument escaped, so it shows as typed.

        Use it whenever an argument can come from a visitor, a URL or a file
        (names, notes, messages quoting them); numbers are formatted as usual.
        """
        lang = current_lang()
        shown = {k: messages.render(v, lang) for k, v in fmt.items()}
        return self(key, **{k: escape_markdown(v) if isinstance(v, str) else v for k, v in shown.items()})


t = Translator()


def labels(options: Iterable[Any], fmt: Callable[[Any], str]) -> Callable[[Any], str]:
    """A widget's `format_func` with every option's label made now, in this run's language.

    Streamlit's test harness calls `format_func` again outside the script run, where the session's
    language is unknown; labels bound here read the same there as on the page.
    """
    shown = {option: fmt(option) for option in options}
    return lambda option: shown[option] if option in shown else str(option)


def multiselect_words() -> dict[str, Any]:
    """A multiselect's own words in the page's language: its placeholder (Streamlit's is "Choose options"), and
    no "Select all" entry outside English (the browser writes it in English, with no parameter to change it)."""
    return {"placeholder": t("common.choose"), "select_all": current_lang() == "en"}


def model_label(kind: str) -> str:
    """A model kind as shown to the user, in the current language (an unknown kind as it is)."""
    return t(MODEL_LABELS[kind]) if kind in MODEL_LABELS else kind


def run_label(key: str, clip: float | None = None) -> str:
    """A run's name in the current language from the language-free key its job stores.

    Keys are a sampling mode ("random", "adjacent"), "clip"/"noclip" (with the run's θ), a
    lesson corpus ("small", "large") or a model kind; anything else (a job from an older
    version) is shown as it is.
    """
    if key in RUN_LABELS:
        return t(RUN_LABELS[key])
    if key == "clip":
        return t("common.run_clip", theta=f"{clip:g}" if clip is not None else "?")
    return model_label(key)


def stored_run_label(record: RunRecord) -> str:
    """A stored run's name (a `RunRecord`): its label key, with the θ its own settings clipped at."""
    return run_label(record.label, record.config.get("clip"))
