"""`python -m lm_core bench-memory`: the run-memory estimate against the peak memory of real runs.

Each configuration of the grid trains in a fresh Python process (so one run's
freed memory cannot hide in the next one's peak) that does what a worker does:
torch imported and warmed up, one torch thread, the corpus built from its text,
then a few epochs, each followed by the published checkpoint (weights and
optimiser state serialised) and two greedy samples. The process's peak resident
memory over all of it is the measurement; the estimate comes from
`memory.estimate_run_memory` for the same settings in this process. A ratio
below 0.8 (the estimate more than 25 % under the measurement) is marked.

The corpora are synthetic: `n_chars` characters drawn from exactly `vocab`
distinct CJK characters, so a vocabulary of 8,000 needs no pasted text.
Prints a table, asserts nothing (a benchmark, not a test).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..memory import ESTIMATE_TOLERANCE, estimate_run_memory

CHILD_TIMEOUT = 900.0


@dataclass(frozen=True)
class Case:
    label: str
    vocab: int
    n_chars: int
    config: dict[str, Any] = field(default_factory=dict)
    epochs: int = 2


_WORDS = {"sgd": ("optimizer", "sgd"), "relu": ("nonlinearity", "relu"), "nodetach": ("detach", False)}
_PREFIXED = {  # prefix -> (field, type)
    "h": ("hidden", int),
    "B": ("batch_size", int),
    "T": ("num_steps", int),
    "L": ("num_layers", int),
    "E": ("embed", int),
    "drop": ("dropout", float),
    "val": ("val_fraction", float),
    "mb": ("steps_per_epoch", int),
}


def case(label: str, vocab: int, n_chars: int, spec: str, epochs: int = 2) -> Case:
    """A grid line: `spec` is "<model> <sampling> h256 B64 T100 [sgd] [relu] [nodetach] [L2 E128 drop0.2]
    [val0.1] [mb60]"; unless it says otherwise a case trains 2 minibatches per epoch with Adam (lr 1e-3, θ = 1),
    and SGD means lr 1."""
    model, sampling, *words = spec.split()
    config: dict[str, Any] = {"model": model, "sampling": sampling, "steps_per_epoch": 2, "clip": 1.0}
    config |= {"optimizer": "adam", "lr": 1e-3}
    for word in words:
        if word in _WORDS:
            key, value = _WORDS[word]
            config[key] = value
            continue
        prefix = next(p for p in sorted(_PREFIXED, key=len, reverse=True) if word.startswith(p))
        key, kind = _PREFIXED[prefix]
        config[key] = kind(word[len(prefix) :])
    if config["optimizer"] == "sgd":
        config["lr"] = 1.0
    return Case(label, vocab, n_chars, config, epochs)


# The probe's 6.85 GB run was ?corpus=paste&model=rnn&hidden=256&batch=256&steps=200 on 200,000 characters with
# 8,000 distinct ones (torch.nn RNN, Adam, adjacent). `--full` adds it as it was; the grid scales it down.
FULL = case("the probe's run (rnn V8000 B256 T200)", 8000, 200_000, "rnn adjacent h256 B256 T200", epochs=1)
GRID = [
    case("probe ÷8 (rnn V8000 B64 T100)", 8000, 200_000, "rnn adjacent h256 B64 T100"),
    case("probe ÷4, SGD", 8000, 200_000, "rnn adjacent h256 B128 T100 sgd"),
    case("book scratch-rnn (V1027, full epochs)", 1027, 10_000, "scratch-rnn random h256 B32 T35 sgd mb0"),
    case("scratch-rnn V8000 h1024", 8000, 100_000, "scratch-rnn random h1024 B32 T35 sgd"),
    case("gru V8000 h1024 B8 T10 (weights)", 8000, 100_000, "gru random h1024 B8 T10"),
    case("scratch-gru V4000 h512 B64 T50", 4000, 100_000, "scratch-gru adjacent h512 B64 T50 sgd"),
    case("scratch-lstm V100 h1024 B128 T100", 100, 100_000, "scratch-lstm random h1024 B128 T100 sgd"),
    case("gru V100 h2048 B64 T100", 100, 100_000, "gru random h2048 B64 T100"),
    case("lstm L2 E128 V2000 h512 val", 2000, 200_000, "lstm adjacent h512 B64 T64 L2 E128 drop0.2 val0.1"),
    case("rnn relu V50 h1024 B256 T100", 50, 100_000, "rnn random h1024 B256 T100 relu"),
    case("rnn V3000 h256 B512 T100 val0.2", 3000, 300_000, "rnn random h256 B512 T100 val0.2", epochs=1),
    case("scratch-rnn V2603 47k chars (辛弃疾)", 2603, 47_460, "scratch-rnn adjacent h256 B32 T35 sgd mb0", 2),
    case("... no-detach (42 mb kept)", 2603, 47_460, "scratch-rnn adjacent h256 B32 T35 sgd mb0 nodetach", 2),
    case("scratch-rnn no-detach 60 mb", 1000, 100_000, "scratch-rnn adjacent h512 B32 T35 sgd nodetach mb60", 1),
    case("lstm no-detach 30 mb", 500, 200_000, "lstm adjacent h512 B64 T35 nodetach mb30", epochs=1),
    case("gru detached 40 mb", 500, 200_000, "gru adjacent h512 B64 T35 mb40", epochs=1),
    case("gru no-detach 40 mb", 500, 200_000, "gru adjacent h512 B64 T35 nodetach mb40", epochs=1),
    case("8M chars, val", 200, 8_000_000, "gru random h64 B32 T35 val0.05", epochs=1),
    case("8M chars", 200, 8_000_000, "gru adjacent h64 B32 T35", epochs=1),
]


def synthetic_text(vocab: int, n_chars: int, seed: int = 0) -> str:
    """`n_chars` (at least `vocab`) characters using exactly `vocab` distinct CJK characters, each at least once.

    Built through one numpy array and its UTF-32 bytes, so making it costs little more than the text itself
    (a list of characters would dwarf what is measured).
    """
    codes = np.random.default_rng(seed).integers(0, vocab, max(n_chars, vocab), dtype=np.uint32)
    codes[:vocab] = np.arange(vocab, dtype=np.uint32)
    return (codes + 0x4E00).astype("<u4").tobytes().decode("utf-32-le")


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """In the fresh process: a worker's life for one configuration; returns base and peak resident bytes."""
    import torch

    from .. import checkpoint, rss
    from ..corpus import Corpus
    from ..generation import generate
    from ..serve.warmup import warm_up_torch
    from ..training import EpochEvent, TrainConfig, Trainer

    torch.set_num_threads(1)
    warm_up_torch()
    base = rss.current_rss()
    text = synthetic_text(spec["vocab"], spec["n_chars"])
    corpus = Corpus.from_text(text, "synthetic", max_chars=None)  # the text stays, as a worker keeps its job's spec
    config = TrainConfig.from_dict({**spec["config"], "epochs": spec["epochs"]})
    trainer = Trainer(corpus, config, memory_budget=math.inf)
    ready = rss.lifetime_peak_rss()  # the corpus, its ids and baselines built; nothing trained yet
    epoch_peaks, seconds = [], []
    for event in trainer.train():
        if isinstance(event, EpochEvent):
            epoch_peaks.append(event.peak_rss)
            seconds.append(event.seconds)
            checkpoint.to_bytes(checkpoint.from_trainer(trainer))  # what a worker publishes after each epoch
            for prefix in corpus.text[:1], corpus.text[1:3]:
                generate(trainer.model, corpus, prefix, 50)
    return {
        "base": base,
        "ready": ready,
        "peak": rss.lifetime_peak_rss(),
        "epoch_peaks": epoch_peaks,
        "seconds": seconds,
    }


def measure(case: Case) -> dict[str, Any]:
    """Run `case` in a fresh interpreter; its report, or {"error": ...}."""
    spec = {"vocab": case.vocab, "n_chars": case.n_chars, "config": case.config, "epochs": case.epochs}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lm_core.bench.run_memory", "--child", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT:.0f} s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exit " + str(done.returncode)])[-1]}
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["wall"] = time.perf_counter() - start
    return report


def estimate_for(case: Case) -> int:
    from ..training import TrainConfig

    config = TrainConfig.from_dict({**case.config, "epochs": case.epochs})
    config.validate()
    return estimate_run_memory(config, case.vocab, case.n_chars).total


def main(full: bool = False, only: str | None = None, log=print) -> list[tuple[Case, int, dict[str, Any]]]:
    """Measure the grid (plus the probe's own run with `full`); print one line per case as it finishes."""
    cases = GRID + ([FULL] if full else [])
    if only:
        cases = [c for c in cases if only.lower() in c.label.lower()]
    low = 1 / ESTIMATE_TOLERANCE
    log(f"{'configuration':44} {'estimate':>9} {'measured':>9} {'ratio':>6}  {'dominant':10} per-epoch peaks")
    rows = []
    for case in cases:
        estimate = estimate_for(case)
        report = measure(case)
        rows.append((case, estimate, report))
        if "error" in report:
            log(f"{case.label:44} {estimate / 2**20:8,.0f}M  failed: {report['error']}")
            continue
        ratio = estimate / report["peak"]
        from ..training import TrainConfig

        dominant = estimate_run_memory(TrainConfig.from_dict(case.config), case.vocab, case.n_chars).dominant
        epochs = " ".join(f"{p / 2**20:,.0f}M" for p in report["epoch_peaks"] if p)
        flag = "  << under by more than 25 %" if ratio < low else ""
        log(
            f"{case.label:44} {estimate / 2**20:8,.0f}M {report['peak'] / 2**20:8,.0f}M {ratio:6.2f}  {dominant:10} "
            f"{epochs} (base {report['base'] / 2**20:,.0f}M, ready {report['ready'] / 2**20:,.0f}M, "
            f"{report['wall']:.0f} s){flag}"
        )
    ok = [r for _, _, r in rows if "error" not in r]
    if ok:
        ratios = [e / r["peak"] for _, e, r in rows if "error" not in r]
        log(f"ratio estimate/measured: min {min(ratios):.2f}, max {max(ratios):.2f} over {len(ratios)} runs")
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))))
