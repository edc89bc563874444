"""Checkpoints: config, vocabulary, weights, optimiser state and history in one file.

The file is a `torch.save` of plain containers (dicts, lists, strings,
numbers, tensors) so it loads with `torch.load(weights_only=True)`: no pickled
code ever runs. Writes go to a temporary file that is renamed into place, so a
crash never leaves half a checkpoint where a good one was.

A checkpoint may come from anyone (an upload), so loading validates all of it
before anything large is allocated: the byte size, the archive (uncompressed,
as `torch.save` writes it, so nothing inflates), every tensor's storage read
from the archive's own records before `torch.load` (each tensor stores each of
its values once, so the values a file declares are bounded by its size; see
`tensor_archive`), the vocabulary and hidden size
against `limits`, every tensor's shape against the declared model (computed
arithmetically), finite weights, numeric history, and an optimiser state that
fits the model (a malformed one is dropped, and `optimizer_dropped` says so).

A run with epochs of k minibatches also keeps where its data stream stood (`training.StreamPoint`: the
pass's shuffle, its position, the carried state), so it resumes mid-pass exactly; a file without it (older,
or a malformed one, dropped on load) resumes as before, with a new pass from the sampler's RNG.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .corpus import Corpus
from .errors import Cause, CheckpointError, LabError, detached
from .files import write_atomically
from .limits import MAX_CHECKPOINT_BYTES, MAX_CHECKPOINT_TEXT, MAX_LAYERS, MAX_OWN_CHECKPOINT_BYTES, MAX_VOCAB
from .messages import Message
from .models import CharModel, build_model, check_size, expected_shapes
from .tensor_archive import ForeignObject, TooManyTensors, tensor_layout
from .training import EpochEvent, StreamPoint, TrainConfig, Trainer

FORMAT = "rnn-lyrics-lab/1"
# Tensors in one file. This app writes a few dozen at most (3 layers of 4 weights, embedding and dense layer,
# and with Adam two moments and a step per weight); each one read costs work whatever its size.
MAX_TENSORS = 1_000


@dataclass
class Checkpoint:
    config: TrainConfig
    vocab: list[str]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    history: list[EpochEvent] = field(default_factory=list)
    corpus_name: str = ""
    rng_state: list[Any] | None = None
    note: str = ""
    best_epoch: int | None = None  # the epoch whose weights these are, when kept as best by validation
    optimizer_dropped: bool = False  # the file's optimiser state was malformed and left out on load
    stream: StreamPoint | None = None  # where the minibatch stream stood (epochs of k minibatches only)

    def build_model(self) -> CharModel:
        c = self.config
        model = build_model(
            c.model, len(self.vocab), c.hidden, c.seed, c.num_layers, c.dropout, c.embed, c.nonlinearity
        )
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as exc:
            raise CheckpointError(
                "error.checkpoint.weights_do_not_fit",
                model=self.config.model,
                cause=Cause(exc),
            ) from exc
        return model

    def describe(self) -> str:
        last = self.history[-1] if self.history else None
        ppl = f", perplexity {last.perplexity:.2f} after {last.epoch} epochs" if last else ", untrained"
        return f"{self.config.model}, {self.config.hidden} hidden units, vocabulary {len(self.vocab):,}{ppl}"


def from_trainer(trainer: Trainer, note: str = "", best: bool = False) -> Checkpoint:
    """The trainer's current weights, or with `best=True` its best-by-validation weights when it has them.

    Best weights come without the optimiser state and the stream point: Adam's moments and
    the carried state belong to the last weights, and continuing the best with them would be inconsistent.
    """
    use_best = best and trainer.best_state is not None and trainer.best_epoch != trainer.epoch
    weights = trainer.best_state if use_best else trainer.model.state_dict()
    return Checkpoint(
        config=trainer.config,
        vocab=list(trainer.corpus.idx_to_char),
        model_state={k: v.detach().cpu().clone() for k, v in weights.items()},
        optimizer_state=None if use_best else copy.deepcopy(trainer.optimizer.state_dict()),  # the worker mutates it
        history=list(trainer.history),
        corpus_name=trainer.corpus.name,
        rng_state=_rng_to_list(trainer.rng.getstate()),
        note=note,
        best_epoch=trainer.best_epoch if best else None,
        stream=None if use_best else trainer.stream_point,  # immutable: the trainer makes a new one each epoch
    )


def _rng_to_list(state: tuple) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_list(data: list[Any]) -> tuple:
    version, internal, gauss = data
    return (int(version), tuple(int(x) for x in internal), gauss)


def to_bytes(ckpt: Checkpoint, half: bool = False) -> bytes:
    """The file's bytes; `half=True` stores the weights in float16 (half the size, loaded back as float32).

    float16 keeps about 3 significant digits, plenty for sampling from a trained
    model; a weight beyond float16's range (±65,504) is refused rather than
    silently turned into infinity.
    """
    weights = ckpt.model_state
    if half:
        weights = {k: v.half() for k, v in weights.items()}
        if not all(bool(torch.isfinite(v).all()) for v in weights.values()):
            raise CheckpointError(
                "error.checkpoint.float16_range",
            )
    payload = {
        "format": FORMAT,
        "config": ckpt.config.to_dict(),
        "vocab": ckpt.vocab,
        "model_state": weights,
        "optimizer_state": ckpt.optimizer_state,
        "history": [e.to_dict() for e in ckpt.history],
        "corpus_name": ckpt.corpus_name,
        "rng_state": ckpt.rng_state,
        "note": ckpt.note,
        "best_epoch": ckpt.best_epoch,
        "stream": _stream_to_dict(ckpt.stream),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def estimated_bytes(ckpt: Checkpoint, with_optimizer: bool = True) -> int:
    """About how large `to_bytes(ckpt)` will be, from the tensors' sizes (without serialising anything).

    Lets the page say before a download whether the file will fit under the
    upload limit; the small rest (config, vocabulary, history) is allowed for.
    """
    tensors = list(ckpt.model_state.values())
    if with_optimizer and isinstance(ckpt.optimizer_state, dict):
        for entry in ckpt.optimizer_state.get("state", {}).values():
            tensors += [v for v in entry.values() if isinstance(v, torch.Tensor)]
    if ckpt.stream is not None and ckpt.stream.carried is not None:
        tensors += list(ckpt.stream.carried)
    rest = 64 * 1024 + 16 * (len(ckpt.vocab) + len(ckpt.history) * 10)
    return sum(t.numel() * t.element_size() + 64 for t in tensors) + rest


def save(ckpt: Checkpoint, path: str | Path, half: bool = False) -> Path:
    """Write atomically: a temp file in the same folder, then `os.replace` (`half`: see `to_bytes`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, to_bytes(ckpt, half))
    return path


def _too_big(name: str, size: int, max_bytes: int) -> CheckpointError:
    return CheckpointError(
        "error.checkpoint.too_big",
        name=name,
        mb=size / 2**20,
        limit_mb=max_bytes // 2**20,
    )


def _not_torch(name: str) -> CheckpointError:
    return CheckpointError("error.checkpoint.not_torch", name=name)


def _check_archive(data: bytes, name: str, max_bytes: int) -> list[zipfile.ZipInfo]:
    """Refuse what `torch.load` could blow up: old non-zip formats and compressed or oversized members.

    `torch.save` writes an uncompressed zip, so a member that is compressed (or
    whose header claims another size) is not ours, and reading it could inflate
    far beyond the file's size. The legacy non-zip format reads storage sizes
    from the file itself, so it is refused too.
    """
    if not data.startswith(b"PK\x03\x04"):
        raise _not_torch(name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(
            "error.checkpoint.truncated_archive",
            name=name,
        ) from exc
    if any(m.compress_type != zipfile.ZIP_STORED or m.compress_size != m.file_size for m in members):
        raise CheckpointError(
            "error.checkpoint.compressed",
            name=name,
        )
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise _too_big(name, total, max_bytes)
    return members


def _check_tensors(data: bytes, members: list[zipfile.ZipInfo], name: str) -> None:
    """Refuse, from the archive's records alone, tensors that do not store each of their values once.

    Runs before `torch.load`, which would otherwise materialise them: a tensor
    must be contiguous from offset 0 over a storage of exactly its size, no two
    tensors may share a storage, and each storage's record must hold exactly
    the bytes the pickle declares. So the values a file declares fit in it.
    """
    try:
        layout = tensor_layout(data, members, MAX_TENSORS)
    except TooManyTensors as exc:
        raise CheckpointError(
            "error.checkpoint.too_many_tensors",
            name=name,
            limit=MAX_TENSORS,
        ) from exc
    except ForeignObject as exc:
        raise CheckpointError(
            "error.checkpoint.foreign_object",
            name=name,
            cause=Cause(exc),
        ) from exc
    except Exception as exc:  # a broken pickle raises many types
        raise CheckpointError(
            "error.checkpoint.damaged",
            name=name,
            cause=Cause(exc),
        ) from exc
    declared = layout.declared_bytes
    if declared > len(data):
        raise CheckpointError(
            "error.checkpoint.declared_too_much",
            name=name,
            declared_mb=declared / 2**20,
            file_mb=len(data) / 2**20,
        )
    if not layout.honest():
        raise _not_stored_once(name)


def _not_stored_once(name: str) -> CheckpointError:
    return CheckpointError(
        "error.checkpoint.not_stored_once",
        name=name,
    )


def _owns_storage(tensor: torch.Tensor) -> bool:
    """After loading, the same fact `_check_tensors` read from the records: contiguous, offset 0, no extra bytes."""
    nbytes = tensor.numel() * tensor.element_size()
    return tensor.is_contiguous() and tensor.storage_offset() == 0 and tensor.untyped_storage().nbytes() == nbytes


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _history(raw: Any, name: str) -> list[EpochEvent]:
    """Epoch records, each field a finite number of its type (the pages format and plot them)."""
    bad = CheckpointError(
        "error.checkpoint.bad_history",
        name=name,
    )
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 100_000:
        raise bad
    events = []
    ints = {"epoch", "steps", "peak_rss"}
    for entry in raw:
        if not isinstance(entry, dict):
            raise bad
        try:
            event = EpochEvent(**entry)
        except TypeError as exc:
            raise bad from exc
        for key, value in event.to_dict().items():
            if key in ("val_perplexity", "best_epoch", "peak_rss") and value is None:
                continue
            if not _finite_number(value) or (key in ints and not isinstance(value, int)):
                raise bad
        events.append(event)
    return events


def _rng_state(raw: Any) -> list[Any] | None:
    """A `random.Random` state as `_rng_to_list` writes it, or None (a fresh one is a safe fallback)."""
    if not (isinstance(raw, list) and len(raw) == 3 and isinstance(raw[2], float | type(None))):
        return None
    version, internal, _ = raw
    if not (isinstance(version, int) and isinstance(internal, list) and len(internal) == 625):
        return None
    if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**32 for x in internal):
        return None
    return raw


def _stream_to_dict(point: StreamPoint | None) -> dict[str, Any] | None:
    if point is None:
        return None
    carried = None if point.carried is None else list(point.carried)
    return {"pass_rng": _rng_to_list(point.pass_rng), "taken": point.taken, "carried": carried}


def _stream_point(raw: Any, config: TrainConfig) -> StreamPoint | None:
    """A stream point as `_stream_to_dict` writes it, or None: resuming then starts a new pass, as before points.

    Each carried tensor must be one (batch_size, hidden) state of at most 2 per layer (LSTM's H and C),
    finite and stored once; whether their number fits the model is `Trainer.continue_stream`'s to say.
    """
    if not isinstance(raw, dict) or set(raw) != {"pass_rng", "taken", "carried"}:
        return None
    rng, taken, carried = _rng_state(raw["pass_rng"]), raw["taken"], raw["carried"]
    if rng is None or isinstance(taken, bool) or not isinstance(taken, int) or not 0 < taken < 2**31:
        return None
    if carried is not None:
        if not (isinstance(carried, list) and 0 < len(carried) <= 2 * MAX_LAYERS):
            return None
        shape = (config.batch_size, config.hidden)
        for tensor in carried:
            if not (isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tuple(tensor.shape) == shape):
                return None
            if not (_owns_storage(tensor) and bool(torch.isfinite(tensor).all())):
                return None
        carried = tuple(t.float() for t in carried)
    return StreamPoint(_rng_from_list(rng), taken, carried)


def _model_state(raw: Any, config: TrainConfig, vocab_size: int, name: str) -> dict[str, torch.Tensor]:
    """The weights, each checked against the shape the declared model needs, and finite."""
    expected = expected_shapes(config.model, vocab_size, config.hidden, config.num_layers, config.embed)
    if not isinstance(raw, dict) or set(raw) != set(expected):
        raise CheckpointError(
            "error.checkpoint.param_names",
            name=name,
            model=config.model,
        )
    for key, shape in expected.items():
        tensor = raw[key]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tuple(tensor.shape) != shape:
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise CheckpointError(
                "error.checkpoint.param_shape",
                name=name,
                model=config.model,
                key=key,
                got=got,
                shape=shape,
            )
        if not _owns_storage(tensor):
            raise _not_stored_once(name)
    if not all(bool(torch.isfinite(raw[key]).all()) for key in expected):
        raise CheckpointError(
            "error.checkpoint.not_finite",
            name=name,
        )
    # float16 files (saved with `half=True` to fit the shipped budget) come back as float32
    return {key: raw[key].float() for key in expected}


def _optimizer_state_ok(raw: Any, config: TrainConfig, shapes: list[tuple[int, ...]]) -> bool:
    """True when `raw` is a `state_dict()` of the configured optimiser over these parameters.

    torch's own `load_state_dict` checks the group sizes but not the tensors'
    shapes or values, which would only fail mid-training; this checks all of it.
    """
    if not isinstance(raw, dict) or set(raw) != {"state", "param_groups"}:
        return False
    groups, state = raw["param_groups"], raw["state"]
    if not (isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], dict)):
        return False
    if groups[0].get("params") != list(range(len(shapes))) or not isinstance(state, dict):
        return False
    tensors = {"sgd": {"momentum_buffer"}, "adam": {"exp_avg", "exp_avg_sq", "step"}}[config.optimizer]
    for index, entry in state.items():
        if not (isinstance(index, int) and 0 <= index < len(shapes) and isinstance(entry, dict)):
            return False
        if not set(entry) <= tensors:
            return False
        for key, value in entry.items():
            if key == "step":
                ok = _finite_number(value) or (isinstance(value, torch.Tensor) and value.numel() == 1)
            else:
                ok = isinstance(value, torch.Tensor) and tuple(value.shape) == shapes[index] and _owns_storage(value)
            if not ok or (isinstance(value, torch.Tensor) and not bool(torch.isfinite(value).all())):
                return False
    return True


def _best_epoch(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 100_000 else None


def _text(value: Any) -> str:
    return value[:MAX_CHECKPOINT_TEXT] if isinstance(value, str) else ""


def from_bytes(data: bytes, name: str = "the checkpoint", max_bytes: int = MAX_CHECKPOINT_BYTES) -> Checkpoint:
    """Parse and validate; every failure is a `CheckpointError` saying what is wrong.

    Everything is checked before the model is built, so a file declaring a
    huge model is refused without allocating it (see the module docstring).
    """
    if not data:
        raise CheckpointError("error.checkpoint.empty", name=name)
    if len(data) > max_bytes:
        raise _too_big(name, len(data), max_bytes)
    _check_tensors(data, _check_archive(data, name, max_bytes), name)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(
            "error.checkpoint.damaged",
            name=name,
            cause=Cause(exc),
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            "error.checkpoint.not_this_app",
            name=name,
        )
    try:
        if not isinstance(payload.get("config"), dict):
            raise CheckpointError("error.checkpoint.no_settings", name=name)
        config = TrainConfig.from_dict(payload["config"])
        config.validate()
        raw_vocab = payload.get("vocab")
        if not isinstance(raw_vocab, list) or len(raw_vocab) > MAX_VOCAB:
            raise CheckpointError(
                "error.checkpoint.vocab_too_big",
                name=name,
                limit=MAX_VOCAB,
            )
        vocab = list(raw_vocab)
        if not vocab or not all(isinstance(c, str) and len(c) == 1 for c in vocab) or len(set(vocab)) != len(vocab):
            raise CheckpointError("error.checkpoint.bad_vocab", name=name)
        # limits, before any weight is looked at
        check_size(config.model, len(vocab), config.hidden, config.num_layers, config.dropout, config.embed)
        model_state = _model_state(payload.get("model_state"), config, len(vocab), name)
        optimizer_state = payload.get("optimizer_state")
        shapes = [tuple(t.shape) for t in model_state.values()]
        dropped = optimizer_state is not None and not _optimizer_state_ok(optimizer_state, config, shapes)
        ckpt = Checkpoint(
            config=config,
            vocab=vocab,
            model_state=model_state,
            optimizer_state=None if dropped else optimizer_state,
            history=_history(payload.get("history"), name),
            corpus_name=_text(payload.get("corpus_name")),
            rng_state=_rng_state(payload.get("rng_state")),
            note=_text(payload.get("note")),
            best_epoch=_best_epoch(payload.get("best_epoch")),
            optimizer_dropped=dropped,
            stream=_stream_point(payload.get("stream"), config),
        )
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            "error.checkpoint.incompatible",
            name=name,
            cause=Cause(exc),
        ) from exc
    ckpt.build_model()  # proves the weights fit the declared model
    return ckpt


def from_own_bytes(data: bytes, name: str = "the checkpoint") -> Checkpoint:
    """`from_bytes` for bytes this server wrote itself: a worker's start and published checkpoints.

    Validated like any file, but bounded by what the largest allowed model
    takes with its Adam state, not by the upload limit, which is for visitors'
    files: a run whose checkpoint outgrows 20 MB must still train and publish.
    """
    return from_bytes(data, name, MAX_OWN_CHECKPOINT_BYTES)


def load_own(path: str | Path) -> Checkpoint:
    """`load` for a checkpoint file this server wrote (the run store's), under the server's own bound."""
    return load(path, MAX_OWN_CHECKPOINT_BYTES)


def load(path: str | Path, max_bytes: int = MAX_CHECKPOINT_BYTES) -> Checkpoint:
    """A checkpoint file on disk (the CLI, shipped checkpoints); its size is checked before it is read."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError("error.checkpoint.missing_path", path=path)
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_big(path.name, size, max_bytes)
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)  # the file may have grown since stat
    return from_bytes(data, path.name, max_bytes)


Read = tuple[Checkpoint | None, LabError | None]


def _unreadable(name: str, exc: Exception) -> CheckpointError:
    what = type(exc).__name__
    return CheckpointError("error.checkpoint.unreadable", name=name, what=what)


def read_bytes(data: bytes, name: str) -> Read:
    """`(checkpoint, None)` or `(None, the error)` for bytes from anyone (an upload); never raises for bad bytes.

    `from_bytes` promises a `CheckpointError` for every bad file; the broad
    fallback keeps a caller (a page) alive if a torch version ever raises
    something else. The error, detached, not its text, is returned: a cached
    result must still read right after the user switches language.
    """
    try:
        return from_bytes(data, name), None
    except LabError as exc:
        return None, detached(exc)
    except Exception as exc:  # noqa: BLE001 -- a bad upload must never take the caller down
        return None, _unreadable(name, exc)


def read_file(path: str | Path, max_bytes: int = MAX_CHECKPOINT_BYTES) -> Read:
    """`read_bytes` for a file on disk (the operator's own, so `max_bytes` may be the CLI's larger limit).

    The error names the file, never its folder: a page shows it to visitors,
    and a file may vanish between the picker's listing and this read.
    """
    if not Path(path).expanduser().is_file():
        name = Path(path).name
        return None, CheckpointError("error.checkpoint.missing_name", name=name)
    try:
        return load(path, max_bytes), None
    except LabError as exc:
        return None, detached(exc)
    except Exception as exc:  # noqa: BLE001 -- one bad file must not hide the others
        return None, _unreadable(Path(path).name, exc)


def restore_trainer(ckpt: Checkpoint, trainer: Trainer) -> None:
    """Put a checkpoint's weights, optimiser state, history and RNG into `trainer`.

    The trainer must have been built on a corpus with the same vocabulary.
    """
    if (ckpt.config.model, ckpt.config.hidden) != (trainer.config.model, trainer.config.hidden):
        raise CheckpointError(
            "error.checkpoint.other_model",
            ckpt_model=ckpt.config.model,
            ckpt_hidden=ckpt.config.hidden,
            run_model=trainer.config.model,
            run_hidden=trainer.config.hidden,
        )
    if list(trainer.corpus.idx_to_char) != ckpt.vocab:
        raise CheckpointError(
            "error.checkpoint.other_vocab",
            ckpt_vocab=len(ckpt.vocab),
            run_vocab=trainer.corpus.vocab_size,
            corpus=ckpt.corpus_name or Message("error.checkpoint.unknown_corpus"),
        )
    arch = ("num_layers", "embed")
    if any(getattr(ckpt.config, a) != getattr(trainer.config, a) for a in arch):
        raise CheckpointError(
            "error.checkpoint.other_layers",
            ckpt_layers=ckpt.config.num_layers,
            ckpt_embed=ckpt.config.embed,
            run_layers=trainer.config.num_layers,
            run_embed=trainer.config.embed,
        )
    _check_same_nonlinearity(ckpt, trainer)
    trainer.model.load_state_dict(ckpt.model_state)
    if ckpt.optimizer_state and ckpt.config.optimizer == trainer.config.optimizer:
        try:
            trainer.optimizer.load_state_dict(ckpt.optimizer_state)
        except (ValueError, KeyError, RuntimeError):
            pass  # a fresh optimiser state is a safe fallback; the weights are what matter
    trainer.history = list(ckpt.history)
    if ckpt.rng_state:
        try:
            trainer.rng.setstate(_rng_from_list(ckpt.rng_state))
        except (TypeError, ValueError):
            pass
    # The pass goes on only if it is the same pass: same minibatches cut from the same training split.
    same_pass = ("sampling", "batch_size", "num_steps", "val_fraction")
    if ckpt.stream is not None and all(getattr(ckpt.config, a) == getattr(trainer.config, a) for a in same_pass):
        trainer.continue_stream(ckpt.stream)  # it refuses a point that does not fit: the RNG above is the fallback


def _check_same_nonlinearity(ckpt: Checkpoint, trainer: Trainer) -> None:
    """A tanh and a ReLU RNN have the same weights' shapes, so only the config tells them apart: refuse a mix."""
    ours, theirs = trainer.config.nonlinearity, ckpt.config.nonlinearity
    if ours != theirs:
        raise CheckpointError("error.checkpoint.other_nonlinearity", theirs=theirs, ours=ours)


def resume(
    ckpt: Checkpoint | None,
    corpus: Corpus,
    config: TrainConfig,
    more_epochs: int = 0,
    memory_budget: float | None = None,
) -> Trainer:
    """A trainer that carries on from `ckpt` exactly where it stopped (None: a fresh one from `config`).

    The one way every caller continues a run (the CLI's `--resume`, the Train page's Continue and
    start-from, a stored run, a worker given its starting point), so all of them restore the same
    things: weights, optimiser state, history, the sampler's RNG and (epochs of k minibatches) where the
    pass stood. `config` says how to train on
    (it must describe the checkpoint's model: `restore_trainer` says so otherwise); the run is planned
    to `config.epochs` in all, or `more_epochs` beyond what the checkpoint has done if that is later.
    `corpus` must be the run's own, document starts included, or its validation split would move.
    The `Trainer` checks the run's estimated memory against `memory_budget` (None: the server's per-run
    budget; `math.inf`: the operator's `--force`) before anything big is allocated.
    """
    config = dataclasses.replace(config)
    config.epochs = max(config.epochs, (len(ckpt.history) if ckpt else 0) + more_epochs)
    trainer = Trainer(corpus, config, memory_budget=memory_budget)
    if ckpt is not None:
        restore_trainer(ckpt, trainer)
    return trainer
