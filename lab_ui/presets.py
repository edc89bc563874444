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
from .settings import FIELDS, apply_values, defaults_from, first_visit, link_values

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
CUSTOM_PRESET = "custom"  # the box's entry for settings that are no preset's (a shared link's own)
PRESET_NOTES = {
    "book_random": N_("presets.book_random_note"),
    "book_adjacent": N_("presets.book_adjacent_note"),
    "no_clip": N_("presets.no_clip_note"),
    "gru_vs_rnn": N_("presets.gru_vs_rnn_note"),
    "quick_demo": N_("presets.quick_demo_note"),
}


def _same(values: Preset, preset: Preset) -> bool:
    """Whether every setting in `values` is the preset's (θ counts only where clipping is on)."""
    clipping = values.get("clip_on", preset.get("clip_on"))
    return all(preset.get(n) == v for n, v in values.items() if n != "clip" or clipping)


def linked_preset(page: str, only: Callable[[Preset], Preset]) -> str | None:
    """On a page's first visit by a link that carries settings: the preset they are, else `CUSTOM_PRESET`.

    The box must name the settings shown beside it; a lesson link's own settings are no preset's, and naming
    the first preset (with its note) would tell the class they are looking at another experiment.
    """
    if not first_visit(page):
        return None
    fields = set(only({name: None for name in FIELDS}))  # the settings this page shows
    linked = link_values(fields)
    if not linked:
        return None
    return next((name for name, p in PRESETS.items() if _same(linked, only(p))), CUSTOM_PRESET)


def _label(name: str) -> str:
    return t("presets.custom") if name == CUSTOM_PRESET else t(PRESET_LABELS[name])


def preset_ui(page: str, only: Callable[[Preset], Preset] = lambda p: p, help_: str | None = None) -> str:
    """Preset selectbox, its Apply button and a note on what it reproduces; returns the preset name.

    `only` keeps the values a page uses (e.g. the Sampling page drops `sampling`). Settings that are no preset's
    (a shared link's) show as `CUSTOM_PRESET`, with nothing to apply.
    """
    preset_col, apply_col = st.columns([3, 1])
    key = f"{page}:preset"
    linked = linked_preset(page, only)
    if linked is not None:
        st.session_state[key] = linked
    persist.restore(key)  # else a page switch shows the first preset beside the settings the user applied
    options = [*PRESETS, CUSTOM_PRESET]
    with preset_col:
        name = st.selectbox(
            t("common.preset"),
            options,
            key=key,
            help=t("common.preset_help"),
            format_func=labels(options, _label),
        )
    persist.save(key)
    with apply_col:
        st.write("")
        st.button(
            t("common.apply_preset"),
            key=f"{page}:apply",
            on_click=apply_values,
            args=(page, only(PRESETS.get(name, {}))),
            help=help_,
            width="stretch",
            disabled=name == CUSTOM_PRESET,
        )
    st.caption(t("presets.custom_note") if name == CUSTOM_PRESET else t(PRESET_NOTES[name]))
    return name
