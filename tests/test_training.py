"""The trainer: its event stream, clipping, the book's state handling, divergence, control and settings."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from lm_core import checkpoint
from lm_core.baselines import ngram_baselines
from lm_core.bench.reference import train_reference
from lm_core.corpus import Corpus
from lm_core.errors import ConfigError, CorpusError, localized
from lm_core.sampling import adjacent_batches, describe_minibatches, minibatches_per_epoch
from lm_core.training import (
    MAX_LOSS,
    Control,
    EndEvent,
    EpochEvent,
    StepEvent,
    TrainConfig,
    Trainer,
    book_config,
    build_config_model,
    clip_gradients,
    evaluate_perplexity,
)

TIMEOUT = 60.0  # generous upper bound for anything a thread must do; never a pass condition by itself


def small_config(**overrides: Any) -> TrainConfig:
    """A fast setting on the tiny corpus: 16 hidden units, B=8, T=8."""
    cfg = TrainConfig(model="scratch-rnn", hidden=16, num_steps=8, batch_size=8, lr=1.0, clip=1.0, epochs=2)
    return replace(cfg, **overrides)


def _params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- the event stream -------------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", ["random", "adjacent"])
def test_train_yields_steps_then_an_epoch_event_per_epoch_then_end(tiny_corpus: Corpus, sampling: str) -> None:
    """Per epoch: StepEvents 1..n then one EpochEvent whose statistics summarise those steps; then 'finished'."""
    cfg = small_config(sampling=sampling, epochs=2, clip=0.5)
    trainer = Trainer(tiny_corpus, cfg)
    events = list(trainer.train())
    n = minibatches_per_epoch(len(tiny_corpus), cfg.batch_size, cfg.num_steps, sampling)
    assert n > 2
    assert len(events) == 2 * (n + 1) + 1
    for e in range(2):
        chunk = events[e * (n + 1) : (e + 1) * (n + 1)]
        steps, epoch_event = chunk[:-1], chunk[-1]
        assert all(isinstance(s, StepEvent) for s in steps)
        assert [s.step for s in steps] == list(range(1, n + 1))
        assert all(s.epoch == e + 1 for s in steps)
        assert all(math.isfinite(s.loss) and s.grad_norm > 0 for s in steps)
        assert isinstance(epoch_event, EpochEvent)
        assert epoch_event.epoch == e + 1 and epoch_event.steps == n
        # every minibatch has B*T predictions, so the epoch's perplexity is exp(mean step loss)
        mean_loss = sum(s.loss for s in steps) / n
        assert epoch_event.perplexity == pytest.approx(math.exp(mean_loss), rel=1e-9)
        norms = [s.grad_norm for s in steps]
        assert epoch_event.grad_norm_mean == pytest.approx(sum(norms) / n)
        assert epoch_event.grad_norm_max == max(norms)
        assert epoch_event.clipped_fraction == pytest.approx(sum(s.clipped for s in steps) / n)
        assert all(s.clipped == (s.grad_norm > 0.5) for s in steps)
        assert epoch_event.seconds > 0
        assert epoch_event.tokens_per_s == pytest.approx(n * cfg.batch_size * cfg.num_steps / epoch_event.seconds)
        assert epoch_event.val_perplexity is None
        assert set(epoch_event.to_dict()) >= {"epoch", "perplexity", "seconds", "grad_norm_mean", "clipped_fraction"}
    end = events[-1]
    assert isinstance(end, EndEvent) and end.status == "finished" and end.epoch == 2
    assert trainer.status == "finished" and trainer.epoch == 2
    assert trainer.history == [e for e in events if isinstance(e, EpochEvent)]


def test_same_seed_gives_the_same_run(tiny_corpus: Corpus) -> None:
    """Two trainers with the same config produce identical perplexities; another seed does not."""

    def run(seed: int) -> list[float]:
        trainer = Trainer(tiny_corpus, small_config(seed=seed, epochs=1))
        return [e.perplexity for e in trainer.train() if isinstance(e, EpochEvent)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_perplexity_decreases_over_a_few_epochs(tiny_corpus: Corpus) -> None:
    """Training learns: perplexity falls every epoch and ends far below the vocabulary size."""
    cfg = small_config(model="gru", optimizer="adam", lr=1e-2, clip=1.0, hidden=32, epochs=4)
    trainer = Trainer(tiny_corpus, cfg)
    ppl = [e.perplexity for e in trainer.train() if isinstance(e, EpochEvent)]
    assert len(ppl) == 4
    assert all(b < a for a, b in itertools.pairwise(ppl)), ppl
    assert ppl[-1] < ppl[0] / 2
    assert ppl[0] < tiny_corpus.vocab_size * 1.5


# -- clipping --------------------------------------------------------------------------------------


def test_book_clipping_clips_every_step_and_each_update_has_norm_one(tiny_corpus: Corpus) -> None:
    """θ=0.01 with SGD lr 100: every step is clipped, norms exceed θ, and each update moves the weights by ‖Δ‖ = 1."""
    trainer = Trainer(tiny_corpus, small_config(lr=100.0, clip=0.01, epochs=1))
    before = _params(trainer.model)
    epoch_event = None
    for event in trainer.run_epoch():
        if isinstance(event, StepEvent):
            after = _params(trainer.model)
            assert event.clipped and event.grad_norm > 0.01
            assert torch.linalg.vector_norm(after - before).item() == pytest.approx(100 * 0.01, rel=1e-3)
            before = after
        else:
            epoch_event = event
    assert isinstance(epoch_event, EpochEvent)
    assert epoch_event.clipped_fraction == 1.0
    assert epoch_event.grad_norm_mean > 0.01


def test_without_clipping_updates_are_lr_times_the_reported_gradient_norm(tiny_corpus: Corpus) -> None:
    """clip=None never clips; the SGD update's norm is lr × the reported (global L2) gradient norm."""
    lr = 0.5
    trainer = Trainer(tiny_corpus, small_config(lr=lr, clip=None, epochs=1))
    before = _params(trainer.model)
    epoch_event = None
    for event in trainer.run_epoch():
        if isinstance(event, StepEvent):
            after = _params(trainer.model)
            assert not event.clipped
            assert torch.linalg.vector_norm(after - before).item() == pytest.approx(lr * event.grad_norm, rel=1e-3)
            before = after
        else:
            epoch_event = event
    assert isinstance(epoch_event, EpochEvent)
    assert epoch_event.clipped_fraction == 0.0


# -- the book's hidden-state handling -----------------------------------------------------------------


def _record_forward(model: torch.nn.Module) -> list[dict[str, Any]]:
    """Wrap `model.forward` to record each call's inputs, incoming state and outgoing state."""
    calls: list[dict[str, Any]] = []
    original = model.forward

    def wrapped(X: torch.Tensor, state: tuple[torch.Tensor, ...]):
        logits, new_state = original(X, state)
        calls.append(
            {
                "X": X.detach().clone(),
                "state_in": [s.detach().clone() for s in state],
                "in_has_graph": any(s.requires_grad or s.grad_fn is not None for s in state),
                "state_out": [s.detach().clone() for s in new_state],
            }
        )
        return logits, new_state

    model.forward = wrapped  # instance attribute: nn.Module.__call__ uses it
    return calls


@pytest.mark.parametrize("model", ["scratch-rnn", "lstm"])
def test_adjacent_carries_the_state_detached_and_resets_each_epoch(tiny_corpus: Corpus, model: str) -> None:
    """Adjacent: minibatch i+1 starts from minibatch i's final state (detached); each epoch starts from zeros."""
    trainer = Trainer(tiny_corpus, small_config(model=model, sampling="adjacent", optimizer="adam", lr=1e-2))
    calls = _record_forward(trainer.model)
    list(trainer.train())
    n = minibatches_per_epoch(len(tiny_corpus), 8, 8, "adjacent")
    assert len(calls) == 2 * n
    for i, call in enumerate(calls):
        assert not call["in_has_graph"], "the carried state must be detached from the previous graph"
        if i % n == 0:
            assert all(not s.any() for s in call["state_in"]), "each epoch starts from a zero state"
        else:
            previous = calls[i - 1]["state_out"]
            assert all(torch.equal(a, b) for a, b in zip(call["state_in"], previous, strict=True))
            assert any(s.any() for s in call["state_in"])


@pytest.mark.parametrize("model", ["scratch-rnn", "lstm"])
def test_random_starts_every_minibatch_from_zeros(tiny_corpus: Corpus, model: str) -> None:
    """Random sampling: every minibatch begins with a zero state (neighbouring rows are unrelated)."""
    trainer = Trainer(tiny_corpus, small_config(model=model, sampling="random", optimizer="adam", lr=1e-2))
    calls = _record_forward(trainer.model)
    list(trainer.train())
    assert len(calls) == 2 * minibatches_per_epoch(len(tiny_corpus), 8, 8, "random")
    for call in calls:
        assert all(not s.any() for s in call["state_in"])
        assert any(s.any() for s in call["state_out"])


@pytest.mark.parametrize("sampling", ["random", "adjacent"])
def test_first_epoch_reads_the_minibatches_describe_minibatches_draws(tiny_corpus: Corpus, sampling: str) -> None:
    """The page's minibatch drawing (same seed) shows exactly what the trainer reads in its first epoch."""
    cfg = small_config(sampling=sampling, seed=11, epochs=1)
    trainer = Trainer(tiny_corpus, cfg)
    calls = _record_forward(trainer.model)
    list(trainer.train())
    spans = describe_minibatches(len(trainer.train_ids), cfg.batch_size, cfg.num_steps, sampling, k=3, seed=cfg.seed)
    assert len(spans) == 3 * cfg.batch_size
    for span in spans:
        X = calls[span.minibatch]["X"]
        assert X[span.row].tolist() == trainer.train_ids[span.start : span.start + span.length]


# -- divergence -------------------------------------------------------------------------------------


def test_huge_learning_rate_without_clipping_ends_as_diverged(tiny_corpus: Corpus) -> None:
    """lr 1e4 without clipping ends with EndEvent('diverged') naming epoch and step; the weights stay finite.

    The loss of such a run grows huge but can stay finite, so this also protects against
    exp(loss) overflowing when the epoch's perplexity is computed.
    """
    trainer = Trainer(tiny_corpus, small_config(hidden=32, lr=1e4, clip=None, epochs=5))
    last_good = [_weights(trainer.model)]
    events = []
    for event in trainer.train():
        events.append(event)
        if isinstance(event, EpochEvent):
            last_good.append(_weights(trainer.model))
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.status == "diverged"
    assert "epoch" in end.message and "step" in end.message
    assert end.loss is not None and (not math.isfinite(end.loss) or end.loss > MAX_LOSS)  # exp(loss) would overflow
    assert end.epoch == len(trainer.history) and end.step >= 1
    assert trainer.status == "diverged"
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert _same_weights(_weights(trainer.model), last_good[-1]), "not rolled back to the last completed epoch"


def test_non_finite_loss_ends_as_diverged_and_rolls_back_to_the_last_epoch(tiny_corpus: Corpus) -> None:
    """A NaN loss at epoch 2, step 3 ends the run as 'diverged' with the weights after epoch 1 restored."""
    trainer = Trainer(tiny_corpus, small_config(epochs=5))
    original = trainer.model.forward
    calls = {"n": 0}
    n = minibatches_per_epoch(len(tiny_corpus), 8, 8, "random")

    def poisoned(X: torch.Tensor, state: tuple[torch.Tensor, ...]):
        calls["n"] += 1
        logits, new_state = original(X, state)
        if calls["n"] == n + 3:  # epoch 2, step 3
            logits = logits * float("nan")
        return logits, new_state

    trainer.model.forward = poisoned
    after_epoch_1: dict[str, torch.Tensor] = {}
    events = []
    for event in trainer.train():
        events.append(event)
        if isinstance(event, EpochEvent) and event.epoch == 1:
            after_epoch_1 = _weights(trainer.model)
    end = events[-1]
    assert isinstance(end, EndEvent) and end.status == "diverged"
    assert "epoch 2" in end.message and "step 3" in end.message
    assert end.epoch == 1 and end.step == 3
    assert end.loss is not None and math.isnan(end.loss)
    assert trainer.status == "diverged" and len(trainer.history) == 1
    assert _same_weights(_weights(trainer.model), after_epoch_1)
    assert [type(e) for e in events[-3:]] == [StepEvent, StepEvent, EndEvent]


# -- control from another thread ---------------------------------------------------------------------


class _Blocks:
    """Counts how often the trainer blocked on a pause (Control.on_block), waitable with a timeout."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = TIMEOUT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)


class _Consumer:
    """Runs `trainer.train()` in a thread, collecting events; `stepped` fires on every StepEvent."""

    def __init__(self, trainer: Trainer, on_event: Callable[[Any], None] | None = None) -> None:
        self.trainer = trainer
        self.events: list[Any] = []
        self.stepped = threading.Event()
        self.on_event = on_event
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for event in self.trainer.train():
                if self.on_event:
                    self.on_event(event)
                self.events.append(event)
                if isinstance(event, StepEvent):
                    self.stepped.set()
        except BaseException as exc:  # noqa: BLE001 -- reported by the test
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def join(self) -> None:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "training thread did not finish"
        assert self.error is None, repr(self.error)


def test_pause_resume_and_stop_from_another_thread(tiny_corpus: Corpus) -> None:
    """pause() halts between minibatches, resume() continues, stop() ends 'stopped' with the last epoch's weights."""
    trainer = Trainer(tiny_corpus, small_config(hidden=8, epochs=100_000))
    blocks = _Blocks()
    trainer.control.on_block = blocks
    epoch_weights: list[dict[str, torch.Tensor]] = [_weights(trainer.model)]
    consumer = _Consumer(
        trainer, on_event=lambda e: epoch_weights.append(_weights(trainer.model)) if isinstance(e, EpochEvent) else None
    )
    consumer.start()
    try:
        assert consumer.stepped.wait(TIMEOUT)
        trainer.control.pause()
        assert blocks.wait_for(1), "the trainer never blocked after pause()"
        assert trainer.control.paused
        n_events = len(consumer.events)
        consumer.stepped.clear()
        assert not consumer.stepped.wait(0.5), "a minibatch ran while paused"
        assert len(consumer.events) == n_events

        trainer.control.resume()
        assert not trainer.control.paused
        assert consumer.stepped.wait(TIMEOUT), "no progress after resume()"
        assert len(consumer.events) > n_events
    finally:
        trainer.control.stop()
        consumer.join()
    end = consumer.events[-1]
    assert isinstance(end, EndEvent) and end.status == "stopped"
    assert trainer.status == "stopped" and trainer.control.stopped
    assert end.epoch == trainer.epoch == len(epoch_weights) - 1
    assert _same_weights(_weights(trainer.model), epoch_weights[-1])


def test_step_epoch_runs_exactly_one_epoch_then_pauses(tiny_corpus: Corpus) -> None:
    """step_epoch() from a pause runs one whole epoch and pauses before the next minibatch."""
    trainer = Trainer(tiny_corpus, small_config(hidden=8, epochs=10))
    blocks = _Blocks()
    trainer.control.on_block = blocks
    trainer.control.pause()
    consumer = _Consumer(trainer)
    consumer.start()
    n = minibatches_per_epoch(len(tiny_corpus), 8, 8, "random")
    try:
        assert blocks.wait_for(1)
        assert consumer.events == []
        for epoch in (1, 2):
            trainer.control.step_epoch()
            assert blocks.wait_for(epoch + 1), "the trainer did not pause after the epoch"
            assert trainer.control.paused
            assert trainer.epoch == epoch
            assert len(consumer.events) == epoch * (n + 1)
            assert isinstance(consumer.events[-1], EpochEvent) and consumer.events[-1].epoch == epoch
        consumer.stepped.clear()
        assert not consumer.stepped.wait(0.5), "training went on after the stepped epoch"
    finally:
        trainer.control.stop()
        consumer.join()
    end = consumer.events[-1]
    assert isinstance(end, EndEvent) and end.status == "stopped" and end.epoch == 2


def test_control_states() -> None:
    """Control flags: paused after pause(), cleared by resume(), stop() wins over pause and unblocks wait()."""
    control = Control()
    assert not control.paused and not control.stopped
    assert control.wait() is True
    control.pause()
    assert control.paused
    control.resume()
    assert not control.paused and control.wait() is True
    control.pause()
    control.stop()
    assert control.stopped and not control.paused
    assert control.wait() is False


# -- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, sampling, optimizer, lr, epochs",
    [
        ("scratch-rnn", "random", "sgd", 100.0, 250),
        ("scratch-gru", "random", "sgd", 100.0, 160),
        ("scratch-lstm", "random", "sgd", 100.0, 160),
        ("rnn", "adjacent", "adam", 1e-3, 250),
        ("gru", "adjacent", "adam", 1e-2, 160),
        ("lstm", "adjacent", "adam", 1e-2, 160),
    ],
)
def test_book_config_has_the_chapters_settings(
    model: str, sampling: str, optimizer: str, lr: float, epochs: int
) -> None:
    """book_config reproduces the book's table: optimiser, rate, epochs, default sampling, θ=0.01, h=256, T=35, B=32."""
    cfg = book_config(model)
    assert (cfg.model, cfg.sampling, cfg.optimizer, cfg.epochs) == (model, sampling, optimizer, epochs)
    assert cfg.lr == pytest.approx(lr)
    assert (cfg.hidden, cfg.num_steps, cfg.batch_size, cfg.clip, cfg.val_fraction) == (256, 35, 32, 0.01, 0.0)
    cfg.validate()
    assert book_config(model, "adjacent").sampling == "adjacent"
    assert book_config(model, "random", epochs=3, hidden=16).epochs == 3


@pytest.mark.parametrize(
    "field, value",
    [
        ("model", "transformer"),
        ("sampling", "sideways"),
        ("optimizer", "rmsprop"),
        ("hidden", 0),
        ("hidden", 4096),
        ("num_steps", 0),
        ("batch_size", 0),
        ("lr", 0.0),
        ("lr", -1.0),
        ("lr", float("nan")),
        ("lr", float("inf")),
        ("lr", 1e5),
        ("clip", 0.0),
        ("clip", -0.5),
        ("clip", float("nan")),
        ("epochs", 0),
        ("seed", -1),
        ("seed", 2**31),
        ("val_fraction", 0.5),
        ("val_fraction", -0.1),
    ],
)
def test_validate_rejects_bad_values(tiny_corpus: Corpus, field: str, value: Any) -> None:
    """Every out-of-range setting raises ConfigError, also when a Trainer is built with it."""
    cfg = replace(small_config(), **{field: value})
    with pytest.raises(ConfigError):
        cfg.validate()
    with pytest.raises(ConfigError):
        Trainer(tiny_corpus, cfg)


@pytest.mark.parametrize(
    "field, value", [("hidden", 16.5), ("num_steps", 8.5), ("batch_size", 8.5), ("epochs", 2.5), ("seed", 1.5)]
)
def test_validate_rejects_non_integer_counts(field: str, value: float) -> None:
    """Counts (hidden units, steps, batch, epochs, seed) must be whole numbers: anything else is a ConfigError."""
    with pytest.raises(ConfigError):
        replace(small_config(), **{field: value}).validate()


def test_config_dict_round_trip_ignores_unknown_keys() -> None:
    """to_dict/from_dict round-trip; keys from other versions are ignored."""
    cfg = small_config(model="gru", clip=None, seed=9)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict({**cfg.to_dict(), "future_option": 1}) == cfg


def test_trainer_refuses_a_corpus_too_short_for_one_minibatch() -> None:
    """A corpus shorter than one minibatch is a CorpusError when the Trainer is built."""
    corpus = Corpus.from_text("春风吹过小河边" * 3, max_chars=None)
    with pytest.raises(CorpusError, match="too short"):
        Trainer(corpus, small_config())


# -- validation perplexity ------------------------------------------------------------------------------


def test_validation_perplexity_is_reported_on_the_held_out_tail(tiny_corpus: Corpus) -> None:
    """val_fraction>0 holds out the tail from the first line start inside it; its perplexity every epoch."""
    cfg = small_config(val_fraction=0.2, epochs=2)
    trainer = Trainer(tiny_corpus, cfg)
    assert len(trainer.train_ids) + len(trainer.val_ids) == len(tiny_corpus)
    cut = len(trainer.train_ids)
    assert cut == min(s for s in tiny_corpus.doc_starts if s >= len(tiny_corpus) - int(len(tiny_corpus) * 0.2))
    epochs = [e for e in trainer.train() if isinstance(e, EpochEvent)]
    assert all(e.val_perplexity is not None and math.isfinite(e.val_perplexity) for e in epochs)
    assert all(e.val_perplexity > 1 for e in epochs)
    assert epochs[-1].val_perplexity == pytest.approx(
        evaluate_perplexity(trainer.model, trainer.val_ids, cfg.num_steps, cfg.batch_size)
    )
    assert epochs[-1].val_perplexity != pytest.approx(epochs[-1].perplexity)


def test_evaluate_perplexity_is_inf_instead_of_overflowing(tiny_corpus: Corpus) -> None:
    """A model so wrong that exp(mean loss) would overflow a float reports an infinite perplexity, not an error."""
    trainer = Trainer(tiny_corpus, small_config(epochs=1))
    model = trainer.model
    with torch.no_grad():
        model.b_q.zero_()
        model.b_q[0] = 1e4  # always predicts id 0 with a margin of 10,000
    ids = [i for i in tiny_corpus.indices if i != 0][:200]
    assert evaluate_perplexity(model, ids, 8, 4) == math.inf


def test_evaluate_perplexity_with_one_row_equals_one_long_forward(tiny_corpus: Corpus) -> None:
    """With batch 1, chunked evaluation with the state carried equals one forward pass over the same text."""
    trainer = Trainer(tiny_corpus, small_config(epochs=1))
    list(trainer.train())
    model, ids, steps = trainer.model, tiny_corpus.indices[:300], 8
    m = (len(ids) - 1) // steps * steps
    with torch.no_grad():
        X = torch.tensor([ids[:m]])
        logits, _ = model(X, model.begin_state(1))
        expected = math.exp(F.cross_entropy(logits, torch.tensor(ids[1 : m + 1])).item())
    assert evaluate_perplexity(model, ids, steps, 1) == pytest.approx(expected, rel=1e-4)
    assert evaluate_perplexity(model, ids[:5], steps, 4) is None


# -- the fast scratch RNN against the book's procedure ----------------------------------------------------


@pytest.mark.parametrize("sampling", ["random", "adjacent"])
def test_fast_scratch_rnn_matches_the_reference_procedure(book_corpus: Corpus, sampling: str) -> None:
    """Same seed, book settings: the fast scratch RNN's first 3 perplexities equal the book procedure's.

    Within 0.5 %: the two sum in different orders, and lr 100 amplifies float rounding (about 0.1 % seen);
    any real difference in the maths shows up as several percent by epoch 3.
    """
    reference = [
        ppl
        for _, ppl, _ in train_reference(book_corpus.indices, book_corpus.vocab_size, mode=sampling, epochs=3, seed=0)
    ]
    trainer = Trainer(book_corpus, book_config("scratch-rnn", sampling, epochs=3, seed=0))
    fast = [e.perplexity for e in trainer.train() if isinstance(e, EpochEvent)]
    assert len(reference) == len(fast) == 3
    for a, b in zip(reference, fast, strict=True):
        assert b == pytest.approx(a, rel=5e-3)
    assert fast[2] < fast[0] < book_corpus.vocab_size


def test_epoch_seconds_exclude_time_paused(tiny_corpus: Corpus) -> None:
    """Time blocked in a pause (Step, Pause/Resume) is not training time: seconds and chars/s ignore it.

    A fake clock makes it exact: each minibatch 'takes' 0.5 s, each pause 1000 s. Every epoch
    after the first starts paused (step_epoch), like a visitor pressing Step.
    """
    trainer = Trainer(tiny_corpus, small_config(hidden=8, epochs=3))
    now = [0.0]
    trainer.control.clock = lambda: now[0]

    def paused_for_a_long_time() -> None:
        now[0] += 1000.0
        trainer.control.step_epoch()  # the visitor presses Step again, much later

    trainer.control.on_block = paused_for_a_long_time
    trainer.control.step_epoch()
    epochs = []
    for event in trainer.train():
        if isinstance(event, StepEvent):
            now[0] += 0.5
        elif isinstance(event, EpochEvent):
            epochs.append(event)
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert trainer.control.blocked_seconds == 2000.0  # epochs 2 and 3 started paused
    for e in epochs:
        assert e.seconds == 0.5 * e.steps
        chars = e.steps * 8 * 8  # batch 8 x num_steps 8 characters per minibatch
        assert e.tokens_per_s == pytest.approx(chars / e.seconds)


# -- the chapter's exercise: do not detach the state under adjacent sampling ----------------------------------


def _step_weights_and_grads(trainer: Trainer) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Run one epoch; the weights each minibatch used and the gradient each one's update applied."""
    used = [_weights(trainer.model)]
    grads = []
    for event in trainer.run_epoch():
        if isinstance(event, StepEvent):
            grads.append({n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()})
            used.append(_weights(trainer.model))
    return used[:-1], grads


def _full_bptt_gradient(
    trainer: Trainer, used: list[dict[str, torch.Tensor]], i: int, keep_graph: bool
) -> dict[str, torch.Tensor]:
    """Loss of minibatch i differentiated by hand: one copy of the model per minibatch j ≤ i holding the weights
    minibatch j used, the cell's plain `step()` equations, the state carried from copy to copy (or detached
    between minibatches when `keep_graph` is False); the gradient is the sum over the copies' parameters.
    """
    cfg = trainer.config
    minibatches = list(adjacent_batches(trainer.train_ids, cfg.batch_size, cfg.num_steps))[: i + 1]
    copies = []
    state = trainer.model.begin_state(cfg.batch_size)
    for j, (X, Y) in enumerate(minibatches):
        copy = build_config_model(cfg, trainer.corpus.vocab_size)  # same architecture; weights replaced next
        copy.load_state_dict(used[j])
        copies.append(copy)
        if not keep_graph:
            state = tuple(s.detach() for s in state)
        outputs = []
        for t in range(cfg.num_steps):
            values, state = copy.step(X[:, t], state)
            outputs.append(copy.readout(values["H"]))
        if j == i:
            loss = F.cross_entropy(torch.cat(outputs), Y.t().reshape(-1))
    loss.backward()
    total: dict[str, torch.Tensor] = {}
    for copy in copies:
        for name, p in copy.named_parameters():
            if p.grad is not None:
                total[name] = total.get(name, torch.zeros_like(p)) + p.grad
    return total


@pytest.mark.parametrize("model", ["scratch-rnn", "scratch-lstm", "rnn"])
def test_without_detach_each_gradient_is_full_bptt_through_the_epoch_so_far(tiny_corpus: Corpus, model: str) -> None:
    """detach=False: minibatch i's update uses ∂ℓ_i/∂θ through every earlier minibatch of the epoch, each piece at the
    weights it used (SGD moves them in between). The detached gradient differs, so the comparison can fail."""
    extra = {"nonlinearity": "relu"} if model == "rnn" else {}
    cfg = small_config(
        model=model,
        sampling="adjacent",
        detach=False,
        hidden=6,
        batch_size=2,
        num_steps=4,
        lr=0.5,
        clip=None,
        steps_per_epoch=4,
        **extra,
    )
    trainer = Trainer(tiny_corpus, cfg)
    used, grads = _step_weights_and_grads(trainer)
    assert len(grads) == 4
    for i in range(4):
        expected = _full_bptt_gradient(trainer, used, i, keep_graph=True)
        assert expected.keys() == grads[i].keys()
        for name in expected:
            assert torch.allclose(grads[i][name], expected[name], atol=1e-6, rtol=1e-4), (i, name)
        if i > 0:
            truncated = _full_bptt_gradient(trainer, used, i, keep_graph=False)
            assert any(not torch.allclose(truncated[n], expected[n], atol=1e-6, rtol=1e-4) for n in expected)


def test_the_detached_path_is_the_books_loop_bit_for_bit(tiny_corpus: Corpus) -> None:
    """detach=True (the default) trains exactly the book's loop written out here: same weights to the last bit."""
    cfg = small_config(sampling="adjacent", optimizer="adam", lr=1e-2, epochs=2)
    trainer = Trainer(tiny_corpus, cfg)
    twin = Trainer(tiny_corpus, cfg).model
    optimizer = torch.optim.Adam(twin.parameters(), lr=cfg.lr)
    for _ in range(cfg.epochs):
        state = twin.begin_state(cfg.batch_size)
        for X, Y in adjacent_batches(trainer.train_ids, cfg.batch_size, cfg.num_steps):
            state = tuple(s.detach() for s in state)
            logits, state = twin(X, state)
            loss = F.cross_entropy(logits, Y.t().reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(list(twin.parameters()), cfg.clip)
            optimizer.step()
    list(trainer.train())
    assert _same_weights(_weights(trainer.model), _weights(twin))


def test_without_detach_the_graph_lives_one_epoch_and_training_goes_on(tiny_corpus: Corpus) -> None:
    """Over several epochs (and a pass split across epochs) no backward fails, and the carried state that starts an
    epoch holds no graph: memory is bounded by one epoch's minibatches, not the whole run."""
    n = minibatches_per_epoch(len(tiny_corpus), 8, 8, "adjacent")
    for steps_per_epoch in (0, max(1, n // 2)):
        cfg = small_config(
            model="lstm",
            hidden=8,
            sampling="adjacent",
            detach=False,
            optimizer="adam",
            lr=1e-2,
            epochs=2,
            steps_per_epoch=steps_per_epoch,
        )
        trainer = Trainer(tiny_corpus, cfg)
        events = list(trainer.train())
        assert isinstance(events[-1], EndEvent) and events[-1].status == "finished"
        assert trainer._carried is not None and all(s.grad_fn is None for s in trainer._carried)


def test_detach_false_needs_adjacent_sampling() -> None:
    with pytest.raises(ConfigError, match="adjacent sampling"):
        small_config(sampling="random", detach=False).validate()
    with pytest.raises(ConfigError, match="true or false"):
        small_config(sampling="adjacent", detach=0).validate()


def test_each_epoch_reports_its_own_peak_memory(tiny_corpus: Corpus) -> None:
    """EpochEvent.peak_rss is the process's peak during that epoch: 200 MB held briefly in epoch 1 shows there and
    not in epoch 2 (the mark is reset at each epoch's start)."""
    from lm_core import rss

    if rss.peak_rss() is None or not rss.reset_peak_rss():
        pytest.skip("this system cannot measure a per-epoch peak")
    trainer = Trainer(tiny_corpus, small_config(hidden=8, epochs=2))
    peaks = []
    for event in trainer.train():
        if isinstance(event, StepEvent) and event.epoch == 1 and event.step == 1:
            ballast = torch.ones(50 * 2**20)  # 200 MB, written, so resident
            del ballast
        elif isinstance(event, EpochEvent):
            peaks.append(event.peak_rss)
    assert all(isinstance(p, int) and p > 0 for p in peaks)
    assert peaks[0] - peaks[1] > 150 * 2**20, peaks


# -- epochs of N minibatches, validation and early stopping --------------------------------------------------------
# Fixed-size epochs, validation by whole documents, best-by-validation weights, early stopping, baselines.


CFG = TrainConfig(model="gru", hidden=16, num_steps=8, batch_size=4, lr=0.01, optimizer="adam", clip=1.0, epochs=2)


def _flat_weights(trainer: Trainer) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()])


def _run(corpus: Corpus, **overrides) -> Trainer:
    trainer = Trainer(corpus, replace(CFG, **overrides))
    events = list(trainer.train())
    assert isinstance(events[-1], EndEvent) and events[-1].status == "finished"
    return trainer


@pytest.mark.parametrize("sampling", ["random", "adjacent"])
def test_short_epochs_continue_the_pass_and_its_state(tiny_corpus: Corpus, sampling: str) -> None:
    """Two epochs of k steps train exactly like one epoch of 2k: same batches, same carried state."""
    k = 5
    assert minibatches_per_epoch(len(tiny_corpus), 4, 8, sampling) > 2 * k
    split = _run(tiny_corpus, sampling=sampling, steps_per_epoch=k, epochs=2)
    joined = _run(tiny_corpus, sampling=sampling, steps_per_epoch=2 * k, epochs=1)
    assert [e.steps for e in split.history] == [k, k]
    assert torch.allclose(_flat_weights(split), _flat_weights(joined), atol=1e-6)


@pytest.mark.parametrize("sampling", ["random", "adjacent"])
def test_epochs_of_a_full_pass_equal_the_books_epochs(tiny_corpus: Corpus, sampling: str) -> None:
    """steps_per_epoch = one pass behaves like the book's epochs (new pass: reshuffle or fresh state)."""
    per_pass = minibatches_per_epoch(len(tiny_corpus), 4, 8, sampling)
    ours = _run(tiny_corpus, sampling=sampling, steps_per_epoch=per_pass, epochs=2)
    book = _run(tiny_corpus, sampling=sampling, steps_per_epoch=0, epochs=2)
    assert torch.allclose(_flat_weights(ours), _flat_weights(book), atol=1e-6)
    # and an epoch that crosses a pass boundary still has its steps
    crossing = _run(tiny_corpus, sampling=sampling, steps_per_epoch=per_pass + 3, epochs=2)
    assert [e.steps for e in crossing.history] == [per_pass + 3] * 2


def test_validation_is_whole_documents_and_baselines_are_of_that_split(tiny_corpus: Corpus) -> None:
    trainer = Trainer(tiny_corpus, replace(CFG, val_fraction=0.2))
    cut = len(trainer.train_ids)
    assert cut in tiny_corpus.doc_starts
    assert tiny_corpus.text[cut - 1] == " "  # the newline before the ci, made a space by the book's step
    expected = ngram_baselines(trainer.train_ids, trainer.val_ids, tiny_corpus.vocab_size)
    assert trainer.baselines == expected
    assert Trainer(tiny_corpus, CFG).baselines is None


def test_best_weights_and_epoch_are_kept(tiny_corpus: Corpus) -> None:
    trainer = _run(tiny_corpus, val_fraction=0.2, epochs=4, lr=0.05)
    vals = [e.val_perplexity for e in trainer.history]
    best = min(range(len(vals)), key=vals.__getitem__) + 1
    assert trainer.best_epoch == best
    assert trainer.history[-1].best_epoch == best
    assert f"epoch {best}" in trainer.message
    ckpt = checkpoint.from_trainer(trainer, best=True)
    assert ckpt.best_epoch == best
    model = ckpt.build_model().eval()
    from lm_core.training import evaluate_perplexity

    assert evaluate_perplexity(model, trainer.val_ids, 8, 4) == pytest.approx(min(vals), rel=1e-5)


def test_patience_stops_early_and_says_so(tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation that improves until epoch 2 and then worsens stops at epoch 2 + patience, best epoch 2."""
    from lm_core import training

    scores = iter([9.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0])
    monkeypatch.setattr(training, "evaluate_perplexity", lambda *args: next(scores))
    trainer = Trainer(tiny_corpus, replace(CFG, val_fraction=0.2, epochs=8, patience=3))
    events = list(trainer.train())
    end = events[-1]
    assert isinstance(end, EndEvent) and end.status == "finished"
    assert trainer.epoch == 5 and end.best_epoch == 2
    assert "Stopped early" in end.message and "epoch 2" in end.message
    assert [e.best_epoch for e in events if isinstance(e, EpochEvent)] == [1, 2, 2, 2, 2]
    without = Trainer(tiny_corpus, replace(CFG, val_fraction=0.2, epochs=3, patience=0))
    scores = iter([5.0, 6.0, 7.0])
    assert sum(isinstance(e, EpochEvent) for e in without.train()) == 3  # patience 0: no early stop


def test_validation_smaller_than_a_minibatch_is_a_clear_error(tiny_corpus: Corpus) -> None:
    with pytest.raises(CorpusError, match="fewer than one minibatch") as info:
        Trainer(tiny_corpus, replace(CFG, val_fraction=0.05, batch_size=32, num_steps=8))
    assert "验证集" in localized(info.value, "zh")
    one_line = Corpus.from_text("春风吹过小河边" * 100, max_chars=None)
    with pytest.raises(CorpusError, match="fewer than one minibatch"):
        Trainer(one_line, replace(CFG, val_fraction=0.01))
