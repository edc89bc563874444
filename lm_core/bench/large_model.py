"""Speed and memory of a large run (a deep model on all of Song ci): prints numbers, asserts nothing.

`python -m lm_core bench-large` loads the whole cleaned Song ci, times the corpus
load and vocabulary, then trains a few minibatches of the given model and
reports characters/second and the process's peak resident memory. Run it once
per thread count (`--threads 1`, `--threads 2`): torch's thread pool is fixed
per process. `--lesson` times the "memorise or generalise" page's default instead
(`lessons.PRESET`: both runs, 100 minibatches each, validation included).
"""

from __future__ import annotations

import time

import torch

from .. import lessons, rss
from ..songci import ALL_SUBSET, songci_corpus
from ..training import TrainConfig, Trainer


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (training resets the kernel's mark each epoch; this does not)."""
    return (rss.lifetime_peak_rss() or 0) / 2**20


def main(config: TrainConfig, steps: int, threads: int) -> str:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    corpus = songci_corpus(ALL_SUBSET, None)
    load_s = time.perf_counter() - start
    config = TrainConfig.from_dict({**config.to_dict(), "steps_per_epoch": steps, "epochs": 2})
    trainer = Trainer(corpus, config)
    lines = [
        f"corpus {corpus.name}: {len(corpus):,} characters, vocabulary {corpus.vocab_size:,}, "
        f"load + vocabulary {load_s:.2f} s",
        f"model {config.model}, {config.num_layers} layer(s) × {config.hidden}, embed {config.embed}, "
        f"T={config.num_steps}, B={config.batch_size}, threads {threads}",
    ]
    if trainer.baselines:
        lines.append(f"baselines: unigram {trainer.baselines.unigram:.1f}, bigram {trainer.baselines.bigram:.1f}")
    for event in trainer.train():  # epoch 1 warms up, epoch 2 is measured
        if hasattr(event, "tokens_per_s"):
            lines.append(
                f"epoch {event.epoch}: {event.steps} steps in {event.seconds:.2f} s, {event.tokens_per_s:,.0f} chars/s"
            )
    lines.append(f"peak memory {peak_memory_mb():,.0f} MB")
    return "\n".join(lines)


def lesson(threads: int, epochs: int = 2) -> str:
    """Seconds per lockstep epoch of the memorise-or-generalise preset (the page promises about 10 s).

    Both corpora are loaded first (the page has them cached); epoch 1 includes torch's warm-up, so every epoch
    is printed. An epoch here is what the page draws as one point: 100 minibatches of each run plus validation.
    """
    torch.set_num_threads(threads)
    start = time.perf_counter()
    small, large = lessons.corpora()
    load_s = time.perf_counter() - start
    config = TrainConfig.from_dict({**lessons.PRESET.to_dict(), "epochs": epochs})
    trainers = lessons.trainers(config, small, large)
    c = lessons.PRESET
    lines = [
        f"memorise or generalise: {c.model} {c.hidden}, embed {c.embed}, B={c.batch_size} T={c.num_steps}, "
        f"{c.steps_per_epoch} minibatches per epoch per run, threads {threads}; corpora loaded in {load_s:.2f} s",
    ]
    for epoch in range(1, epochs + 1):
        seconds = []
        for trainer in trainers:
            t0 = time.perf_counter()
            for _ in trainer.run_epoch():
                pass
            seconds.append(time.perf_counter() - t0)
        vals = ", ".join(f"{t.history[-1].val_perplexity:.0f}" for t in trainers)
        lines.append(
            f"epoch {epoch}: small {seconds[0]:.2f} s + large {seconds[1]:.2f} s = {sum(seconds):.2f} s "
            f"(validation perplexity {vals})"
        )
    lines.append(f"peak memory {peak_memory_mb():,.0f} MB")
    return "\n".join(lines)
