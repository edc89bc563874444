"""The presets' texts tell the truth about their settings and, for the quick demo, its time."""

from __future__ import annotations

import re
import time

import pytest
import torch

from lab_ui.presets import PRESET_LABELS, PRESET_NOTES, PRESETS
from lab_ui.settings import to_config, widget_key
from lm_core.messages import text
from lm_core.songci import DEFAULT_SUBSET, songci_corpus
from lm_core.training import Trainer

PROMISED_SECONDS = 60  # "under a minute" / "1 分钟内" in the quick demo's label


def test_quick_demo_text_names_its_epochs_hidden_size_and_a_minute() -> None:
    demo = PRESETS["quick_demo"]
    zh_label, en_label = (text(PRESET_LABELS["quick_demo"], lang) for lang in ("zh", "en"))
    zh_note, en_note = (text(PRESET_NOTES["quick_demo"], lang) for lang in ("zh", "en"))
    assert "1 分钟内" in zh_label and "under a minute" in en_label
    assert f"{demo['epochs']} 个周期" in zh_note and f"{demo['epochs']} epochs" in en_note
    assert f"{demo['hidden']} 个隐藏单元" in zh_note and f"{demo['hidden']} hidden units" in en_note
    upper = max(int(n) for n in re.findall(r"(\d+)\s*(?:秒|seconds)", zh_note + en_note))
    assert upper <= PROMISED_SECONDS


@pytest.mark.slow
def test_quick_demo_fits_its_promise_on_one_thread() -> None:
    """Time two epochs of the preset on the default corpus (one torch thread, as a job worker) and
    project the whole run: it must fit the promised minute even at the slower of the two epochs."""
    cfg = to_config(PRESETS["quick_demo"])
    trainer = Trainer(songci_corpus(DEFAULT_SUBSET, 10_000), cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds = []
        for _ in range(2):
            start = time.perf_counter()
            for _event in trainer.run_epoch():
                pass
            trainer.control.epoch_done()
            seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    projected = max(seconds) * cfg.epochs
    assert projected < PROMISED_SECONDS, f"{cfg.epochs} epochs would take about {projected:.0f} s"


def test_the_chosen_preset_survives_a_page_switch() -> None:
    """The preset box must name the preset whose settings are shown, also after visiting another page."""
    from apptest_helpers import app_page

    with app_page("pages/train.py") as at:
        at.selectbox(key="train:preset").set_value("quick_demo").run()
        at.button(key="train:apply").click().run()
        at.switch_page("pages/generate.py").run()
        at.switch_page("pages/train.py").run()
        assert not at.exception
        assert at.selectbox(key="train:preset").value == "quick_demo"
        assert at.selectbox(key=widget_key("train", "model")).value == PRESETS["quick_demo"]["model"]
