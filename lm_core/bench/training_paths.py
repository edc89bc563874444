"""`python -m lm_core bench`: seconds per epoch of every training path.

Everything runs in one process with `torch.set_num_threads(1)`, on the book's
corpus and settings. Paths are interleaved epoch by epoch (round robin) so a
noisy neighbour slows all of them alike, and the median epoch is reported with
its ratio to the book's reference procedure measured in the same run. The
perplexity of the reference and the fast from-scratch RNN are printed side by
side for the same seed, to show that speed did not change the maths.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..corpus import Corpus
from ..training import EpochEvent, Trainer, book_config
from .reference import train_reference, train_reference_concise


@dataclass
class PathResult:
    name: str
    seconds: list[float] = field(default_factory=list)
    perplexity: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds[1:] or self.seconds)  # first epoch is warm-up


def _trainer_epochs(trainer: Trainer) -> Iterator[tuple[float, float]]:
    while True:
        for event in trainer.run_epoch():
            if isinstance(event, EpochEvent):
                yield event.perplexity, event.seconds


def run_bench(
    corpus: Corpus, epochs: int = 6, seed: int = 0, sampling: str = "random", log: Callable[[str], None] = print
) -> list[PathResult]:
    """Measure every path for `epochs` epochs each; returns the results (reference first)."""
    torch.set_num_threads(1)
    paths: dict[str, Iterator[tuple[float, float]]] = {
        "reference (book procedure)": (
            (ppl, sec)
            for _, ppl, sec in train_reference(
                corpus.indices, corpus.vocab_size, mode=sampling, epochs=epochs, seed=seed
            )
        )
    }
    for kind in ("rnn", "gru", "lstm"):
        cfg = book_config(kind, epochs=epochs, seed=seed)
        paths[f"book concise {kind} (one-hot nn.{kind.upper()})"] = (
            (ppl, sec)
            for _, ppl, sec in train_reference_concise(
                corpus.indices, corpus.vocab_size, kind=kind, lr=cfg.lr, epochs=epochs, seed=seed
            )
        )
    for kind in ("scratch-rnn", "rnn", "gru", "lstm", "scratch-gru", "scratch-lstm"):
        cfg = book_config(
            kind, sampling="random" if kind.startswith("scratch") else "adjacent", epochs=epochs, seed=seed
        )
        if kind == "scratch-rnn":
            cfg.sampling = sampling
        label = f"{kind} ({cfg.sampling}, {cfg.optimizer} lr {cfg.lr:g})"
        paths[label] = _trainer_epochs(Trainer(corpus, cfg))
    results = {name: PathResult(name) for name in paths}
    for epoch in range(1, epochs + 1):
        for name, it in paths.items():
            ppl, sec = next(it)
            results[name].perplexity.append(ppl)
            results[name].seconds.append(sec)
        log(f"  epoch {epoch}/{epochs} done")
    return list(results.values())


def format_results(results: list[PathResult]) -> str:
    """A table: s/epoch, ratio to the book's scratch procedure, and for torch.nn models
    the ratio to the book's concise procedure with the same layer."""
    ref = results[0]
    concise = {r.name.split()[2]: r for r in results if r.name.startswith("book concise")}
    lines = [f"{'path':<44} {'s/epoch':>8} {'ratio':>6} {'vs concise':>10} {'ppl@last':>9}"]
    for r in results:
        kind = r.name.split()[0]
        own = f"{r.median / concise[kind].median:10.2f}" if kind in concise else " " * 10
        lines.append(f"{r.name:<44} {r.median:8.3f} {r.median / ref.median:6.2f} {own} {r.perplexity[-1]:9.2f}")
    fast = next(r for r in results if r.name.startswith("scratch-rnn"))
    lines.append("")
    lines.append("same seed, reference vs fast scratch-rnn perplexity per epoch:")
    for i, (a, b) in enumerate(zip(ref.perplexity, fast.perplexity), start=1):
        lines.append(f"  epoch {i:3d}  {a:9.3f}  {b:9.3f}  ({(b - a) / a:+.2%})")
    return "\n".join(lines)


def main(corpus: Corpus, epochs: int, seed: int) -> str:
    start = time.perf_counter()
    results = run_bench(corpus, epochs=epochs, seed=seed)
    text = format_results(results)
    return f"{text}\n\n(torch {torch.__version__}, 1 thread, {time.perf_counter() - start:.0f} s in all)"
