"""Choosing the corpus: bundled Song ci, the book's corpus, an upload or pasted text.

One choice per browser session, shown in the sidebar of every training page.
The bundled Song ci is the default. The book's `jaychou_lyrics.txt.zip` is
recognised by content (sha256) and then gets the book's name and preprocessing.

A visitor never names a file on the server: the book's corpus comes from an
upload, or from a file the server's operator provided — put in the git-ignored
`data/` folder, or named in the environment variable `RNN_LAB_BOOK_CORPUS` when
the server starts. Either file must be the book's (same hash); the page never
shows where it looked or whether a path exists.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from lm_core.bounded_cache import BoundedCache
from lm_core.corpus import BOOK_FILE, BOOK_MAX_CHARS, BOOK_SHA256, MAX_FILE_BYTES, Corpus, read_corpus_bytes
from lm_core.errors import CorpusError, LabError, detached, localized
from lm_core.limits import KEPT_CORPUS_IDLE_SECONDS, MAX_KEPT_CORPORA, MAX_KEPT_CORPUS_BYTES, MAX_UPLOAD_MB
from lm_core.provenance import BOOK_NAME, PASTED_NAME, canonical_name, songci_subset
from lm_core.sampling import minibatches_per_epoch
from lm_core.songci import SUBSETS, songci_corpus, subset_id

from .i18n import N_, current_lang, labels, t
from .persist import remember, restore, save
from .settings import parse_whole

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # git-ignored
BOOK_ENV = "RNN_LAB_BOOK_CORPUS"
# Read once, when the server starts: the operator's word, never a visitor's.
OPERATOR_BOOK_PATH = os.environ.get(BOOK_ENV, "").strip()
SOURCES = ("songci", "book", "upload", "paste")
SOURCE_LABELS = {
    "songci": N_("corpus.src_songci"),
    "book": N_("corpus.src_book"),
    "upload": N_("corpus.src_upload"),
    "paste": N_("corpus.src_paste"),
}
# The Song ci subsets by their authors' names: a catalogue text, so 繁體中文 writes 辛棄疾 (the corpus stays as it is).
SUBSET_LABELS = {
    "xin": N_("corpus.subset_xin"),
    "su": N_("corpus.subset_su"),
    "su+xin": N_("corpus.subset_su_xin"),
    "liu": N_("corpus.subset_liu"),
    "li": N_("corpus.subset_li"),
    "all": N_("corpus.subset_all"),
}
MAX_CHARS = 2_000_000  # the "characters used" box and the `chars` URL value


@dataclass
class CorpusChoice:
    corpus: Corpus | None
    error: str | None
    key: str  # identifies the corpus content and preprocessing (for caching, checkpoints)
    is_book: bool = False


@st.cache_resource(max_entries=4)
def _songci(subset: str, max_chars: int | None) -> Corpus:
    return songci_corpus(subset, max_chars)


# Uploaded and pasted corpora, once per content whichever session sent them, bounded in entries and bytes; and
# the files and pasted texts themselves, so a session keeps only a name and a hash (the uploader forgets its file
# on a page switch; a text left in the text box would travel with every rerun the tab sends, and be kept by
# Streamlit once per session). Not a Streamlit cache: a visitor's `clear_cache` must not empty it.
_CORPORA: BoundedCache[tuple[Corpus | None, LabError | None]] = BoundedCache(
    MAX_KEPT_CORPORA, MAX_KEPT_CORPUS_BYTES, max_idle=KEPT_CORPUS_IDLE_SECONDS
)
_RECEIVED: BoundedCache[bytes] = BoundedCache(MAX_KEPT_CORPORA, MAX_KEPT_CORPUS_BYTES // 4)


def _corpus_bytes(built: tuple[Corpus | None, LabError | None]) -> int:
    """What a kept corpus costs: its text (up to 4 bytes a character) and a list slot per character id."""
    corpus = built[0]
    return 1024 if corpus is None else 1024 + 12 * len(corpus.text)


def _from_bytes(digest: str, name: str, max_chars: int | None, data: bytes) -> tuple[Corpus | None, LabError | None]:
    """The corpus, or why not: a refusal is kept too, so a rerun never redoes the work (or the inflating).

    The error (both languages, no traceback) is kept, not its text, so it reads right after a language switch.
    """

    def build() -> tuple[Corpus | None, LabError | None]:
        try:
            return Corpus.from_text(read_corpus_bytes(data, name), name=name, max_chars=max_chars), None
        except CorpusError as exc:
            return None, detached(exc)

    return _CORPORA.get_or_make((digest, name, max_chars), build, _corpus_bytes)


def book_candidates() -> list[Path]:
    """Where the operator may have put the book's corpus: `$RNN_LAB_BOOK_CORPUS` (at start-up), then data/."""
    paths = [Path(OPERATOR_BOOK_PATH).expanduser()] if OPERATOR_BOOK_PATH else []
    return [*paths, DATA_DIR / BOOK_FILE]


def operator_book_bytes() -> bytes | None:
    """The book's corpus as the operator provided it, or None.

    Only a file whose sha256 is the book's counts, so a misconfigured path can
    never put another server file in front of a visitor; which path was tried,
    and why it failed, is deliberately not reported.
    """
    for path in book_candidates():
        try:
            if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == BOOK_SHA256:
            return data
    return None


def _load_bytes(data: bytes, name: str, max_chars: int | None) -> CorpusChoice:
    digest = hashlib.sha256(data).hexdigest()
    is_book = digest == BOOK_SHA256
    label = BOOK_NAME if is_book else name  # stored in runs and checkpoints: the id, never the shown label
    corpus, error = _from_bytes(digest, label, max_chars, data)
    if corpus is None:
        return CorpusChoice(None, localized(error, current_lang()), digest)
    return CorpusChoice(corpus, None, f"{digest[:16]}:{max_chars}", is_book)


WIDGET_KEYS = ("corpus:source", "corpus:max_chars", "corpus:subset", "corpus:paste")
URL_PARAMS = {"corpus:source": "corpus", "corpus:subset": "subset", "corpus:max_chars": "chars"}


def _from_url() -> None:
    """On a session's first corpus picker, take source, subset and size from a lesson link.

    A value that is not valid is ignored and named in a warning (shown as text).
    """
    if "corpus:url_read" in st.session_state:
        return
    st.session_state["corpus:url_read"] = True
    values: dict[str, object] = {}
    bad: list[str] = []
    for key, param in URL_PARAMS.items():
        raw = st.query_params.get(param)
        if raw is None:
            continue
        if key == "corpus:max_chars":
            try:
                values[key] = parse_whole(raw, 0, MAX_CHARS)
            except ValueError:
                bad.append(f"{param}={raw}")
        elif key == "corpus:subset" and subset_id(raw):
            values[key] = subset_id(raw)  # an id, or a subset's name in a link made before the ids
        elif key == "corpus:source" and raw in SOURCES:
            values[key] = raw
        else:
            bad.append(f"{param}={raw}")
    if bad:
        st.warning(t.md("common.url_ignored", items=", ".join(bad)))
    for key, value in values.items():
        st.session_state[key] = value
        remember(key, value)


def forget_url_read() -> None:
    """Let the next corpus picker take source, subset and size from the URL again (a lesson link in the session)."""
    st.session_state.pop("corpus:url_read", None)


def apply_values(values: Mapping[str, object]) -> None:
    """Set the corpus picker (e.g. from a page's lesson button); safe inside an `on_click` callback."""
    for key, value in values.items():
        st.session_state[key] = value
        remember(key, value)


def _to_url() -> None:
    for key, param in URL_PARAMS.items():
        if key in st.session_state:
            st.query_params[param] = str(st.session_state[key])


def corpus_ui() -> CorpusChoice:
    """Draw the corpus picker (call inside `with st.sidebar:`) and load the choice.

    Source, Song ci subset and size are part of the lesson link (URL); an
    upload or pasted text cannot be, so a link to those opens on the picker.
    """
    _from_url()
    page = st.session_state.get("page")
    if st.session_state.get("corpus:drawn_on") != page:
        # The same widget keys on another page are new widgets: Streamlit would reset them to their
        # defaults (0 characters = all!) from the stale state, so drop it and restore the saved copies.
        for key in WIDGET_KEYS:
            st.session_state.pop(key, None)
        st.session_state["corpus:drawn_on"] = page
    restore("corpus:max_chars", BOOK_MAX_CHARS)
    for key in WIDGET_KEYS:
        restore(key)
    try:
        return _corpus_widgets()
    finally:
        for key in WIDGET_KEYS:
            save(key)
        _to_url()


def _corpus_widgets() -> CorpusChoice:
    source = st.selectbox(
        t("corpus.corpus"),
        SOURCES,
        key="corpus:source",
        help=t("corpus.corpus_help"),
        format_func=labels(SOURCES, lambda s: t(SOURCE_LABELS[s])),
    )
    max_chars = (
        int(
            st.number_input(
                t("corpus.max_chars"), 0, MAX_CHARS, step=1000, key="corpus:max_chars", help=t("corpus.max_chars_help")
            )
        )
        or None
    )
    if source == "songci":
        subset = st.selectbox(
            t("corpus.subset"),
            list(SUBSETS),
            key="corpus:subset",
            help=t("corpus.subset_help"),
            format_func=labels(SUBSETS, subset_label),
        )
        try:
            return CorpusChoice(_songci(subset, max_chars), None, f"songci:{subset}:{max_chars}")
        except CorpusError as exc:
            return CorpusChoice(None, localized(exc, current_lang()), "songci")
    if source == "book":
        data = operator_book_bytes()
        if data is None:
            return CorpusChoice(None, t("corpus.book_missing"), "book")
        return _load_bytes(data, BOOK_FILE, max_chars)
    if source == "upload":
        up = st.file_uploader(
            t("corpus.upload"),
            type=["txt", "zip"],
            key="corpus:upload",
            help=t("corpus.upload_help", mb=MAX_UPLOAD_MB),
            max_upload_size=MAX_UPLOAD_MB,
        )
        if up is not None:  # the uploader itself forgets its file on a page switch: the server keeps it by hash
            data = up.getvalue()
            digest = hashlib.sha256(data).hexdigest()
            _RECEIVED.put(digest, data, len(data))
            st.session_state["corpus:uploaded"] = (up.name, digest)
        elif "corpus:uploaded" not in st.session_state:
            return CorpusChoice(None, t("corpus.upload_first"), "upload")
        name, digest = st.session_state["corpus:uploaded"]
        data = up.getvalue() if up is not None else _RECEIVED.get(digest)
        if data is None:  # many other files came since: the server let this one go
            st.session_state.pop("corpus:uploaded", None)
            return CorpusChoice(None, t("corpus.upload_again"), "upload")
        return _load_bytes(data, name, max_chars)
    st.text_area(
        t("corpus.paste"), key="corpus:paste", help=t("corpus.paste_help"), height=120, on_change=_take_pasted_text
    )
    pasted = st.session_state.get("corpus:pasted")
    if pasted is None:
        return CorpusChoice(None, t("corpus.paste_first"), "paste")
    digest, chars, refusal = pasted
    if refusal is not None:
        return CorpusChoice(None, localized(refusal, current_lang()), "paste")
    data = _RECEIVED.get(digest)
    if data is None:  # many other texts came since: the server let this one go
        st.session_state.pop("corpus:pasted", None)
        return CorpusChoice(None, t("corpus.paste_again"), "paste")
    st.caption(t("corpus.pasted_kept", n=chars))
    return _load_bytes(data, PASTED_NAME, max_chars)


def _take_pasted_text() -> None:
    """The text box's callback: keep a pasted text on the server (by hash) and empty the box.

    Left in the box, the text would be sent again with every rerun of the tab (a running job's page polls twice a
    second) and kept by Streamlit in every session that pasted it; here the session keeps its hash and length.
    """
    text = st.session_state.get("corpus:paste") or ""
    if not text.strip():
        return
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    refusal = None
    if len(data) > MAX_FILE_BYTES:  # refused as an upload of that size would be; nothing is kept
        try:
            read_corpus_bytes(data, PASTED_NAME)
        except CorpusError as exc:
            refusal = detached(exc)
    else:
        _RECEIVED.put(digest, data, len(data))
    st.session_state["corpus:pasted"] = (digest, len(text), refusal)
    st.session_state["corpus:paste"] = ""


def subset_label(subset: str) -> str:
    """A Song ci subset's id as the picker shows it: its authors' names (written in the UI's script), or "all"."""
    key = SUBSET_LABELS.get(subset)
    return t(key) if key else " + ".join(SUBSETS[subset] or (subset,))


def corpus_display_name(name: str) -> str:
    """A stored corpus name (an id, or a name stored before the ids) as shown; a file name stays as it is."""
    name = canonical_name(name)
    subset = songci_subset(name)
    if subset is not None:
        return t("corpus.songci_name", subset=subset_label(subset))
    return {BOOK_NAME: t("corpus.src_book"), PASTED_NAME: t("corpus.pasted_name")}.get(name, name)


def corpus_summary_ui(choice: CorpusChoice, batch_size: int, num_steps: int) -> None:
    """Size, vocabulary, minibatches per epoch and a preview, with warnings."""
    corpus = choice.corpus
    if corpus is None:
        return
    st.markdown(t.md("corpus.corpus_stats", name=corpus_display_name(corpus.name), n=len(corpus), v=corpus.vocab_size))
    if corpus.controls_removed:
        st.info(t("corpus.controls_removed", n=corpus.controls_removed))
    if choice.is_book:
        st.caption(t("corpus.recognised_book"))
    r = minibatches_per_epoch(len(corpus), batch_size, num_steps, "random")
    a = minibatches_per_epoch(len(corpus), batch_size, num_steps, "adjacent")
    st.caption(t("corpus.batches_per_epoch", r=r, a=a, b=batch_size, s=num_steps))
    if min(r, a) == 0:
        st.warning(t("corpus.too_few_batches"))
    elif min(r, a) < 3:
        st.info(t("corpus.few_batches", n=min(r, a)))
    if corpus.vocab_size > 3000:
        st.info(t("corpus.big_vocab", v=corpus.vocab_size))
    with st.expander(t("corpus.preview")):
        st.text(corpus.text[:600] + ("…" if len(corpus.text) > 600 else ""))
