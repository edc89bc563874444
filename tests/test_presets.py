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


def _linked(params: dict[str, str]):
    """The Train page opened by a shared link carrying `params` (one run, in Chinese, the default)."""
    from apptest_helpers import REPO, TIMEOUT
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    return at


def _captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_a_link_whose_settings_are_no_presets_says_custom_settings() -> None:
    """A lesson link (GRU vs RNN, adjacent, 60 epochs) is no preset: the box must not name the first preset."""
    from apptest_helpers import _clean_runtime

    with _clean_runtime():
        at = _linked({"model": "scratch-gru", "compare": "scratch-rnn", "sampling": "adjacent", "epochs": "60"})
        at.run()
        assert not at.exception
        box = at.selectbox(key="train:preset")
        assert box.value == "custom", box.value
        assert text("presets.custom", "zh") in box.options
        assert text("presets.custom_note", "zh") in _captions(at)
        assert text(PRESET_NOTES["book_random"], "zh") not in _captions(at)
        assert at.button(key="train:apply").disabled  # nothing to apply
        assert at.selectbox(key=widget_key("train", "model")).value == "scratch-gru"  # the link's settings stay


def test_a_link_with_a_presets_own_settings_names_that_preset() -> None:
    from apptest_helpers import _clean_runtime

    from lab_ui.settings import FIELDS, URL_KEYS

    demo = PRESETS["quick_demo"]
    params = {URL_KEYS.get(k, k): FIELDS[k].dump(v) for k, v in demo.items() if k in FIELDS}
    with _clean_runtime():
        at = _linked(params)
        at.run()
        assert not at.exception
        assert at.selectbox(key="train:preset").value == "quick_demo"
        assert text(PRESET_NOTES["quick_demo"], "zh") in _captions(at)
