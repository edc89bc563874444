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
from .i18n import current_lang, t
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

PRESET_LABELS: dict[str, tuple[str, str]] = {
    "book_random": ("书中的随机采样实验（RNN，250 周期）", "The book's random sampling run (RNN, 250 epochs)"),
    "book_adjacent": ("书中的相邻采样实验（RNN，250 周期）", "The book's adjacent sampling run (RNN, 250 epochs)"),
    "no_clip": ("不裁剪梯度（看它爆炸）", "No clipping (watch it explode)"),
    "gru_vs_rnn": ("GRU vs RNN（从零实现，同一种子）", "GRU vs RNN (from scratch, same seed)"),
    "quick_demo": ("1 分钟内的快速演示（nn.GRU + Adam）", "Quick demo, under a minute (nn.GRU + Adam)"),
}

# What each preset reproduces, and where it follows the book rather than the widely copied PyTorch port.
PRESET_NOTES: dict[str, tuple[str, str]] = {
    "book_random": (
        "与书中相同：每个小批量前把隐藏状态重置为零。书中第 50/100/150/200/250 周期的困惑度为 70.0/9.73/2.86/1.60/1.30"
        "（周杰伦歌词语料）。",
        "As the book: the hidden state is reset to zero before every minibatch. The book printed perplexity "
        "70.0/9.73/2.86/1.60/1.30 at epochs 50/100/150/200/250 (Jay Chou lyrics corpus).",
    ),
    "book_adjacent": (
        "与书中从零实现相同：每个周期开始时重置隐藏状态，之后在小批量之间传递（并分离计算图）。"
        "流传的 PyTorch 移植版从不在周期之间重置，本应用不照搬。书中：59.5/6.80/2.06/1.30/1.16。",
        "As the book's scratch code: the state is reset at the start of each epoch and carried (detached) across "
        "minibatches. The widely copied PyTorch port never resets it between epochs; this app does not copy that. "
        "Book: 59.5/6.80/2.06/1.30/1.16.",
    ),
    "no_clip": (
        "同书中设置，但不裁剪梯度：学习率 100 的 SGD 会在几步内发散，应用会标出发散点，而不是崩溃。",
        "The book's settings without clipping: SGD at lr 100 diverges within a few steps; the app marks where, "
        "instead of crashing.",
    ),
    "gru_vs_rnn": (
        "同一种子、同一语料，从零实现的 RNN 与 GRU 同步训练（相邻采样，SGD 学习率 100，θ = 0.01，如书中 GRU 一章）。",
        "RNN and GRU from scratch, same seed and corpus, trained in lockstep (adjacent sampling, SGD lr 100, "
        "θ = 0.01, as in the book's GRU chapter).",
    ),
    "quick_demo": (
        "torch.nn.GRU（128 个隐藏单元）+ Adam（学习率 0.01），20 个周期：在双核机器上用内置宋词约需 15–60 秒"
        "（其他人同时训练时更久），结束时已能写出像样的句子。梯度裁剪照常生效（流传的移植版里裁剪其实从未发生）。",
        "torch.nn.GRU (128 hidden units) + Adam (lr 0.01), 20 epochs: about 15-60 seconds on the bundled Song ci "
        "on a 2-core machine (longer while others train), with readable lines by the end. Clipping really happens "
        "here (in the widely copied port it silently never did).",
    ),
}


def _pick(pair: tuple[str, str]) -> str:
    return pair[0 if current_lang() == "zh" else 1]


def preset_ui(page: str, only: Callable[[Preset], Preset] = lambda p: p, help_: str | None = None) -> str:
    """Preset selectbox, its Apply button and a note on what it reproduces; returns the preset name.

    `only` keeps the values a page uses (e.g. the Sampling page drops `sampling`).
    """
    preset_col, apply_col = st.columns([3, 1])
    key = f"{page}:preset"
    persist.restore(key)  # else a page switch shows the first preset beside the settings the user applied
    with preset_col:
        name = st.selectbox(
            t("preset"),
            list(PRESETS),
            key=key,
            help=t("preset_help"),
            format_func=lambda k: _pick(PRESET_LABELS[k]),
        )
    persist.save(key)
    with apply_col:
        st.write("")
        st.button(
            t("apply_preset"),
            key=f"{page}:apply",
            on_click=apply_values,
            args=(page, only(PRESETS[name])),
            help=help_,
            width="stretch",
        )
    st.caption(_pick(PRESET_NOTES[name]))
    return name
