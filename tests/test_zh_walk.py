"""Every page in 中文 and in 繁體中文 shows no English sentence, and 繁體中文 no Simplified-only character;
in English, no Chinese but the corpus's own text and names given with their pinyin.

Names, numbers and code are allowed, sentences are not. Text from the corpus (quoted 「like this」 by the
pages, or the context a chart title quotes) stays as the corpus writes it, so it is left out of the
script check. Nor may a Chinese page show Streamlit's own English ("Choose options", "Select all" on a
multiselect) or a run's language-free id (small, clip, adjacent, gru, …) where its name belongs.
"""

from __future__ import annotations

import json
import re

import pytest
from apptest_helpers import app_page, shown, use_tiny_settings, wait_for_job
from opencc import OpenCC

from lm_core import messages
from lm_core.messages import LANGS
from lm_core.songci import PINYIN

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
CHINESE = tuple(lang for lang in LANGS if lang != "en")
# Latin words that are names or code, not sentences (kept short on purpose).
ALLOWED = re.compile(
    r"^(RNN|GRU|LSTM|torch\.nn\.\w+|Adam|SGD|Plotly|CSV|zip|txt|pt|UTF-8|UTF-16|GBK|GB18030|top-k|θ|[A-Z]\w*\.py)$"
)
WORD = re.compile(r"[A-Za-z]{2,}(?:[-'][A-Za-z]+)*")
HAN = re.compile(r"[\u3400-\u9fff]")
# Corpus text inside a message: a quoted stretch, or what a probability chart's title says came before.
CORPUS_TEXT = re.compile(r"「[^」]*」|(?<=步：).*(?= → \?$)")
# The ids jobs and stored runs keep for their runs (lab_ui.i18n.RUN_LABELS, model kinds): never shown as such in
# Chinese. Lower case only, and not inside a name or code ("torch.nn.GRU", "clip_grad_norm_", "sampling=random").
RUN_ID = re.compile(
    r"(?<![\w.=/-])(small|large|clip|noclip|random|adjacent|rnn|gru|lstm|scratch-(rnn|gru|lstm))(?![\w-])"
)
# Chinese an English page may show: a name written with its pinyin first ("Xin Qiji 辛弃疾"), the language switch.
NAMED = re.compile("|".join(re.escape(f"{pinyin} {han}") for han, pinyin in PINYIN.items()))
LANGUAGE_NAMES = {messages.text(f"common.lang_{lang.replace('-', '_').lower()}", "en") for lang in LANGS}
BILINGUAL = {messages.text("common.lang_label", "en")}  # "Language / 语言": the way back for a lost reader
# Corpus text an English page quotes “like this” (a prefix, a character), and a probability chart's context.
CORPUS_TEXT_EN = re.compile(r"“[^”]*”|(?<=^Step \d: ).*(?= → \?$)|(?<=^Step \d\d: ).*(?= → \?$)")
# The operator's machinery, which a visitor of a server without it must not be told about.
OPERATOR_WORDS = re.compile(r"\bRay\b")
# Phrase by phrase to Taiwan's standard characters: a text it changes has a Simplified character in it
# (per character it would also "fix" 周 in 周杰倫, and the plain s2t prefers variants such as 峯 to 峰).
_S2TW = OpenCC("s2tw")


def _texts(at) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader"):
        out += [str(e.value) for e in at.get(kind)]
    for kind in (
        "button",
        "selectbox",
        "radio",
        "slider",
        "select_slider",
        "number_input",
        "text_input",
        "toggle",
        "multiselect",
    ):
        for w in at.get(kind):
            out.append(str(getattr(w, "label", "")))
            out.append(str(getattr(w, "help", "") or ""))
            out += [str(o) for o in getattr(w, "options", []) or [] if str(o) not in LANGUAGE_NAMES]
            out.append(str(getattr(w, "placeholder", "") or ""))
    for frame in at.dataframe:
        table = frame.value
        out += [str(c) for c in table.columns]
        out += [str(v) for c in table.columns if table[c].dtype == object for v in table[c]]
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


def raw_run_ids(texts: list[str]) -> list[str]:
    """Texts that show a run's id (e.g. "clip", "adjacent", "gru") instead of its name."""
    return [text for text in texts if RUN_ID.search(CORPUS_TEXT.sub("", text))]


def streamlit_english(at) -> list[str]:
    """Streamlit's own English words on multiselects: its placeholder (when the app gives none) and "Select all"."""
    bad = []
    for w in at.get("multiselect"):
        if not w.proto.placeholder:
            bad.append(f"{w.label}: Choose options")
        if w.proto.select_all != 0:
            bad.append(f"{w.label}: Select all")
    return bad


def chinese_outside_names(texts: list[str]) -> list[str]:
    """English-page texts with Chinese that is neither the corpus's text nor a name given with its pinyin."""
    bad = []
    for text in texts:
        seen = CORPUS_TEXT_EN.sub("", CORPUS_TEXT.sub("", shown(text)))
        if text not in BILINGUAL and HAN.search(NAMED.sub("", seen)):
            bad.append(text)
    return bad


def operator_words(texts: list[str]) -> list[str]:
    """Texts that name the server's machinery (Ray) on a server that has none."""
    return [text for text in texts if OPERATOR_WORDS.search(text)]


def simplified_only(texts: list[str]) -> list[str]:
    """Texts that Traditional Chinese writes otherwise (OpenCC's s2tw changes them), corpus text aside."""
    return [text for text in texts if _S2TW.convert(CORPUS_TEXT.sub("", text)) != CORPUS_TEXT.sub("", text)]


def _check(at, lang: str, where: str = "") -> None:
    assert not at.exception, [e.value for e in at.exception]
    texts = _texts(at)
    assert operator_words(texts) == [], (where, operator_words(texts))
    if lang == "en":
        assert chinese_outside_names(texts) == [], (where, chinese_outside_names(texts))
        return
    assert english_sentences(texts) == [], (where, english_sentences(texts))
    assert raw_run_ids(texts) == [], (where, raw_run_ids(texts))
    assert streamlit_english(at) == [], (where, streamlit_english(at))
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
    assert raw_run_ids(["clip", "gru · 第 20 周期", "随机采样（adjacent）", "scratch-rnn"]) == [
        "clip",
        "gru · 第 20 周期",
        "随机采样（adjacent）",
        "scratch-rnn",
    ]
    assert not raw_run_ids(["GRU（torch.nn.GRU）", "clip_grad_norm_", "?sampling=random", "「small」"])
    assert chinese_outside_names(["宋词 · 辛弃疾", "Song ci · 辛弃疾", "全部 (all Song ci)"]) == [
        "宋词 · 辛弃疾",
        "Song ci · 辛弃疾",
        "全部 (all Song ci)",
    ]
    assert not chinese_outside_names(
        ["Song ci · Xin Qiji 辛弃疾", "the prefix “分开”", "Su Shi 苏轼 + Xin Qiji 辛弃疾", "Step 12: 分开宴 → ?"]
    )
    assert operator_words(["交给服务器的训练进程（或分布到 Ray 集群的各台机器上）"]) and not operator_words(["Array"])


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


@pytest.mark.parametrize("page", PAGES)
def test_page_in_english_shows_chinese_only_as_corpus_text_and_names(page: str) -> None:
    with app_page(page, lang="en") as at:
        assert at.session_state["lang"] == "en"
        _check(at, "en")


def test_pages_after_a_finished_run_in_english_show_chinese_only_as_corpus_text_and_names() -> None:
    """The Train page's run (its samples are corpus text), then the pages that use its model."""
    with app_page("pages/train.py", lang="en") as at:
        use_tiny_settings(at, "train")
        at.button(key="train:start").click().run()
        wait_for_job(at, "train")
        at.run()
        _check(at, "en", "train")
        for other in ("pages/hidden_states.py", "pages/generate.py", "pages/gradients.py", "pages/my_runs.py"):
            at.switch_page(other).run()
            _check(at, "en", other)
