"""Checkpoints: a faithful round trip, atomic writes, clear errors for bad files, and no code execution."""

from __future__ import annotations

import dataclasses
import io
import math
import os
import pickle
import random
from pathlib import Path

import pytest
import torch

from lm_core import checkpoint
from lm_core.corpus import Corpus
from lm_core.errors import CheckpointError, localized
from lm_core.generation import generate
from lm_core.training import EpochEvent, TrainConfig, Trainer


def _config(**overrides: object) -> TrainConfig:
    cfg = TrainConfig(model="gru", hidden=16, num_steps=8, batch_size=8, optimizer="adam", lr=1e-2, epochs=2)
    return dataclasses.replace(cfg, **overrides)


@pytest.fixture()
def two_epoch_trainer(tiny_corpus: Corpus) -> Trainer:
    """A trainer after 2 epochs (Adam, so the optimiser has state worth saving)."""
    trainer = Trainer(tiny_corpus, _config())
    list(trainer.train())
    return trainer


@pytest.fixture()
def saved(two_epoch_trainer: Trainer, tmp_path: Path) -> Path:
    return checkpoint.save(checkpoint.from_trainer(two_epoch_trainer, note="test"), tmp_path / "run.pt")


def _equal_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def _equal_nested(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal_nested(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal_nested(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# -- round trip ------------------------------------------------------------------------------------


def test_round_trip_keeps_everything(two_epoch_trainer: Trainer, saved: Path, tiny_corpus: Corpus) -> None:
    """Weights, config, vocabulary, history, optimiser state and note survive save/load; generation is identical."""
    ckpt = checkpoint.load(saved)
    assert ckpt.config == two_epoch_trainer.config
    assert ckpt.vocab == tiny_corpus.idx_to_char
    assert ckpt.corpus_name == "tiny" and ckpt.note == "test"
    assert ckpt.history == two_epoch_trainer.history and len(ckpt.history) == 2
    assert all(isinstance(e, EpochEvent) for e in ckpt.history)
    assert _equal_state(ckpt.model_state, two_epoch_trainer.model.state_dict())
    assert ckpt.optimizer_state is not None
    assert _equal_nested(ckpt.optimizer_state, two_epoch_trainer.optimizer.state_dict())
    assert len(ckpt.optimizer_state["state"]) == len(list(two_epoch_trainer.model.parameters()))

    model = ckpt.build_model()
    assert _equal_state(model.state_dict(), two_epoch_trainer.model.state_dict())
    for kwargs in ({}, {"strategy": "sample", "seed": 3}):
        before = generate(two_epoch_trainer.model, tiny_corpus, "春风", 30, **kwargs).text
        after = generate(model, ckpt.vocab, "春风", 30, **kwargs).text
        assert before == after
    assert "gru" in ckpt.describe() and "16 hidden" in ckpt.describe()


def test_bytes_round_trip_without_a_file(two_epoch_trainer: Trainer) -> None:
    """to_bytes/from_bytes (the upload/download path) round-trip too."""
    data = checkpoint.to_bytes(checkpoint.from_trainer(two_epoch_trainer))
    ckpt = checkpoint.from_bytes(data)
    assert _equal_state(ckpt.model_state, two_epoch_trainer.model.state_dict())


def test_checkpoint_is_a_snapshot_not_a_view(two_epoch_trainer: Trainer) -> None:
    """from_trainer copies the weights: training on afterwards does not change the checkpoint."""
    ckpt = checkpoint.from_trainer(two_epoch_trainer)
    before = {k: v.clone() for k, v in ckpt.model_state.items()}
    two_epoch_trainer.config.epochs = 3
    list(two_epoch_trainer.train())
    assert _equal_state(ckpt.model_state, before)
    assert not _equal_state(ckpt.model_state, two_epoch_trainer.model.state_dict())


# -- atomic writes ---------------------------------------------------------------------------------


def test_save_leaves_no_temporary_files(two_epoch_trainer: Trainer, tmp_path: Path) -> None:
    """A successful save leaves exactly the target file in the folder (twice, overwriting)."""
    target = tmp_path / "sub" / "model.pt"
    checkpoint.save(checkpoint.from_trainer(two_epoch_trainer), target)
    checkpoint.save(checkpoint.from_trainer(two_epoch_trainer), target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.pt"]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_saved_checkpoint_is_an_ordinary_readable_file(saved: Path) -> None:
    """The temp file's private 0600 mode is not kept: a saved checkpoint is 0644."""
    assert saved.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("failing", ["os.replace", "torch.save"])
def test_failed_save_keeps_the_old_file(
    two_epoch_trainer: Trainer, saved: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """If writing fails midway (rename or serialisation), the previous checkpoint is intact and no temp file remains."""
    old_bytes = saved.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    if failing == "os.replace":
        monkeypatch.setattr(os, "replace", boom)
    else:
        monkeypatch.setattr(torch, "save", boom)
    two_epoch_trainer.config.epochs = 3
    list(two_epoch_trainer.train())  # different weights, so a partial overwrite would be visible
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(checkpoint.from_trainer(two_epoch_trainer), saved)
    monkeypatch.undo()
    assert saved.read_bytes() == old_bytes
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]
    assert len(checkpoint.load(saved).history) == 2


# -- bad files -------------------------------------------------------------------------------------


def test_truncated_checkpoint_is_a_checkpoint_error(saved: Path, tmp_path: Path) -> None:
    """Half a checkpoint is reported as damaged or truncated."""
    data = saved.read_bytes()
    bad = tmp_path / "half.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        checkpoint.load(bad)


@pytest.mark.parametrize(
    "content",
    [random.Random(0).randbytes(2048), "春风吹过小河边\n这不是一个模型文件\n".encode()],
    ids=["random-bytes", "text-file"],
)
def test_non_checkpoint_files_are_refused(tmp_path: Path, content: bytes) -> None:
    """Random bytes or a text file are 'not a checkpoint'."""
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        checkpoint.load(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    """An empty file and a missing path are CheckpointErrors."""
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        checkpoint.load(empty)
    with pytest.raises(CheckpointError, match="No checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")


def test_foreign_torch_file_is_refused(tmp_path: Path) -> None:
    """A valid torch file that is not ours (torch.save({'a': 1})) is refused."""
    path = tmp_path / "other.pt"
    torch.save({"a": 1}, path)
    with pytest.raises(CheckpointError, match="not an RNN Lyrics Lab checkpoint"):
        checkpoint.load(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError):
        checkpoint.load(path)


def test_weights_that_do_not_fit_the_config_are_refused(two_epoch_trainer: Trainer) -> None:
    """A checkpoint whose config says 32 hidden units but whose weights have 16 is refused."""
    ckpt = checkpoint.from_trainer(two_epoch_trainer)
    lying = dataclasses.replace(ckpt, config=dataclasses.replace(ckpt.config, hidden=32))
    with pytest.raises(CheckpointError, match="do not fit"):
        checkpoint.from_bytes(checkpoint.to_bytes(lying))
    wrong_kind = dataclasses.replace(ckpt, config=dataclasses.replace(ckpt.config, model="lstm"))
    with pytest.raises(CheckpointError, match="do not fit"):
        checkpoint.from_bytes(checkpoint.to_bytes(wrong_kind))


def test_malformed_payloads_are_checkpoint_errors(two_epoch_trainer: Trainer) -> None:
    """A bad vocabulary, an invalid config or missing keys are CheckpointErrors, never KeyError/TypeError."""
    good = checkpoint.from_trainer(two_epoch_trainer)
    bad_vocab = dataclasses.replace(good, vocab=good.vocab[:-1] + [good.vocab[0]])
    with pytest.raises(CheckpointError, match="vocabulary"):
        checkpoint.from_bytes(checkpoint.to_bytes(bad_vocab))
    bad_config = dataclasses.replace(good, config=dataclasses.replace(good.config, lr=-1.0))
    with pytest.raises(CheckpointError):
        checkpoint.from_bytes(checkpoint.to_bytes(bad_config))
    buffer = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "vocab": ["a"]}, buffer)
    with pytest.raises(CheckpointError, match="incomplete"):
        checkpoint.from_bytes(buffer.getvalue())


@pytest.mark.parametrize("field, value", [("hidden", 16.0), ("seed", 1.5)])
def test_config_with_non_integer_sizes_is_a_checkpoint_error(
    two_epoch_trainer: Trainer, field: str, value: float
) -> None:
    """A checkpoint whose config holds a non-integer size or seed is refused with a CheckpointError."""
    ckpt = checkpoint.from_trainer(two_epoch_trainer)
    odd = dataclasses.replace(ckpt, config=dataclasses.replace(ckpt.config, **{field: value}))
    with pytest.raises(CheckpointError):
        checkpoint.from_bytes(checkpoint.to_bytes(odd))


class _Evil:
    """Unpickling this object would create a directory: a harmless stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    """A pickle (raw or inside a torch archive) whose __reduce__ runs code is refused and the code never runs."""
    # Prove the payload works: plain unpickling does run it.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Evil(probe)))
    assert probe.is_dir()

    marker = tmp_path / "pwned"
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"format": checkpoint.FORMAT, "x": _Evil(marker)}, protocol=2))
    archive = tmp_path / "archive.pt"
    torch.save({"format": checkpoint.FORMAT, "config": _Evil(marker)}, archive)
    for path in (raw, archive):
        with pytest.raises(CheckpointError):
            checkpoint.load(path)
        assert not marker.exists(), f"loading {path.name} executed code"


# -- restoring into a trainer ------------------------------------------------------------------------


def test_restore_refuses_another_vocabulary_or_model(two_epoch_trainer: Trainer) -> None:
    """restore_trainer needs the same model kind, size and vocabulary."""
    ckpt = checkpoint.from_trainer(two_epoch_trainer)
    other_corpus = Corpus.from_text("月光照在老树上，山上的花开了。" * 30, max_chars=None)
    with pytest.raises(CheckpointError, match="vocabulary"):
        checkpoint.restore_trainer(ckpt, Trainer(other_corpus, _config()))
    with pytest.raises(CheckpointError, match="lstm"):
        checkpoint.restore_trainer(ckpt, Trainer(two_epoch_trainer.corpus, _config(model="lstm")))
    with pytest.raises(CheckpointError, match="hidden"):
        checkpoint.restore_trainer(ckpt, Trainer(two_epoch_trainer.corpus, _config(hidden=24)))


@pytest.mark.parametrize("optimizer, lr", [("sgd", 1.0), ("adam", 1e-2)])
def test_resuming_continues_the_epoch_count_and_the_same_trajectory(
    tiny_corpus: Corpus, tmp_path: Path, optimizer: str, lr: float
) -> None:
    """2 epochs + save + load + 2 more epochs numbers them 3 and 4 and equals an uninterrupted 4-epoch run."""
    cfg = _config(model="scratch-rnn", optimizer=optimizer, lr=lr, clip=1.0, epochs=4, sampling="random")
    straight = Trainer(tiny_corpus, dataclasses.replace(cfg))
    expected = [e.perplexity for e in straight.train() if isinstance(e, EpochEvent)]

    first = Trainer(tiny_corpus, dataclasses.replace(cfg, epochs=2))
    list(first.train())
    path = checkpoint.save(checkpoint.from_trainer(first), tmp_path / "half.pt")

    resumed = checkpoint.resume(checkpoint.load(path), tiny_corpus, dataclasses.replace(cfg, epochs=2), more_epochs=2)
    assert resumed.epoch == 2 and resumed.config.epochs == 4
    later = [e for e in resumed.train() if isinstance(e, EpochEvent)]
    assert [e.epoch for e in later] == [3, 4]
    assert [e.epoch for e in resumed.history] == [1, 2, 3, 4]
    assert [e.perplexity for e in resumed.history] == pytest.approx(expected, rel=1e-5)
    assert _equal_state(resumed.model.state_dict(), straight.model.state_dict())


def _interrupted(corpus: Corpus, cfg: TrainConfig) -> tuple[Trainer, Trainer]:
    """An uninterrupted `cfg` run, and the same run cut in half: saved as bytes, read back, resumed.

    Resumed twice, as a Continue on the web is: the web process resumes the stored checkpoint, publishes
    the resumed trainer's own checkpoint as the job's start, and the worker resumes that one and trains.
    """
    straight = Trainer(corpus, dataclasses.replace(cfg))
    list(straight.train())
    first = Trainer(corpus, dataclasses.replace(cfg, epochs=cfg.epochs // 2))
    list(first.train())
    data = checkpoint.to_bytes(checkpoint.from_trainer(first))
    web = checkpoint.resume(checkpoint.from_own_bytes(data), corpus, dataclasses.replace(cfg))
    start = checkpoint.to_bytes(checkpoint.from_trainer(web))
    resumed = checkpoint.resume(checkpoint.from_own_bytes(start), corpus, dataclasses.replace(cfg))
    list(resumed.train())
    return straight, resumed


@pytest.mark.parametrize("sampling", ["random", "adjacent"])
@pytest.mark.parametrize("steps_per_epoch", [0, 5, 13])
def test_resuming_short_epochs_is_exact(tiny_corpus: Corpus, sampling: str, steps_per_epoch: int) -> None:
    """Epochs of k minibatches (a slice of a 21-minibatch pass) resume mid-pass as if never interrupted.

    k = 5 stops inside the first pass; k = 13 inside the second (the first was crossed before the save).
    Same per-epoch perplexities and same weights, bit for bit, as the run that never stopped.
    """
    cfg = _config(sampling=sampling, steps_per_epoch=steps_per_epoch, epochs=4)
    straight, resumed = _interrupted(tiny_corpus, cfg)
    assert [e.perplexity for e in resumed.history] == [e.perplexity for e in straight.history]
    assert _equal_state(resumed.model.state_dict(), straight.model.state_dict())


@pytest.mark.parametrize("model, num_layers, tensors", [("lstm", 2, 4), ("scratch-lstm", 1, 2), ("scratch-rnn", 1, 1)])
def test_resuming_short_epochs_carries_every_layers_state(
    tiny_corpus: Corpus, model: str, num_layers: int, tensors: int
) -> None:
    """Adjacent sampling's carried state is every layer's H (and LSTM's C): all of it is restored exactly."""
    cfg = _config(model=model, num_layers=num_layers, sampling="adjacent", steps_per_epoch=5, epochs=4)
    straight, resumed = _interrupted(tiny_corpus, cfg)
    assert len(resumed.stream_point.carried) == tensors
    assert [e.perplexity for e in resumed.history] == [e.perplexity for e in straight.history]
    assert _equal_state(resumed.model.state_dict(), straight.model.state_dict())


def _without_stream(data: bytes, drop_key: bool) -> bytes:
    """The same file as an older version wrote it (no `stream` key), or with a null one."""
    payload = torch.load(io.BytesIO(data), weights_only=True)
    if drop_key:
        del payload["stream"]
    else:
        payload["stream"] = None
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("drop_key", [True, False])
@pytest.mark.parametrize("sampling", ["random", "adjacent"])
def test_a_checkpoint_without_a_stream_point_resumes_as_before(
    tiny_corpus: Corpus, sampling: str, drop_key: bool
) -> None:
    """An older file has only the sampler's RNG: it loads, and resumes with a new pass drawn from that RNG."""
    cfg = _config(sampling=sampling, steps_per_epoch=5, epochs=4)
    first = Trainer(tiny_corpus, dataclasses.replace(cfg, epochs=2))
    list(first.train())
    saved = checkpoint.from_trainer(first)
    assert saved.stream is not None and saved.stream.taken == 10
    ckpt = checkpoint.from_bytes(_without_stream(checkpoint.to_bytes(saved), drop_key))
    assert ckpt.stream is None and ckpt.rng_state == saved.rng_state
    resumed = checkpoint.resume(ckpt, tiny_corpus, cfg)
    assert resumed.rng.getstate() == first.rng.getstate() and resumed.stream_point is None
    list(resumed.train())
    assert resumed.history[:2] == first.history
    assert [e.steps for e in resumed.history[2:]] == [5, 5]
    assert resumed.stream_point.taken == 10  # the new pass it began, 2 epochs in


def test_a_malformed_stream_point_is_dropped_on_load(tiny_corpus: Corpus) -> None:
    """A bad position or carried state (an edited file) is left out, like a bad RNG: the file still loads."""
    cfg = _config(sampling="adjacent", steps_per_epoch=5, epochs=1)
    trainer = Trainer(tiny_corpus, cfg)
    list(trainer.train())
    good = checkpoint.to_bytes(checkpoint.from_trainer(trainer))
    loaded = checkpoint.from_bytes(good).stream
    assert _equal_nested(dataclasses.astuple(loaded), dataclasses.astuple(trainer.stream_point))
    carried = list(trainer.stream_point.carried)
    bad = [
        {"taken": 0},
        {"taken": True},
        {"taken": "5"},
        {"pass_rng": [3, [1, 2], None]},
        {"carried": [torch.zeros(cfg.batch_size + 1, cfg.hidden)]},
        {"carried": [torch.full_like(carried[0], math.nan)]},
        {"carried": carried * 7},
        {"extra": 1},
    ]
    for change in bad:
        payload = torch.load(io.BytesIO(good), weights_only=True)
        payload["stream"].update(change)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        assert checkpoint.from_bytes(buffer.getvalue()).stream is None, change


def test_resuming_with_validation_on_the_stored_text_keeps_the_split_and_the_curve(tiny_corpus: Corpus) -> None:
    """A run store keeps `document_text()`; the corpus rebuilt from it cuts validation where the run did."""
    cfg = _config(epochs=4, val_fraction=0.2)
    straight = Trainer(tiny_corpus, dataclasses.replace(cfg))
    list(straight.train())
    first = Trainer(tiny_corpus, dataclasses.replace(cfg, epochs=2))
    list(first.train())
    stored = Corpus.from_text(tiny_corpus.document_text(), tiny_corpus.name, max_chars=None)
    ckpt = checkpoint.from_bytes(checkpoint.to_bytes(checkpoint.from_trainer(first)))
    resumed = checkpoint.resume(ckpt, stored, dataclasses.replace(cfg, epochs=2), more_epochs=2)
    assert (resumed.train_ids, resumed.val_ids) == (straight.train_ids, straight.val_ids)
    list(resumed.train())
    assert [(e.perplexity, e.val_perplexity) for e in resumed.history] == [
        (e.perplexity, e.val_perplexity) for e in straight.history
    ]


def test_read_bytes_and_read_file_return_the_error_instead_of_raising(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model picker's readers: a checkpoint, or the (detached, bilingual) reason; never an exception."""
    ckpt, error = checkpoint.read_bytes(saved.read_bytes(), "m.pt")
    assert error is None and ckpt is not None and ckpt.vocab == checkpoint.load(saved).vocab
    ckpt, error = checkpoint.read_file(saved)
    assert error is None and ckpt is not None
    ckpt, error = checkpoint.read_bytes(b"", "empty.pt")
    assert ckpt is None and "empty.pt" in str(error) and "空" in localized(error, "zh") and error.__traceback__ is None
    ckpt, error = checkpoint.read_file(tmp_path / "missing.pt")
    assert ckpt is None and error is not None and localized(error, "zh") != str(error)
    assert "missing.pt" in str(error) and str(tmp_path) not in str(error) + localized(
        error, "zh"
    )  # the file, never its folder

    def odd(*args: object, **kwargs: object) -> None:
        raise KeyError("a torch version's surprise")

    monkeypatch.setattr(checkpoint, "from_bytes", odd)
    ckpt, error = checkpoint.read_bytes(b"x", "odd.pt")
    assert (
        ckpt is None
        and str(error) == "odd.pt cannot be read (KeyError)."
        and localized(error, "zh") == "无法读取 odd.pt（KeyError）。"
    )
    monkeypatch.setattr(checkpoint, "load", odd)
    assert str(checkpoint.read_file(saved)[1]) == f"{saved.name} cannot be read (KeyError)."


# -- settings added later: ReLU RNNs and training without detaching -----------------------------------------


def test_a_relu_rnn_round_trips_as_relu_and_is_not_continued_as_tanh(tiny_corpus: Corpus) -> None:
    """The nonlinearity is stored: the rebuilt model is a ReLU RNN (same outputs), and a tanh run refuses it."""
    trainer = Trainer(tiny_corpus, _config(model="rnn", nonlinearity="relu", sampling="adjacent", detach=False))
    list(trainer.train())
    ckpt = checkpoint.from_bytes(checkpoint.to_bytes(checkpoint.from_trainer(trainer)))
    assert (ckpt.config.nonlinearity, ckpt.config.detach) == ("relu", False)
    model = ckpt.build_model()
    assert model.rnn.nonlinearity == "relu"
    prefix = tiny_corpus.text[:2]
    assert generate(model, ckpt.vocab, prefix, 20).text == generate(trainer.model, tiny_corpus, prefix, 20).text
    with pytest.raises(CheckpointError, match="relu") as info:
        checkpoint.restore_trainer(ckpt, Trainer(tiny_corpus, _config(model="rnn")))
    assert "relu" in localized(info.value, "zh") and "激活函数" in localized(info.value, "zh")
    checkpoint.restore_trainer(ckpt, Trainer(tiny_corpus, _config(model="rnn", nonlinearity="relu")))


def test_a_checkpoint_from_before_these_settings_loads_as_tanh_and_detached(
    two_epoch_trainer: Trainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older file has no `nonlinearity` or `detach` key: it is what every run was then, tanh and detached."""
    new_keys = ("nonlinearity", "detach")
    full = TrainConfig.to_dict
    monkeypatch.setattr(TrainConfig, "to_dict", lambda self: {k: v for k, v in full(self).items() if k not in new_keys})
    data = checkpoint.to_bytes(checkpoint.from_trainer(two_epoch_trainer))
    monkeypatch.undo()
    payload = torch.load(io.BytesIO(data), weights_only=True)
    assert not set(new_keys) & set(payload["config"])
    ckpt = checkpoint.from_bytes(data)
    assert (ckpt.config.nonlinearity, ckpt.config.detach) == ("tanh", True)
    assert ckpt.build_model().nonlinearity == "tanh"


def test_history_with_and_without_peak_memory_loads(two_epoch_trainer: Trainer) -> None:
    """Epoch records carry the epoch's peak memory when measured (None otherwise, and in older files)."""
    ckpt = checkpoint.from_trainer(two_epoch_trainer)
    assert all(e.peak_rss is None or e.peak_rss > 0 for e in ckpt.history)
    unmeasured = [dataclasses.replace(e, peak_rss=None) for e in ckpt.history]
    again = checkpoint.from_bytes(checkpoint.to_bytes(dataclasses.replace(ckpt, history=unmeasured)))
    assert [e.peak_rss for e in again.history] == [None] * len(unmeasured)
    measured = checkpoint.from_bytes(checkpoint.to_bytes(ckpt))
    assert [e.peak_rss for e in measured.history] == [e.peak_rss for e in ckpt.history]
