"""Which text a checkpoint or a run was trained on, from the corpus name it stores.

A checkpoint records its corpus's name and vocabulary, not the text. Stored
names are language-neutral ids: `songci:<subset id>` for the bundled Song ci,
`BOOK_NAME` for the book's corpus, `PASTED_NAME` for pasted text, else an
uploaded file's name. The UI translates them when it shows them. Names stored
before the ids existed (`宋词 · 辛弃疾`, the book picker's English or Chinese
label) are still read, so old checkpoints, runs and the shipped files keep
finding their text.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .corpus import BOOK_FILE, BOOK_MAX_CHARS, book_preprocess
from .errors import CorpusError, detached
from .songci import NAME_PREFIX, songci_text, subset_id

BOOK_NAME = "book"  # the book's corpus, however it reached the app (the CLI names it by its file, BOOK_FILE)
PASTED_NAME = "pasted text"  # text pasted into the corpus picker
_OLD_SONGCI_PREFIX = "宋词 · "  # Song ci corpora were named "宋词 · <subset name>"
_OLD_BOOK_NAMES = ("书中语料（周杰伦歌词）", "The book's corpus (Jay Chou lyrics)")  # the picker's label, as shown


def songci_subset(name: str) -> str | None:
    """The Song ci subset id a stored corpus name means, or None (not the bundled Song ci)."""
    for prefix in (NAME_PREFIX, _OLD_SONGCI_PREFIX):
        if name.startswith(prefix):
            return subset_id(name[len(prefix) :])
    return None


def is_book(name: str) -> bool:
    """Whether a stored corpus name means the book's corpus (app, CLI or an old app label)."""
    return name in (BOOK_NAME, BOOK_FILE, *_OLD_BOOK_NAMES)


def canonical_name(name: str) -> str:
    """The current id of a stored corpus name: old Song ci and book names map to theirs, others stay."""
    subset = songci_subset(name)
    if subset is not None:
        return f"{NAME_PREFIX}{subset}"
    return BOOK_NAME if name in _OLD_BOOK_NAMES else name


def infer_training_text(full: str, vocab: list[str]) -> str | None:
    """The prefix of `full` whose characters are exactly `vocab`, or None if there is none.

    Checkpoints record the corpus name and vocabulary but not how many characters
    were kept. The vocabulary of `full[:n]` only grows with n, so the vocabulary
    pins n to a range; within it the book's 10,000, the whole text, or else the
    smallest round thousand (the corpus picker steps by 1,000) is taken. Erring
    short never claims a copy from text the model did not see.
    """
    wanted = set(vocab)
    first: dict[str, int] = {}
    for i, ch in enumerate(full):
        if ch not in first:
            first[ch] = i
    if not full or any(ch not in first for ch in wanted):
        return None
    lo = max(first[ch] for ch in wanted) + 1  # the shortest prefix holding every vocabulary character
    hi = min((i for ch, i in first.items() if ch not in wanted), default=len(full))  # before the first stranger
    if lo > hi:
        return None
    rounds = range(math.ceil(lo / 1000) * 1000, hi + 1, 1000)
    for n in (BOOK_MAX_CHARS, len(full), *rounds):
        if lo <= n <= hi:
            return full[:n]
    return full[:hi]


TrainingText = tuple[str | None, str, dict[str, object]]


def find_training_text(corpus_name: str, vocab: list[str], book_text: Callable[[], str | None]) -> TrainingText:
    """Rebuild a checkpoint's training text from its corpus name: `(text, status, details)`.

    status: "songci" or "book" (rebuilt; details["n"] characters), "unknown"
    (not a corpus the app ships, or the book is not provided), "mismatch" (the
    vocabulary does not fit), "missing" (the Song ci package is not installed;
    details["msg"] is the detached `CorpusError` saying what to do, so a cached
    result is still shown in the user's language). `book_text` gives the book's
    whole preprocessed text, or None where the server does not provide it: where
    to look for it is the app's business, not the engine's.
    """
    subset = songci_subset(corpus_name)
    if subset is not None:
        try:
            full = book_preprocess(songci_text(subset), None)
        except CorpusError as exc:
            return None, "missing", {"msg": detached(exc)}
        text = infer_training_text(full, vocab)
        return (text, "songci", {"n": len(text)}) if text else (None, "mismatch", {})
    if is_book(corpus_name):
        full = book_text()
        text = infer_training_text(full, vocab) if full else None
        return (text, "book", {"n": len(text)}) if text else (None, "unknown", {})
    return None, "unknown", {}
