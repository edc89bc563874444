"""Benchmark: characters/second of a run trained by the app's backends vs the CLI's bare loop, side by side.

    python -m lm_core.bench.throughput [--corpus PATH] [--epochs 40] [--rounds 2]

Prints, for the book's settings (scratch RNN, 256 hidden, num_steps 35,
batch 32): the CLI's loop in this process with one torch thread; one run in a
worker process (the app's default backend) and one in a server thread; two
runs at once in worker processes; the seconds from submit to the first
epoch's point; and one run in a worker at nice 0 against one at the app's
default niceness (the web process idle: what the lower priority costs a run).
Numbers, not assertions: the machine's load decides them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

import torch

from lm_core.corpus import BOOK_FILE, Corpus
from lm_core.serve import niceness, process_pool
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import Trainer, book_config

BOOK_ZIP = REPO.parent / "shared" / "data" / BOOK_FILE


def _corpus(path: str) -> Corpus:
    """The book's corpus (read in place) or another text file, with the book's preprocessing."""
    return Corpus.from_file(path)


def _rate(history: list[dict]) -> float:
    """Median characters/s over the epochs after the first (the first pays for imports and warm-up)."""
    rates = [h["tokens_per_s"] for h in history[1:]] or [h["tokens_per_s"] for h in history]
    return statistics.median(rates)


def cli_rate(corpus: Corpus, epochs: int) -> float:
    torch.set_num_threads(1)
    trainer = Trainer(corpus, book_config("scratch-rnn", epochs=epochs))
    return _rate([e.to_dict() for e in trainer.train() if hasattr(e, "perplexity")])


def app_rates(corpus: Corpus, epochs: int, backend: str, runs: int) -> tuple[list[float], float]:
    manager = JobManager(max_running=runs, store=RunStore(tempfile.mkdtemp()), backend=backend)
    if backend == "process":
        process_pool.wait_warm(120)  # as on a server that has been up for a few seconds
    try:
        t0 = time.monotonic()
        jobs = [
            manager.submit("bench", [Trainer(corpus, book_config("scratch-rnn", epochs=epochs))]) for _ in range(runs)
        ]
        while manager.view(jobs[0]).epoch < 1:
            time.sleep(0.01)
        first = time.monotonic() - t0
        for job in jobs:
            job.thread.join()
        return [_rate(manager.view(job).runs[0].history) for job in jobs], first
    finally:
        manager.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(BOOK_ZIP))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds, so a change of load hits all alike")
    args = parser.parse_args()
    corpus = _corpus(args.corpus)
    print(f"corpus: {corpus.name}, {len(corpus):,} characters; book settings, {args.epochs} epochs")
    cli, one, first, two = [], {"process": [], "thread": []}, {"process": [], "thread": []}, []
    nice: dict[int, list[float]] = {0: [], niceness.DEFAULT_NICENESS: []}
    for _ in range(max(1, args.rounds)):
        for level, rates in nice.items():  # interleaved: a change of the machine's load hits both alike
            os.environ[niceness.NICE_ENV] = str(level)  # read by each worker as it starts
            rates.append(app_rates(corpus, args.epochs, "process", 1)[0][0])
        os.environ.pop(niceness.NICE_ENV, None)
        cli.append(cli_rate(corpus, args.epochs))
        for backend in ("process", "thread"):
            (rate,), seconds = app_rates(corpus, args.epochs, backend, 1)
            one[backend].append(rate)
            first[backend].append(seconds)
        two.append(app_rates(corpus, args.epochs, "process", 2)[0])
    base = statistics.median(cli)
    print(f"CLI loop, 1 torch thread:            {base:9,.0f} chars/s (rounds: {', '.join(f'{c:,.0f}' for c in cli)})")
    for backend, rates in one.items():
        rate = statistics.median(rates)
        print(
            f"one run, {backend:7s} backend:          {rate:9,.0f} chars/s = {rate / base:5.0%} of the CLI; "
            f"first point after {statistics.median(first[backend]):.2f} s"
        )
    plain = statistics.median(nice[0])
    for level, rates in nice.items():
        rate = statistics.median(rates)
        print(
            f"one run, workers at nice {level:2d}:      {rate:9,.0f} chars/s = {rate / plain:5.0%} of nice 0 "
            f"(rounds: {', '.join(f'{r:,.0f}' for r in rates)}; the web process idle)"
        )
    pairs = "; ".join(", ".join(f"{r:,.0f} ({r / base:.0%})" for r in pair) for pair in two)
    print(f"two runs at once, process backend:  {pairs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
