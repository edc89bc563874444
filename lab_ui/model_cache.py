"""The models the model pages use, built once: checkpoint files, uploads, their cache keys and caches.

Process-wide `st.cache_resource` caches keyed by content (a job's run and
epoch, a file's path, modification time and size, an upload's hash), so
sessions share them safely and a torch model is never kept in
`st.session_state`. Shipped checkpoints are the `*.pt` files in the
repository's `checkpoints/` folder; `RNN_LAB_CHECKPOINTS` points the app at
another folder instead (the tests and the screenshot runs use a temporary one).
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path

import numpy as np
import streamlit as st

from lm_core import provenance
from lm_core.analysis import bptt
from lm_core.checkpoint import Checkpoint, read_bytes, read_file
from lm_core.corpus import BOOK_FILE, book_preprocess, read_corpus_bytes
from lm_core.errors import CorpusError, LabError, localized
from lm_core.limits import MAX_CLI_CHECKPOINT_BYTES
from lm_core.models import CharModel, build_model
from lm_core.provenance import TrainingText
from lm_core.training import TrainConfig

from . import corpus_ui
from .i18n import current_lang

CHECKPOINT_ENV = "RNN_LAB_CHECKPOINTS"
REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoint_dir() -> Path:
    """Folder of shipped checkpoints: `$RNN_LAB_CHECKPOINTS` if set, else the repository's `checkpoints/`."""
    override = os.environ.get(CHECKPOINT_ENV, "").strip()
    return Path(override).expanduser() if override else REPO_CHECKPOINTS


def shipped_files() -> list[Path]:
    """The `*.pt` files of the checkpoint folder, by name (an absent folder has none)."""
    folder = checkpoint_dir()
    try:
        return sorted(p for p in folder.glob("*.pt") if p.is_file())
    except OSError:
        return []


def parse_checkpoint(data: bytes, name: str, lang: str = "en") -> tuple[Checkpoint | None, str | None]:
    """`(checkpoint, None)` or `(None, user-facing reason in lang)`; never raises for bad bytes."""
    ckpt, error = read_bytes(data, name)
    return ckpt, (localized(error, lang) if error is not None else None)


def parse_upload(data: bytes, name: str) -> tuple[Checkpoint | None, str | None]:
    """`parse_checkpoint` for an uploaded file, cached by content: a refused file is not parsed again on rerun."""
    ckpt, error = uploaded_checkpoint(hashlib.sha256(data).hexdigest(), name, data)
    return ckpt, (localized(error, current_lang()) if error is not None else None)


def _book_full_text() -> str | None:
    """The book's corpus as the server's operator provided it (verified by hash), preprocessed, untruncated."""
    data = corpus_ui.operator_book_bytes()
    if data is None:
        return None
    try:
        return book_preprocess(read_corpus_bytes(data, BOOK_FILE), None)
    except CorpusError:
        return None


def find_training_text(corpus_name: str, vocab: list[str]) -> TrainingText:
    """`lm_core.provenance.find_training_text`, with the book's text where this server's operator provides it."""
    return provenance.find_training_text(corpus_name, vocab, _book_full_text)


# -- cache keys: the same weights, the same key, whichever page or picker asks ---------------------------------


def job_weights_key(job_id: str, run: int, epochs: int) -> str:
    """A run of this server's job after `epochs` epochs (each new epoch is new weights)."""
    return f"job:{job_id}:{run}:{epochs}"


def file_weights_key(path: Path) -> str:
    """A checkpoint file as it is now (rewritten in place, it is other weights)."""
    stat = path.stat()
    return f"file:{path}:{stat.st_mtime_ns}:{stat.st_size}"


def upload_weights_key(digest: str) -> str:
    return f"upload:{digest[:16]}"


def fresh_weights_key(kind: str, vocab_size: int, hidden: int) -> str:
    return f"fresh:{kind}:{vocab_size}:{hidden}"


# -- caches (process-wide; keyed by content, so sessions share them safely) ---------------------------------


@st.cache_resource(max_entries=16, show_spinner=False)
def cached_model(key: str, _ckpt: Checkpoint) -> CharModel:
    """Built once per weights version; only read afterwards (trace and generate run under no_grad)."""
    model = _ckpt.build_model()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@st.cache_resource(max_entries=32, show_spinner=False)
def _shipped(path: str, mtime_ns: int, size: int) -> tuple[Checkpoint | None, LabError | None]:
    """A shipped file parsed once per version (mtime and size in the key); the error, not its text, is cached."""
    return read_file(path, MAX_CLI_CHECKPOINT_BYTES)  # the operator's own files, like the CLI's


@st.cache_resource(max_entries=8, show_spinner=False)
def uploaded_checkpoint(digest: str, name: str, _data: bytes) -> tuple[Checkpoint | None, LabError | None]:
    return read_bytes(_data, name)


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_training_text(corpus_name: str, vocab_key: str, _vocab: tuple[str, ...]) -> tuple[str | None, str, dict]:
    return find_training_text(corpus_name, list(_vocab))


def training_text(ckpt: Checkpoint) -> tuple[str | None, str, dict]:
    """`cached_training_text` of a checkpoint: its corpus found again, once per corpus and vocabulary."""
    vocab_key = hashlib.sha256("\x00".join(ckpt.vocab).encode()).hexdigest()
    return cached_training_text(ckpt.corpus_name, vocab_key, tuple(ckpt.vocab))


def search_corpus(model: CharModel, char_to_idx: dict[str, int], corpus_text: str) -> str:
    """The part of the training text the Hidden states page's unit search reads: the first
    `bptt.search_limit(model)` characters, without those outside the vocabulary."""
    return "".join(ch for ch in corpus_text[: bptt.search_limit(model)] if ch in char_to_idx)


@st.cache_resource(max_entries=8, show_spinner=False)
def search_states(key: str, corpus: str, _model: CharModel, _char_to_idx: dict[str, int]) -> np.ndarray:
    """H at every position of `corpus` (`search_corpus`), once per weights version `key`: read-only, shared.

    Why a resource, not `st.cache_data`: the array is (30,000 x h) floats, 46 MB for the shipped LSTM, and
    cache_data would unpickle a copy of it on every rerun of the page.
    """
    states = bptt.corpus_states(_model, [_char_to_idx[ch] for ch in corpus])
    states.flags.writeable = False
    return states


def shipped_checkpoint(path: Path) -> Checkpoint | None:
    """A shipped file's checkpoint (cached like `load_shipped`), None if it cannot be used: no language needed."""
    stat = path.stat()
    return _shipped(str(path), stat.st_mtime_ns, stat.st_size)[0]


MAX_GRADIENT_CORPUS = 200_000  # training-text characters the Gradients page draws its minibatches from


def corpus_ids(
    key: str, char_to_idx: dict[str, int], corpus_text: str | None, config: TrainConfig
) -> tuple[str, list[int]] | None:
    """The Gradients page's corpus: the training text as ids, with the cache key naming it; None when there is
    no text long enough for one minibatch row."""
    if not corpus_text:
        return None
    known = [char_to_idx[ch] for ch in corpus_text[:MAX_GRADIENT_CORPUS] if ch in char_to_idx]
    return (f"corpus:{key}", known) if len(known) > config.num_steps + 1 else None


@st.cache_data(max_entries=16, show_spinner=False)
def distance_curve(
    key: str, data_key: str, num_steps: int, batch: int, _model: CharModel, _ids: list[int]
) -> bptt.DistanceCurve:
    """The Gradients page's gradient-against-distance curve of the weights `key` over the corpus `data_key`."""
    return bptt.gradient_by_distance(_model, _ids, num_steps, batch)


@st.cache_data(max_entries=64, show_spinner=False)
def connectivity(key: str, text: str, pos: int, _model: CharModel, _ids: list[int]) -> np.ndarray:
    """The Gradients page's section 1: how much each of the first `pos` characters of `text` moves the prediction
    of the next one, for the weights `key` (the page and the server's warm-up share it)."""
    return bptt.connectivity(_model, _ids, pos - 1)


@st.cache_data(max_entries=32, show_spinner=False)
def surprisal(key: str, text: str, _model: CharModel, _ids: list[int]) -> bptt.Surprisal:
    """The Gradients page's surprise per character of `text` for the weights `key` (shared like `connectivity`)."""
    return bptt.surprisal(_model, _ids)


RHO_HIDDEN = 256  # the book's h for the Gradients page's ρ experiment's fresh RNN
RHO_DEFAULT = 1.0  # the ρ slider's first value


@st.cache_resource(max_entries=4, show_spinner=False)
def rho_base(vocab_size: int) -> CharModel:
    """The fresh RNN of the ρ experiment; never changed (each ρ rescales a copy)."""
    return build_model("scratch-rnn", vocab_size, RHO_HIDDEN, seed=0)


@st.cache_data(max_entries=4, show_spinner=False)
def rho_base_radius(vocab_size: int) -> float:
    """ρ of the fresh RNN's W_hh before rescaling: one eigenvalue computation per vocabulary size."""
    return bptt.spectral_radius(bptt.recurrent_weight(rho_base(vocab_size)))


@st.cache_data(max_entries=64, show_spinner=False)
def rho_run(
    vocab_size: int, data_key: str, rho: float, num_steps: int, batch: int, _ids: list[int]
) -> tuple[np.ndarray, float, float]:
    """(gradient by distance, minibatch gradient norm, loss) of the fresh RNN rescaled to ρ: the Gradients page's
    section 3 over the corpus `data_key` (shared with the server's warm-up, which computes the first ρ)."""
    model = copy.deepcopy(rho_base(vocab_size))
    bptt.set_spectral_radius(model, rho, current=rho_base_radius(vocab_size))
    curve = bptt.gradient_by_distance(model, _ids, num_steps, batch)
    X, Y = bptt.corpus_minibatch(_ids, batch, num_steps)
    view = bptt.minibatch_gradient(model, X, Y, theta=1.0)
    return curve.mean, view.norm, view.loss


def load_shipped(path: Path) -> tuple[Checkpoint | None, str | None]:
    """A shipped checkpoint, parsed once per file version (cached), or the reason it cannot be used."""
    try:
        stat = path.stat()
    except OSError as exc:
        return None, f"{path.name}: {exc.strerror}"
    ckpt, error = _shipped(str(path), stat.st_mtime_ns, stat.st_size)
    return ckpt, (localized(error, current_lang()) if error is not None else None)


def fresh_companion_kind(kind: str) -> str:
    """The fresh model the Gradients page draws beside a model of `kind` when no trained one shares its vocabulary."""
    return "scratch-gru" if kind != "scratch-gru" else "scratch-rnn"


@st.cache_resource(max_entries=12, show_spinner=False)
def fresh_model(kind: str, vocab_size: int, hidden: int) -> CharModel:
    """An untrained model (seed 0), read-only like the checkpoint models."""
    model = build_model(kind, vocab_size, hidden, seed=0)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
