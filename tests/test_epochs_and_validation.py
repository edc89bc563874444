"""Fixed-size epochs, validation by whole documents, best-by-validation weights, early stopping, baselines."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from lm_core import checkpoint
from lm_core.baselines import ngram_baselines
from lm_core.corpus import Corpus
from lm_core.errors import CorpusError, localized
from lm_core.sampling import minibatches_per_epoch
from lm_core.training import EndEvent, EpochEvent, TrainConfig, Trainer

CFG = TrainConfig(model="gru", hidden=16, num_steps=8, batch_size=4, lr=0.01, optimizer="adam", clip=1.0, epochs=2)


def _weights(trainer: Trainer) -> torch.Tensor:
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
    assert torch.allclose(_weights(split), _weights(joined), atol=1e-6)


@pytest.mark.parametrize("sampling", ["random", "adjacent"])
def test_epochs_of_a_full_pass_equal_the_books_epochs(tiny_corpus: Corpus, sampling: str) -> None:
    """steps_per_epoch = one pass behaves like the book's epochs (new pass: reshuffle or fresh state)."""
    per_pass = minibatches_per_epoch(len(tiny_corpus), 4, 8, sampling)
    ours = _run(tiny_corpus, sampling=sampling, steps_per_epoch=per_pass, epochs=2)
    book = _run(tiny_corpus, sampling=sampling, steps_per_epoch=0, epochs=2)
    assert torch.allclose(_weights(ours), _weights(book), atol=1e-6)
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
