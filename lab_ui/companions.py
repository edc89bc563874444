"""Models to draw beside the chosen one on the same text (the Gradients through time page): other models of
the picker with the same vocabulary, and a fresh untrained model of each kind. Nothing is built until drawn."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from lm_core.models import MODEL_KINDS, CharModel

from .i18n import model_label, t
from .model_cache import (
    cached_model,
    fresh_model,
    fresh_weights_key,
    upload_weights_key,
    uploaded_checkpoint,
)
from .model_source import UPLOAD_KEY, ModelChoice, option_weights, picker_options


@dataclass
class Companion:
    """A model that reads the same characters as the chosen one, to draw beside it (built only when used)."""

    key: str  # cache key of its weights
    label: str
    load: Callable[[], CharModel]


def companions(choice: ModelChoice) -> dict[str, Companion]:
    """Other picker models with the same vocabulary, then a fresh untrained model of each kind.

    The others are this session's runs, shipped files and the held upload. Fresh models take the chosen model's
    vocabulary and hidden size, so any text the chosen model reads they read too. Nothing is built here: with
    2,048 hidden units six fresh models would take seconds and gigabytes.
    """
    out: dict[str, Companion] = {}
    for oid, option in picker_options().items():
        if oid == choice.option or option.source not in ("session", "shipped") or not option.ok:
            continue
        key, ckpt, _ = option_weights(option)
        if ckpt is not None and ckpt.vocab == choice.vocab:
            out[oid] = Companion(key, option.label, functools.partial(cached_model, key, ckpt))
    held = st.session_state.get(UPLOAD_KEY)
    if held is not None and choice.source != "upload":
        ckpt, _ = uploaded_checkpoint(held[1], held[0], held[2])
        if ckpt is not None and ckpt.vocab == choice.vocab:
            key = upload_weights_key(held[1])
            out["upload"] = Companion(
                key, t("model_source.opt_uploaded", name=held[0]), functools.partial(cached_model, key, ckpt)
            )
    V, h = len(choice.vocab), choice.model.num_hiddens
    for kind in MODEL_KINDS:
        key = fresh_weights_key(kind, V, h)
        out[key] = Companion(
            key, t("model_source.opt_fresh", label=model_label(kind)), functools.partial(fresh_model, kind, V, h)
        )
    return out
