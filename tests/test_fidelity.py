"""Fidelity to the book: its settings on its corpus reach the perplexity it printed at epoch 50."""

from __future__ import annotations

import pytest

from lm_core.corpus import Corpus
from lm_core.training import EndEvent, EpochEvent, Trainer, book_config

# The book's printed perplexity at epoch 50 (scratch RNN, SGD lr 100, θ = 0.01, h = 256, T = 35, B = 32).
BOOK_PPL_AT_50 = {"random": 70.04, "adjacent": 59.51}


@pytest.mark.slow
@pytest.mark.parametrize("sampling", ["random", "adjacent"])
def test_scratch_rnn_reaches_the_books_perplexity_at_epoch_50(book_corpus: Corpus, sampling: str) -> None:
    """50 epochs with book_config('scratch-rnn', mode), seed 0, land within ±25% of the book's printed value."""
    cfg = book_config("scratch-rnn", sampling, seed=0)
    assert (cfg.hidden, cfg.num_steps, cfg.batch_size, cfg.lr, cfg.clip, cfg.optimizer) == (
        256,
        35,
        32,
        100.0,
        0.01,
        "sgd",
    )
    cfg.epochs = 50
    trainer = Trainer(book_corpus, cfg)
    events = list(trainer.train())
    history = [e for e in events if isinstance(e, EpochEvent)]
    assert isinstance(events[-1], EndEvent) and events[-1].status == "finished"
    assert len(history) == 50
    assert all(e.clipped_fraction > 0.9 for e in history), "the book's θ clips practically every step"
    expected = BOOK_PPL_AT_50[sampling]
    assert history[-1].perplexity == pytest.approx(expected, rel=0.25)
