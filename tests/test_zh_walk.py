"""Every page in 中文 shows no English sentence: names, numbers and code are allowed, sentences are not."""

from __future__ import annotations

import json
import re

import pytest
from apptest_helpers import app_page, use_tiny_settings, wait_for_job

PAGES = (
    "pages/train.py",
    "pages/sampling.py",
    "pages/hidden_states.py",
    "pages/clipping.py",
    "pages/generate.py",
    "pages/gradients.py",
)
TRAINING_PAGES = ("train", "sampling", "clipping")
# Latin words that are names or code, not sentences (kept short on purpose).
ALLOWED = re.compile(
    r"^(RNN|GRU|LSTM|torch\.nn\.\w+|Adam|SGD|Plotly|CSV|zip|txt|pt|UTF-8|UTF-16|GBK|GB18030|top-k|θ|[A-Z]\w*\.py)$"
)
WORD = re.compile(r"[A-Za-z]{2,}(?:[-'][A-Za-z]+)*")


def _texts(at) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader"):
        out += [str(e.value) for e in at.get(kind)]
    for kind in ("button", "selectbox", "radio", "slider", "select_slider", "number_input", "text_input", "toggle"):
        for w in at.get(kind):
            out.append(str(getattr(w, "label", "")))
            out.append(str(getattr(w, "help", "") or ""))
            out += [str(o) for o in getattr(w, "options", []) or []]
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        title = spec.get("layout", {}).get("title", "")
        out.append(title.get("text", "") if isinstance(title, dict) else str(title))
        out += [str(tr.get("name", "")) for tr in spec.get("data", [])]
    return out


def english_sentences(texts: list[str]) -> list[str]:
    """Texts with three or more Latin words in a row that are not names/code and no Chinese at all."""
    bad = []
    for text in texts:
        if re.search(r"[\u4e00-\u9fff]", text):
            continue
        words = [w for w in WORD.findall(text) if not ALLOWED.match(w)]
        if len(words) >= 3:
            bad.append(text)
    return bad


@pytest.mark.parametrize("page", PAGES)
def test_page_in_chinese_has_no_english_sentence(page: str) -> None:
    with app_page(page) as at:  # 中文 is the default language
        assert not at.exception
        bad = english_sentences(_texts(at))
        assert bad == [], bad


def test_the_detector_flags_the_walk_throughs_stop_message() -> None:
    assert english_sentences(["Stopped after 3 of 250 epochs; the models are kept."])
    assert not english_sentences(["已在第 3/250 个周期后停止；模型已保留。", "torch.nn.GRU", "RNN · GRU"])


@pytest.mark.parametrize("page", TRAINING_PAGES)
def test_page_after_a_finished_run_has_no_english_sentence(page: str) -> None:
    """The live view, its messages and charts after a real (tiny) run, then the pages that use its model."""
    with app_page(f"pages/{page}.py") as at:
        use_tiny_settings(at, page)
        at.button(key=f"{page}:start").click().run()
        wait_for_job(at, page)
        at.run()
        assert not at.exception
        bad = english_sentences(_texts(at))
        assert bad == [], bad
        if page == "train":  # the session's run now feeds the model pages
            for other in ("pages/hidden_states.py", "pages/generate.py", "pages/gradients.py"):
                at.switch_page(other).run()
                assert not at.exception
                bad = english_sentences(_texts(at))
                assert bad == [], (other, bad)
