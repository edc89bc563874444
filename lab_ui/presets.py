"""Named settings for the chapter's experiments (one place for every page).

Each preset is a dict of widget values (see `settings.FIELDS`), plus page-level
keys such as `compare` (a second model trained in lockstep on the Train page).
"""

from __future__ import annotations

from typing import Any

from lm_core.training import book_config

from .settings import defaults_from

Preset = dict[str, Any]


def _book(model: str, sampling: str, **extra: Any) -> Preset:
    return {**defaults_from(book_config(model, sampling, seed=0)), **extra}


PRESETS: dict[str, Preset] = {
    "book_random": _book("scratch-rnn", "random"),
    "book_adjacent": _book("scratch-rnn", "adjacent"),
    "no_clip": _book("scratch-rnn", "random", clip_on=False, epochs=50),
    "gru_vs_rnn": _book("scratch-rnn", "adjacent", epochs=160, compare="scratch-gru"),
    "quick_demo": {**_book("gru", "adjacent"), "epochs": 30, "compare": "none"},
}
for name in ("book_random", "book_adjacent", "no_clip"):
    PRESETS[name]["compare"] = "none"

PRESET_LABELS: dict[str, tuple[str, str]] = {
    "book_random": ("书中的随机采样实验（RNN，250 周期）", "The book's random sampling run (RNN, 250 epochs)"),
    "book_adjacent": ("书中的相邻采样实验（RNN，250 周期）", "The book's adjacent sampling run (RNN, 250 epochs)"),
    "no_clip": ("不裁剪梯度（看它爆炸）", "No clipping (watch it explode)"),
    "gru_vs_rnn": ("GRU vs RNN（从零实现，同一种子）", "GRU vs RNN (from scratch, same seed)"),
    "quick_demo": ("20 秒快速演示（nn.GRU + Adam）", "Quick 20-second demo (nn.GRU + Adam)"),
}
