"""Which trained model a page uses: this session's run, a stored run, a shipped checkpoint, or an upload.

The Hidden states, Generate and Gradients through time pages start with
`model_page_ui(page, ...)`. The choice is shared by the pages and kept outside
widget keys (so it survives page switches); the torch model comes from
`model_cache` (built once per checkpoint version, never kept in
`st.session_state`); and the training text is found again where possible, for
the memorisation meter.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from lm_core import vocab
from lm_core.checkpoint import Checkpoint
from lm_core.corpus import book_preprocess
from lm_core.errors import CheckpointError, LabError, VocabularyError, localized
from lm_core.generation import check_prefix, default_prefixes, generate
from lm_core.limits import MAX_UPLOAD_MB
from lm_core.models import CharModel
from lm_core.serve.job import Job
from lm_core.serve.store import short_ids

from . import corpus_ui, jobs_ui, persist, turns
from .i18n import PAGE_TITLES, current_lang, model_label, run_label, stored_run_label, t
from .model_cache import (
    cached_model,
    corpus_ids,
    distance_curve,
    file_weights_key,
    job_weights_key,
    load_shipped,
    search_corpus,
    search_states,
    shipped_checkpoint,
    shipped_files,
    training_text,
    upload_weights_key,
    uploaded_checkpoint,
)
from .poll import job_poll_element
from .session import manager, owner_id

log = logging.getLogger(__name__)
SESSION_PAGES = ("train", "sampling", "clipping", "generalise")  # pages whose training job can lend its model
MAX_STORED_OPTIONS = 10  # newest stored runs offered in the picker (all of them are on My runs)
CHOICE_KEY = "model_source:choice"  # shared by the model pages, not bound to a widget
EXPLICIT_KEY = "model_source:explicit"  # True once the user picked; until then the default follows new runs
UPLOAD_KEY = "model_source:upload"  # (name, sha256, bytes) of the last upload that parsed
# The shipped model that writes new ci (all of Song ci): opened by default when present, because the
# small shipped models memorise their 10,000 characters and only recite. Absent, the first readable file is used.
PREFERRED_SHIPPED = "songci-all-lstm.pt"


# -- pure helpers (no widgets; tested directly) -------------------------------------------------------------


def describe(ckpt: Checkpoint) -> str:
    """`Checkpoint.describe()` in the page's language."""
    cfg = ckpt.config
    args = {"model": model_label(cfg.model), "h": cfg.hidden, "v": len(ckpt.vocab)}
    if not ckpt.history:
        return t("model_source.describe_untrained", **args)
    last = ckpt.history[-1]
    return t("model_source.describe", ppl=last.perplexity, e=last.epoch, **args)


def format_chars(chars: list[str]) -> str:
    """Characters named for a page's message, in the page's language (`lm_core.vocab.format_chars`)."""
    return vocab.format_chars(chars, current_lang())


# -- the chosen model ---------------------------------------------------------------------------------------


@dataclass
class ModelChoice:
    """A ready-to-use model and what the page needs to know about it (no tensors are stored per session)."""

    key: str  # stable cache key of these weights: job + run + epoch, file + mtime, or upload hash
    option: str  # the picker option it came from (the same across epochs of one run)
    source: str  # "session" | "stored" | "shipped" | "upload"
    label: str  # what the picker shows
    checkpoint: Checkpoint
    model: CharModel
    corpus_text: str | None  # training text for the memorisation meter (None: unavailable)
    corpus_note: str = ""  # where the text came from, or why it is unavailable
    job: Job | None = None
    run: int = 0
    char_to_idx: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.char_to_idx = {ch: i for i, ch in enumerate(self.checkpoint.vocab)}

    @property
    def vocab(self) -> list[str]:
        return self.checkpoint.vocab

    @property
    def epochs(self) -> int:
        return len(self.checkpoint.history)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(self.model.gate_names)

    def unknown(self, text: str) -> list[str]:
        """Characters of `text` outside the vocabulary, in order of first appearance."""
        return vocab.unknown_chars(text, self.char_to_idx)

    def known(self, text: str) -> str:
        """`text` without the characters outside the vocabulary: what the model can actually read of it."""
        return "".join(ch for ch in text if ch in self.char_to_idx)

    def encode(self, text: str) -> list[int]:
        return [self.char_to_idx[ch] for ch in text]


def text_problem(text: str, choice: ModelChoice) -> str | None:
    """Why `text` cannot be fed to the model (empty, or characters it never saw), translated; None if fine.

    The decision and both wordings are `lm_core.generation.check_prefix`'s.
    """
    try:
        check_prefix(text, choice.char_to_idx)
    except VocabularyError as exc:
        return localized(exc, current_lang())
    return None


def known_text_ui(choice: ModelChoice, text: str, offer_default: bool = False) -> str | None:
    """`text` with the characters the model never saw skipped, after a warning naming them; None if none is left.

    The pages that trace a typed text (Hidden states, Gradients through time) read what they can rather than
    refuse the whole text, but say what they skipped, so a result is never silently about a different text.
    `offer_default`: the page has a "Default text" button, so the nothing-left message points to it.
    """
    unknown = choice.unknown(text)
    if not unknown:
        return text
    kept = choice.known(text)
    if not kept:
        st.warning(
            t.md(
                "model_source.nothing_known_default" if offer_default else "model_source.nothing_known",
                chars=format_chars(unknown),
            )
        )
        return None
    st.warning(t.md("model_source.stripped", chars=format_chars(unknown)))
    return kept


def default_prefix(choice: ModelChoice) -> str:
    """分开 when the vocabulary has it (the book's prefix), else the corpus's first characters."""
    prefixes = default_prefixes(choice.char_to_idx, choice.corpus_text or "")
    if prefixes and prefixes[0]:
        return prefixes[0]
    return next((ch for ch in choice.vocab if not ch.isspace()), choice.vocab[0])


def sample_text(choice: ModelChoice, n: int = 40) -> str:
    """A text the model knows every character of: the corpus's start, else its own greedy lines."""
    if choice.corpus_text and choice.corpus_text.strip():
        return choice.corpus_text.strip()[:n]
    prefix = default_prefix(choice)
    return generate(choice.model, choice.vocab, prefix, max(0, n - len(prefix))).text


# -- caches (process-wide; keyed by content, so sessions share them safely) ---------------------------------


# -- the picker ---------------------------------------------------------------------------------------------


@dataclass
class Option:
    label: str
    source: str
    job: Job | None = None
    run: int = 0
    path: Path | None = None
    ok: bool = True  # False: a shipped file that cannot be read (listed, but never the default)
    corpus_hash: str = ""  # a stored run's corpus in the run store
    name: str = ""  # a run's name, for a sentence about it


def _session_job(page: str) -> Job | None:
    """A training page's job for this browser, without side effects on that page.

    Not `jobs_ui.page_job`: that one writes the job id into this page's URL and
    would adopt a URL job for whichever page asks. Here a URL job (after a
    reload) counts only if it was started by `page` itself.
    """
    job = manager().get(st.session_state.get(jobs_ui.job_key(page)), owner_id())
    if job is None:
        url_id = st.query_params.get("job")
        candidate = manager().get(url_id, owner_id()) if url_id else None
        if candidate is not None and candidate.kind == page:
            job = candidate
    return job


def picker_options() -> dict[str, Option]:
    """Every model this browser can use now, the default first."""
    opts: dict[str, Option] = {}
    for page in SESSION_PAGES:
        job = _session_job(page)
        if job is None:
            continue
        for run, label in enumerate(job.labels):
            epochs = job.epochs_done(run)
            name = run_label(label, job.config(run).clip)
            text = t("model_source.opt_session", page=t(PAGE_TITLES[page]), label=name, e=epochs)
            opts[f"session:{page}:{job.id}:{run}"] = Option(text, "session", job=job, run=run, name=name)
    store = manager().store
    if store is not None:
        live = {o.job.id for o in opts.values() if o.job is not None}
        stored = [r for r in store.runs(owner_id()) if r.job_id not in live and r.epoch > 0]
        tags = short_ids(stored)  # twins of the same minute get distinct names: the browser picks by name
        for record in stored[:MAX_STORED_OPTIONS]:
            path = store.checkpoint_path(record.id)
            if path.is_file():
                date = time.strftime("%m-%d %H:%M", time.localtime(record.created))
                name = stored_run_label(record)
                corpus = corpus_ui.corpus_display_name(record.corpus_name)  # runs of one model read apart by it
                text = t(
                    "model_source.opt_stored", label=name, e=record.epoch, corpus=corpus, date=date, tag=tags[record.id]
                )
                opts[f"stored:{record.id}"] = Option(
                    text, "stored", path=path, corpus_hash=record.corpus_hash, name=name
                )
    for path in shipped_files():
        ckpt, _ = load_shipped(path)
        text = (
            t("model_source.opt_shipped", name=path.name, desc=describe(ckpt))
            if ckpt
            else t("model_source.opt_shipped_bad", name=path.name)
        )
        opts[f"shipped:{path.name}"] = Option(text, "shipped", path=path, ok=ckpt is not None)
    held = st.session_state.get(UPLOAD_KEY)
    opts["upload"] = Option(
        t("model_source.opt_uploaded", name=held[0]) if held else t("model_source.opt_upload"), "upload"
    )
    return opts


def default_option(opts: dict[str, Option]) -> str:
    """The picker's default: this session's run, else `PREFERRED_SHIPPED`, else the first readable shipped file.

    A session run comes first because a student who just trained wants to see it; otherwise the model that
    writes new ci, not one of the small models that recite their corpus.
    """
    session_run = next((i for i, o in opts.items() if o.source == "session"), None)
    if session_run is not None:
        return session_run
    preferred = f"shipped:{PREFERRED_SHIPPED}"
    if preferred in opts and opts[preferred].ok:
        return preferred
    return next((i for i, o in opts.items() if o.source == "shipped" and o.ok), "upload")


def _picked(widget_key: str) -> None:
    st.session_state[CHOICE_KEY] = st.session_state[widget_key]
    st.session_state[EXPLICIT_KEY] = True


def _ingest_upload(page: str) -> str | None:
    """Take in a newly uploaded file before the picker is drawn, so its label is already current.

    A widget's value is in `st.session_state` from the start of the run that
    follows the upload. A file that parses becomes the held upload (the widget
    itself forgets its file on a page switch); the reason a file does not parse
    is returned, to be shown under the uploader.
    """
    up = st.session_state.get(f"{page}:ckpt_upload")
    if up is None:
        return None
    data = up.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    held = st.session_state.get(UPLOAD_KEY)
    if held is not None and held[1] == digest:
        return None
    ckpt, error = uploaded_checkpoint(digest, up.name, data)
    if ckpt is None:
        return localized(error, current_lang()) if error is not None else None
    st.session_state[UPLOAD_KEY] = (up.name, digest, data)
    return None


def _upload_ui(page: str, error: str | None) -> tuple[str, Checkpoint] | None:
    """The uploader, the reason a new file was refused, and the held upload (if any) to use."""
    st.file_uploader(
        t("model_source.upload"),
        type=["pt", "pth", "ckpt"],
        key=f"{page}:ckpt_upload",
        help=t("model_source.upload_help", mb=MAX_UPLOAD_MB),
        max_upload_size=MAX_UPLOAD_MB,
    )
    held = st.session_state.get(UPLOAD_KEY)
    if error:
        st.error(t.md("model_source.upload_error", msg=error))
        if held is not None:
            st.caption(t.md("model_source.upload_kept", name=held[0]))
    if held is None:
        if not error:
            st.info(t("model_source.upload_first"))
        return None
    ckpt, _ = uploaded_checkpoint(held[1], held[0], held[2])
    return (upload_weights_key(held[1]), ckpt) if ckpt else None


def _corpus(ckpt: Checkpoint, job: Job | None, run: int, corpus_hash: str = "") -> tuple[str | None, str]:
    """Training text and a note saying where it came from or why it is missing."""
    if job is not None:
        return job.corpus_text(run), ""
    store = manager().store
    if corpus_hash and store is not None:
        text = store.corpus_text(corpus_hash)
        if text is not None:  # stored with line ends between documents; the model read them as spaces
            return book_preprocess(text, None), ""
    text, status, details = training_text(ckpt)
    name = display_corpus_name(ckpt.corpus_name)
    notes = {
        "songci": lambda: t.md("model_source.meter_rebuilt", name=name, n=details.get("n", 0)),
        "book": lambda: t.md("model_source.meter_rebuilt_book", n=details.get("n", 0)),
        "missing": lambda: t.md(
            "model_source.meter_missing", msg=localized(details["msg"], current_lang()) if "msg" in details else ""
        ),
        "mismatch": lambda: t.md("model_source.meter_mismatch", name=name),
    }
    return text, notes.get(status, lambda: t.md("model_source.meter_unknown", name=name))()


def warm_default_model() -> None:
    """Load what the model pages open with, before a student asks: every shipped checkpoint (the picker
    describes them all), the default one's model and training text, and the Hidden states page's unit search
    over that text, and the Gradients page's gradient-against-distance curve.

    Why: these are once-per-server costs, shared by every session afterwards (process-wide caches), and the
    first visitor of Hidden states or Gradients through time paid all of them: 9.5-10.4 s to the first
    figure on a loaded 2-core machine (parsing three checkpoints, rebuilding the Song ci text, tracing 30,000
    characters). Called once on a background thread when the server starts (`streamlit_app.py`).
    """
    readable = []
    for path in shipped_files():
        ckpt = shipped_checkpoint(path)
        if ckpt is not None:
            readable.append((path, ckpt))
    preferred = [pair for pair in readable if pair[0].name == PREFERRED_SHIPPED] or readable[:1]
    for path, ckpt in preferred:
        key = file_weights_key(path)
        model = cached_model(key, ckpt)
        text, _, _ = training_text(ckpt)
        if text:
            char_to_idx = {ch: i for i, ch in enumerate(ckpt.vocab)}
            search_states(key, search_corpus(model, char_to_idx, text), model, char_to_idx)
            corpus = corpus_ids(key, char_to_idx, text, ckpt.config)
            if corpus is not None:  # the Gradients page's curve of the same model
                distance_curve(key, corpus[0], ckpt.config.num_steps, ckpt.config.batch_size, model, corpus[1])


def warm_quietly() -> None:
    """`warm_default_model`, for a background thread: a warm-up that fails (a broken checkpoint folder) leaves
    the pages to say why when they are opened."""
    try:
        warm_default_model()
    except Exception:
        log.debug("model warm-up failed", exc_info=True)


def model_page_ui(page: str, title: str, intro: str) -> ModelChoice | None:
    """The head of every page that studies a model (Generate, Hidden states, Gradients): title, intro, model picker.

    Returns the chosen model, or None when there is none yet (the picker has said why and the page stops).
    """
    st.title(title)
    st.caption(intro)
    return model_source_ui(page)


def model_source_ui(page: str) -> ModelChoice | None:
    """Draw the model picker and return the chosen, ready model (None: nothing usable yet, and said why).

    Default: this session's trained model, else the shipped all-Song-ci model
    (`PREFERRED_SHIPPED`), else the first shipped checkpoint, else the uploader. Until the user picks, the default follows newly
    started runs; after that their choice stands while it exists.
    """
    upload_error = _ingest_upload(page)
    opts = picker_options()
    ids = list(opts)
    default = default_option(opts)
    chosen = st.session_state.get(CHOICE_KEY)
    if chosen not in opts or not st.session_state.get(EXPLICIT_KEY):
        chosen = default
    st.session_state[CHOICE_KEY] = chosen
    widget_key = f"{page}:model_source"
    st.session_state[widget_key] = chosen

    with st.container(border=True):
        st.selectbox(
            t("model_source.source"),
            ids,
            key=widget_key,
            format_func=lambda i: opts[i].label if i in opts else i,
            help=t("model_source.source_help"),
            on_change=_picked,
            args=(widget_key,),
        )
        option = opts[chosen]
        if not any(o.source == "shipped" for o in opts.values()):
            st.caption(t("model_source.shipped_none"))
        picked = _resolve(page, option, upload_error)
        if picked is None:
            if option.source == "upload" and not any(o.source != "upload" for o in opts.values()):
                st.info(t("model_source.no_model"))
                st.page_link("pages/train.py", label=t("model_source.go_train"), icon=":material/show_chart:")
            return None
        key, ckpt = picked
        try:
            model = cached_model(key, ckpt)
        except CheckpointError as exc:  # validated on load, so only a changed torch could get here
            st.error(t.md("model_source.upload_error", msg=localized(exc, current_lang())))
            return None
        text, note = _corpus(ckpt, option.job, option.run, option.corpus_hash)
        label = (
            option.label
            if option.source != "upload"
            else t("model_source.opt_uploaded", name=st.session_state[UPLOAD_KEY][0])
        )
        choice = ModelChoice(key, chosen, option.source, label, ckpt, model, text, note, option.job, option.run)
        _summary_ui(choice)
    return choice


def compare_ui(page: str, choice: ModelChoice) -> ModelChoice | None:
    """A second model to write beside the chosen one (None: no comparison, or it cannot be used and was said so).

    Any other model of the picker but an upload (its uploader belongs to the main picker); vocabularies may
    differ, so the caller checks the prefix against each. The choice survives page switches.
    """
    opts = {i: o for i, o in picker_options().items() if i != choice.option and o.source != "upload" and o.ok}
    ids = ["none", *opts]
    key = f"{page}:compare_with"
    persist.restore(key, "none")
    if st.session_state.get(key) not in ids:
        st.session_state[key] = "none"
    labels = {i: o.label for i, o in opts.items()} | {"none": t("model_source.compare_nobody")}
    pick = st.selectbox(
        t("model_source.compare_with"), ids, key=key, format_func=labels.get, help=t("model_source.compare_with_help")
    )
    persist.save(key)
    if pick == "none":
        return None
    option = opts[pick]
    picked = _resolve(page, option, None)
    if picked is None:
        return None
    cache_key, ckpt = picked
    try:
        model = cached_model(cache_key, ckpt)
    except CheckpointError as exc:
        st.error(t.md("model_source.upload_error", msg=localized(exc, current_lang())))
        return None
    text, note = _corpus(ckpt, option.job, option.run, option.corpus_hash)
    return ModelChoice(cache_key, pick, option.source, option.label, ckpt, model, text, note, option.job, option.run)


def option_weights(option: Option) -> tuple[str, Checkpoint | None, str | None]:
    """The cache key and checkpoint of a session, stored or shipped option, or ("", None, why it cannot be read).

    A run's published weights are parsed here, on first use: if they cannot be (a bound, damaged bytes), the
    page says so in a sentence and the other options stay usable.
    """
    if option.job is not None:
        try:
            ckpt = option.job.checkpoint(option.run)
        except LabError as exc:
            return "", None, localized(exc, current_lang())
        return job_weights_key(option.job.id, option.run, len(ckpt.history)), ckpt, None
    if option.path is None:
        return "", None, None
    ckpt, error = load_shipped(option.path)
    return (file_weights_key(option.path) if ckpt is not None else ""), ckpt, error


def _resolve(page: str, option: Option, upload_error: str | None) -> tuple[str, Checkpoint] | None:
    """The cache key and checkpoint of an option, or None after saying what is wrong."""
    if option.source == "upload":
        return _upload_ui(page, upload_error)
    key, ckpt, error = option_weights(option)
    if ckpt is None:
        if option.source == "shipped":
            st.error(t.md("model_source.shipped_error", name=option.path.name if option.path else "", msg=error))
        else:  # a run of this browser: said by its name, never by a file
            st.error(t.md("model_source.run_unusable", name=option.name, msg=error or ""))
        return None
    return key, ckpt


def display_corpus_name(name: str) -> str:
    """A checkpoint's corpus name without any folder: a server path is never shown.

    Older checkpoints (and the CLI before it stored base names) may hold a path; a
    checkpoint's free-text note may hold a whole command line, so it is not shown either.
    """
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return corpus_ui.corpus_display_name(base) if base else t("model_source.corpus_unknown")


def corpus_caption(ckpt: Checkpoint, corpus_text: str | None) -> str:
    """'Corpus: name · N characters · vocabulary V' as Markdown, the name escaped (characters only when the text is known)."""
    parts = [t.md("model_source.corpus_line", name=display_corpus_name(ckpt.corpus_name))]
    if corpus_text:
        parts.append(t("model_source.corpus_chars", n=len(corpus_text)))
    parts.append(t("model_source.corpus_vocab", v=len(ckpt.vocab)))
    return " · ".join(parts)


def _summary_ui(choice: ModelChoice) -> None:
    """Always say which model is in use: description, corpus, epochs."""
    ckpt = choice.checkpoint
    st.markdown(t.md("model_source.using", label=describe(ckpt)))
    st.caption(corpus_caption(ckpt, choice.corpus_text))
    if not ckpt.history:
        st.warning(t("model_source.untrained_note"))


def live_status_ui(choice: ModelChoice, follow: bool) -> None:
    """While the chosen session run still trains: say so, keep the job alive, and rerun on a new epoch.

    `follow=True` reruns the page whenever an epoch ends (the Hidden states
    page redraws from the newer weights); otherwise the note only says which
    epoch is in use. The note is redrawn only when the run has news (its poll
    component asks the lab's route, `lab_ui.poll`); nothing is asked once the run is done.
    """
    job = choice.job
    if job is None or job.done:
        return

    @turns.fragment
    def _watch() -> None:
        live = manager().get(job.id, owner_id())  # also marks the job as watched, so it is not reaped
        if live is None:
            return
        job_poll_element("model-source", live, manager())
        epochs = live.epochs_done(choice.run)  # the published weights are those of the last finished epoch
        planned = live.planned_epochs(choice.run)
        st.caption(t("model_source.live", e=epochs, n=planned, m=choice.epochs))
        if live.done or (follow and epochs != choice.epochs):
            st.rerun()

    _watch()
