"""Lessons' settings: "memorise or generalise" and random vs adjacent sampling (`SAMPLING_PRESET`).

Memorise or generalise: one model, trained on 10,000 characters and on all of Song ci.

Both runs start from the same settings and seed and train in lockstep with the same fixed number of minibatches
per epoch, each with a validation split of whole ci. On 10,000 characters the model soon knows the training
text by heart: training perplexity keeps falling while validation perplexity turns up (overfitting). On the
1.48 M characters of all Song ci the same budget never repeats a ci, and both fall together.

The validation shares differ on purpose: 10 % of the small corpus is ~1,000 characters (fewer would not fill a
minibatch of 16 × 25 once cut at a whole ci); 1 % of all Song ci is ~15,000 characters of unseen ci, more text
than the whole small corpus, and measuring it costs ~37 forward minibatches instead of ~370 per epoch.
"""

from __future__ import annotations

from dataclasses import replace

from .corpus import BOOK_MAX_CHARS, Corpus
from .songci import ALL_SUBSET, DEFAULT_SUBSET, songci_corpus
from .training import TrainConfig, Trainer, book_config

SMALL_CHARS = BOOK_MAX_CHARS  # the book's 10,000 characters, of the app's default corpus (辛弃疾)
SMALL_VAL = 0.1
LARGE_VAL = 0.01
LABELS = ("small", "large")  # language-free run keys; pages translate them

# Sized for the 10 s promise on a loaded 2-core machine (`python -m lm_core bench-large` measures it): GRU 96 with
# an embedding of 64, batch 16 × 24, 100 minibatches per epoch per run took 9.5-9.9 s for both runs' epoch at one
# thread under a load average of 3 (16 × 35 took 13 s: the 5,182-way output layer of all Song ci dominates).
PRESET = TrainConfig(
    model="gru",
    sampling="adjacent",
    hidden=96,
    embed=64,
    num_steps=24,
    batch_size=16,
    lr=0.01,
    optimizer="adam",
    clip=1.0,
    epochs=15,
    seed=0,
    steps_per_epoch=100,
    val_fraction=SMALL_VAL,
)


def corpora(small_chars: int = SMALL_CHARS) -> tuple[Corpus, Corpus]:
    """The first `small_chars` characters of 辛弃疾's ci, and all of Song ci (both cached by `songci`)."""
    return songci_corpus(DEFAULT_SUBSET, small_chars), songci_corpus(ALL_SUBSET, None)


def trainers(config: TrainConfig, small: Corpus, large: Corpus) -> list[Trainer]:
    """The same model on both corpora, each with its validation share (see the module docstring).

    A `steps_per_epoch` of 0 would make the two epochs different amounts of training (one pass of 10,000
    characters against one of 1.48 M), so the budget is the config's and must be fixed.
    """
    steps = config.steps_per_epoch or PRESET.steps_per_epoch
    return [
        Trainer(small, replace(config, steps_per_epoch=steps, val_fraction=SMALL_VAL)),
        Trainer(large, replace(config, steps_per_epoch=steps, val_fraction=LARGE_VAL)),
    ]


# Random vs adjacent sampling on the default corpus (辛弃疾). With the book's settings on its 10,000 characters both
# runs sit on the same plateau for about 30 epochs and cross on it (epoch 40, seed 0: random 283, adjacent 263;
# adjacent stays lower only from epoch 26-36 of 3 seeds); the lesson shows by epoch 80-100, 2.5 minutes of training.
# Half the corpus with half the batch keeps the book's 8 minibatches per epoch and its rows of 312 characters at
# half the cost, and the lesson shows on every seed: adjacent lower from epoch 27-28 to the end, random/adjacent
# 1.15-1.18 at epoch 40 and 1.27-1.41 at epoch 80 (seeds 0-2), 43 s of training for both runs at one thread idle,
# 79 s under a load of 10. (Adam, a GRU or num_steps 10 made it worse: adjacent behind early or random ahead late.)
SAMPLING_CHARS = 5_000
SAMPLING_PRESET = book_config("scratch-rnn", "random", batch_size=16, epochs=80, seed=0)
