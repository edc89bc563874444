"""Every page in 中文 and in 繁體中文 shows no English sentence, and 繁體中文 no Simplified-only character.

Names, numbers and code are allowed, sentences are not. Text from the corpus (quoted 「like this」 by the
pages, or the context a chart title quotes) stays as the corpus writes it, so it is left out of the
script check.
"""

from __future__ import annotations

import json
import re

import pytest
from apptest_helpers import app_page, use_tiny_settings, wait_for_job
from opencc import OpenCC

PAGES = (
    "pages/train.py",
    "pages/sampling.py",
    "pages/hidden_states.py",
    "pages/clipping.py",
    "pages/generate.py",
    "pages/gradients.py",
    "pages/generalise.py",
    "pages/my_runs.py",
    "pages/board.py",
    "pages/lessons.py",
)
TRAINING_PAGES = ("train", "sampling", "clipping")
CHINESE = ("zh", "zh-Hant")
# Latin words that are names or code, not sentences (kept short on purpose).
ALLOWED = re.compile(
    r"^(RNN|GRU|LSTM|torch\.nn\.\w+|Adam|SGD|Plotly|CSV|zip|txt|pt|UTF-8|UTF-16|GBK|GB18030|top-k|θ|[A-Z]\w*\.py)$"
)
WORD = re.compile(r"[A-Za-z]{2,}(?:[-'][A-Za-z]+)*")
HAN = re.compile(r"[\u3400-\u9fff]")
# Corpus text inside a message: a quoted stretch, or what a probability chart's title says came before.
CORPUS_TEXT = re.compile(r"「[^」]*」|(?<=步：).*(?= → \?$)")
# Phrase by phrase to Taiwan's standard characters: a text it changes has a Simplified character in it
# (per character it would also "fix" 周 in 周杰倫, and the plain s2t prefers variants such as 峯 to 峰).
_S2TW = OpenCC("s2tw")


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
        if HAN.search(text):
            continue
        words = [w for w in WORD.findall(text) if not ALLOWED.match(w)]
        if len(words) >= 3:
            bad.append(text)
    return bad


def simplified_only(texts: list[str]) -> list[str]:
    """Texts that Traditional Chinese writes otherwise (OpenCC's s2tw changes them), corpus text aside."""
    return [text for text in texts if _S2TW.convert(CORPUS_TEXT.sub("", text)) != CORPUS_TEXT.sub("", text)]


def _check(at, lang: str, where: str = "") -> None:
    assert not at.exception, [e.value for e in at.exception]
    texts = _texts(at)
    assert english_sentences(texts) == [], (where, english_sentences(texts))
    if lang == "zh-Hant":
        assert simplified_only(texts) == [], (where, simplified_only(texts))
        assert sum(len(HAN.findall(text)) for text in texts) > 50  # it really read Chinese


@pytest.mark.parametrize("lang", CHINESE)
@pytest.mark.parametrize("page", PAGES)
def test_page_in_chinese_has_no_english_sentence(page: str, lang: str) -> None:
    with app_page(page, lang=lang) as at:  # 中文 is the default language
        assert at.session_state["lang"] == lang
        _check(at, lang)


def test_the_detectors_flag_what_they_are_for() -> None:
    assert english_sentences(["Stopped after 3 of 250 epochs; the models are kept."])
    assert not english_sentences(["已在第 3/250 个周期后停止；模型已保留。", "torch.nn.GRU", "RNN · GRU"])
    assert simplified_only(["已在第 3/250 个周期后停止；模型已保留。"])
    assert not simplified_only(["已在第 3/250 個週期後停止；模型已保留。", "預測第 2 個字「开」", "第 1 步：分开 → ?"])


@pytest.mark.parametrize("lang", CHINESE)
@pytest.mark.parametrize("page", TRAINING_PAGES)
def test_page_after_a_finished_run_has_no_english_sentence(page: str, lang: str) -> None:
    """The live view, its messages and charts after a real (tiny) run, then the pages that use its model."""
    with app_page(f"pages/{page}.py", lang=lang) as at:
        use_tiny_settings(at, page)
        at.button(key=f"{page}:start").click().run()
        wait_for_job(at, page)
        at.run()
        _check(at, lang, page)
        if page == "train":  # the session's run now feeds the model pages
            for other in ("pages/hidden_states.py", "pages/generate.py", "pages/gradients.py", "pages/my_runs.py"):
                at.switch_page(other).run()
                _check(at, lang, other)
