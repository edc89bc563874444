"""Named settings for the chapter's experiments (one place for every page).

Each preset is a dict of widget values (see `settings.FIELDS`), plus page-level
keys such as `compare` (a second model trained in lockstep on the Train page).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from lm_core.training import book_config

from . import persist
from .i18n import N_, labels, t
from .settings import apply_values, defaults_from

Preset = dict[str, Any]


def _book(model: str, sampling: str, **extra: Any) -> Preset:
    return {**defaults_from(book_config(model, sampling, seed=0)), **extra}


PRESETS: dict[str, Preset] = {
    "book_random": _book("scratch-rnn", "random"),
    "book_adjacent": _book("scratch-rnn", "adjacent"),
    "no_clip": _book("scratch-rnn", "random", clip_on=False, epochs=50),
    "gru_vs_rnn": _book("scratch-rnn", "adjacent", epochs=160, compare="scratch-gru"),
    # Sized so its promise holds on a loaded 2-core machine: GRU 128, 20 epochs of the default corpus took
    # 0.55-2.7 s per epoch at one thread (idle to heavily loaded), i.e. 11-54 s; perplexity ~3 by epoch 20.
    "quick_demo": {**_book("gru", "adjacent"), "hidden": 128, "epochs": 20, "compare": "none"},
}
for name in ("book_random", "book_adjacent", "no_clip"):
    PRESETS[name]["compare"] = "none"

# Each preset's name in the menu and its note: what it reproduces, and where it follows the book rather than the
# widely copied PyTorch port.
PRESET_LABELS = {
    "book_random": N_("presets.book_random"),
    "book_adjacent": N_("presets.book_adjacent"),
    "no_clip": N_("presets.no_clip"),
    "gru_vs_rnn": N_("presets.gru_vs_rnn"),
    "quick_demo": N_("presets.quick_demo"),
}
PRESET_NOTES = {
    "book_random": N_("presets.book_random_note"),
    "book_adjacent": N_("presets.book_adjacent_note"),
    "no_clip": N_("presets.no_clip_note"),
    "gru_vs_rnn": N_("presets.gru_vs_rnn_note"),
    "quick_demo": N_("presets.quick_demo_note"),
}


def preset_ui(page: str, only: Callable[[Preset], Preset] = lambda p: p, help_: str | None = None) -> str:
    """Preset selectbox, its Apply button and a note on what it reproduces; returns the preset name.

    `only` keeps the values a page uses (e.g. the Sampling page drops `sampling`).
    """
    preset_col, apply_col = st.columns([3, 1])
    key = f"{page}:preset"
    persist.restore(key)  # else a page switch shows the first preset beside the settings the user applied
    with preset_col:
        name = st.selectbox(
            t("common.preset"),
            list(PRESETS),
            key=key,
            help=t("common.preset_help"),
            format_func=labels(PRESETS, lambda k: t(PRESET_LABELS[k])),
        )
    persist.save(key)
    with apply_col:
        st.write("")
        st.button(
            t("common.apply_preset"),
            key=f"{page}:apply",
            on_click=apply_values,
            args=(page, only(PRESETS[name])),
            help=help_,
            width="stretch",
        )
    st.caption(t(PRESET_NOTES[name]))
    return name
