"""The message catalogues and the code agree, and the check that says so catches each fault it is for.

`lm_core.catalogue.check` runs on the real code and catalogues; every other test runs it on a doctored copy
(a catalogue with one fault, or a small made-up page) and expects exactly that fault to be named.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opencc import OpenCC

from lm_core import catalogue, messages

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    """A copy of the real catalogues, to doctor."""
    copy = tmp_path / "locales"
    shutil.copytree(messages.LOCALES, copy)
    return copy


def _set(locales: Path, lang: str, key: str, text: str | None) -> None:
    """Change (or with None, remove) one text of a catalogue copy."""
    path = catalogue.po_path(lang, locales)
    catalog = catalogue.read(lang, path)
    if text is None:
        del catalog[key]
    elif key in catalog:
        catalog[key].string = text
    else:
        catalog.add(key, text)
    catalogue.write(catalog, path)


def _page_root(tmp_path: Path, source: str) -> Path:
    """A made-up app whose only page is `source` (the real catalogues are checked against it elsewhere)."""
    root = tmp_path / "app"
    (root / "pages").mkdir(parents=True)
    (root / "pages" / "demo.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return root


def test_the_real_code_and_catalogues_pass_the_check() -> None:
    assert catalogue.check() == []


def test_every_language_has_a_catalogue_with_the_same_keys() -> None:
    keys = [set(messages.catalogue(lang)) for lang in ("en", "zh", "zh-Hant")]
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) > 500


def test_a_key_missing_in_one_language_is_named(locales: Path) -> None:
    _set(locales, "zh-Hant", "train.title", None)
    assert catalogue.check(locales=locales) == ["zh-Hant: missing train.title"]


def test_an_empty_text_counts_as_missing(locales: Path) -> None:
    _set(locales, "zh", "generate.prefix", "")
    assert catalogue.check(locales=locales) == ["zh: missing generate.prefix"]


def test_a_key_no_code_uses_is_named(locales: Path) -> None:
    _set(locales, "en", "train.forgotten", "A text nobody shows.")
    assert catalogue.check(locales=locales) == ["en: unused train.forgotten (no code names it)"]


def test_a_placeholder_that_differs_between_languages_is_named(locales: Path) -> None:
    _set(locales, "zh-Hant", "common.epoch_of", "第 {e}/{total} 個週期")  # English: "Epoch {e}/{n}"
    problems = catalogue.check(locales=locales)
    assert problems == ["zh-Hant: common.epoch_of has placeholders ['{e}', '{total}'], English has ['{e}', '{n}']"]
    _set(locales, "zh-Hant", "common.epoch_of", "第 {e}/{n} 個週期")
    _set(locales, "zh", "common.tokens_s", "{v} 字符/秒")  # a format spec counts: English has {v:,.0f}
    assert catalogue.check(locales=locales) == [
        "zh: common.tokens_s has placeholders ['{v}'], English has ['{v:,.0f}']"
    ]


def test_a_catalogue_that_does_not_parse_or_repeats_a_key_is_named(locales: Path) -> None:
    path = catalogue.po_path("zh", locales)
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '\nmsgid "train.title"\nmsgstr "又一个标题"\n', encoding="utf-8")
    assert "zh: train.title is written twice" in catalogue.check(locales=locales)
    path.write_text(text + '\nthis line is no gettext at all\nmsgid "train.broken"\nmsgstr "坏"\n', encoding="utf-8")
    assert any("is not a valid .po file" in p for p in catalogue.check(locales=locales))


def test_a_chinese_or_english_sentence_left_in_page_code_is_named(tmp_path: Path) -> None:
    root = _page_root(
        tmp_path,
        '''
        """A page: this docstring is not shown."""
        import streamlit as st
        from lab_ui.i18n import N_, t

        KEYS = {"a": N_("demo.key")}
        st.caption("开始训练")
        st.button("Train the model", key="demo:start", icon=":material/show_chart:")
        st.html(f'<div style="color:#777">{t("demo.text")}</div>')
        st.write(f"{3} · {4}", "%{x}: %{y:.2f}", "lines+markers", "https://example.org/a b")
        ''',
    )
    problems = catalogue.scan(root).problems
    assert problems == [
        "pages/demo.py:7: a sentence in the code, not in the catalogue: '开始训练'",
        "pages/demo.py:8: a sentence in the code, not in the catalogue: 'Train the model'",
    ]
    assert set(catalogue.scan(root).uses) == {"demo.key", "demo.text"}


def test_a_key_built_at_run_time_or_an_error_raised_with_a_sentence_is_named(tmp_path: Path) -> None:
    root = _page_root(
        tmp_path,
        """
        from lab_ui.i18n import t

        def status(state):
            return t(f"common.status_{state}")
        """,
    )
    (root / "lm_core").mkdir()
    (root / "lm_core" / "demo.py").write_text(
        "from .errors import ConfigError\n\nraise ConfigError('The seed must be positive.')\n", encoding="utf-8"
    )
    assert catalogue.scan(root).problems == [
        "pages/demo.py:5: t(f'...'): a key built at run time; name each key with N_(...)",
        "lm_core/demo.py:3: ConfigError raised with a sentence, not a catalogue key: 'The seed must be positive.'",
    ]


def test_update_adds_the_keys_the_code_uses_and_drops_the_others(locales: Path) -> None:
    _set(locales, "zh", "train.title", None)
    _set(locales, "en", "train.forgotten", "A text nobody shows.")
    counts = catalogue.update(locales=locales)
    assert counts["zh"] == (1, 0) and counts["en"] == (0, 1) and counts["zh-Hant"] == (0, 0)
    assert catalogue.check(locales=locales) == ["zh: missing train.title"]  # added empty: still to be written
    assert "train.forgotten" not in catalogue.read("en", catalogue.po_path("en", locales))


def test_hant_converts_only_what_traditional_chinese_lacks_keeping_corpus_words(locales: Path) -> None:
    _set(locales, "zh-Hant", "generate.prefix_help", None)
    _set(locales, "zh-Hant", "train.title", "讀過的標題")  # a reviewed text is never overwritten
    assert catalogue.hant(locales) == ["generate.prefix_help"]
    hant = catalogue.texts(catalogue.read("zh-Hant", catalogue.po_path("zh-Hant", locales)))
    assert hant["generate.prefix_help"] == "模型從這些字接著寫。書中用「分开」和「不分开」。"  # the corpus's own 分开
    assert hant["train.title"] == "讀過的標題"


def test_traditional_catalogue_has_no_simplified_text_and_uses_taiwans_terms() -> None:
    """Phrase by phrase (OpenCC s2tw), every 繁體中文 text is already Traditional, but for the corpus's 分开."""
    s2tw = OpenCC("s2tw")
    hant = messages.catalogue("zh-Hant")
    for key, text in hant.items():
        own = text
        for word in catalogue.CORPUS_WORDS:
            own = own.replace(word, "")
        assert s2tw.convert(own) == own, (key, text)
    joined = "\n".join(hant.values())
    for taiwan, mainland in (("批次", "批量"), ("前綴", "字首"), ("參數", "引數"), ("循環神經網路", "迴圈")):
        assert taiwan in joined and mainland not in joined


def test_the_catalogues_compile_with_pybabel(tmp_path: Path) -> None:
    """`pybabel compile` (gettext's msgfmt, in Python) accepts every catalogue: no binary .mo is committed."""
    for lang in catalogue.CATALOGUE_LANGS:
        locale = messages.locale_id(lang)
        out = tmp_path / f"{locale}.mo"
        result = subprocess.run(
            [sys.executable, "-m", "babel.messages.frontend", "compile", "-D", "lab", "-l", locale]
            + ["-i", str(catalogue.po_path(lang)), "-o", str(out), "--statistics"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0 and out.stat().st_size > 10_000, result.stderr
        assert "error" not in result.stderr.lower(), result.stderr
    assert not list(REPO.rglob("*.mo"))


def test_the_template_lists_each_key_where_it_is_used(tmp_path: Path) -> None:
    out = tmp_path / "lab.pot"
    assert catalogue.main(["extract", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert 'msgid "train.title"' in text and "#: pages/train.py:" in text
    assert 'msgid "error.corpus.empty"' in text and "#: lm_core/corpus.py:" in text
