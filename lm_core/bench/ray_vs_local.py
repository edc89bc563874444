"""Benchmark: the Ray backend against the local (process) backend on the same machine.

    python -m lm_core.bench.ray_vs_local [--corpus PATH] [--epochs 6] [--runs 6] [--address HOST:PORT]

Without `--address` it starts its own two-node cluster on this machine (a head
and a second node, one CPU each) and shuts it down at the end. Prints, for the
book's settings (scratch RNN, 256 hidden, num_steps 35, batch 32):

* characters/s of one run through Ray and through a local worker process;
* how late an epoch's event reaches the web process (median and worst);
* how long Pause, Resume and Stop take to be answered by the worker;
* runs per minute for `--runs` short runs, Ray cluster vs local backend with two slots.

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

from lm_core.corpus import BOOK_FILE, Corpus
from lm_core.serve import process_pool, ray_cluster
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import Trainer, book_config

BOOK_ZIP = REPO.parent / "shared" / "data" / BOOK_FILE


def _rate(history: list[dict]) -> float:
    """Median characters/s over the epochs after the first (the first pays for imports and warm-up)."""
    rates = [h["tokens_per_s"] for h in history[1:]] or [h["tokens_per_s"] for h in history]
    return statistics.median(rates)


def _manager(backend: str, slots: int) -> JobManager:
    store = RunStore(tempfile.mkdtemp(), shared=backend == "ray")
    manager = JobManager(max_running=slots, store=store, backend=backend)
    if backend == "process":
        process_pool.wait_warm(120)  # as on a server that has been up for a few seconds
    return manager


def _wait(predicate, timeout: float = 300.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError
        time.sleep(0.002)
    return time.monotonic() - start


def one_run(corpus: Corpus, epochs: int, backend: str) -> tuple[float, list[float]]:
    """Characters/s of one run, and the event lags (Ray only)."""
    manager = _manager(backend, 2)
    try:
        job = manager.submit("bench", [Trainer(corpus, book_config("scratch-rnn", epochs=epochs))])
        job.thread.join()
        return _rate(manager.view(job).runs[0].history), list(getattr(job.worker, "event_lags", []))
    finally:
        manager.shutdown()


def controls(corpus: Corpus, backend: str, rounds: int = 5) -> dict[str, list[float]]:
    """Seconds from pressing Pause / Resume / Stop to the worker's own report of it."""
    manager = _manager(backend, 2)
    out: dict[str, list[float]] = {"pause": [], "resume": [], "stop": []}
    try:
        job = manager.submit("bench", [Trainer(corpus, book_config("scratch-rnn", epochs=100_000))])
        _wait(lambda: manager.view(job).epoch >= 1 and job.status == "running")
        for _ in range(rounds):
            job.pause()
            out["pause"].append(_wait(lambda: job.status == "paused"))
            job.resume()
            out["resume"].append(_wait(lambda: job.status == "running"))
            time.sleep(0.2)  # let it train a little between rounds
        t0 = time.monotonic()
        job.stop()
        job.thread.join()
        out["stop"].append(time.monotonic() - t0)
    finally:
        manager.shutdown()
    return out


def runs_per_minute(corpus: Corpus, backend: str, runs: int, epochs: int) -> float:
    """`runs` short runs submitted at once; runs finished per minute of wall time."""
    manager = _manager(backend, 2)
    try:
        t0 = time.monotonic()
        jobs = [
            manager.submit("bench", [Trainer(corpus, book_config("scratch-rnn", epochs=epochs))]) for _ in range(runs)
        ]
        for job in jobs:
            job.thread.join()
        return runs / ((time.monotonic() - t0) / 60)
    finally:
        manager.shutdown()


def _fmt(rates: list[float]) -> str:
    return ", ".join(f"{r:,.0f}" for r in rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(BOOK_ZIP))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--short-epochs", type=int, default=3, help="epochs of each run in the runs/minute part")
    parser.add_argument("--rounds", type=int, default=3, help="alternating local/Ray runs for characters/s")
    parser.add_argument("--address", default="", help="an existing cluster; default: start a two-node one here")
    args = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    corpus = Corpus.from_file(args.corpus)
    print(f"corpus: {corpus.name}, {len(corpus):,} characters; book settings (scratch RNN, 256 hidden)")

    cluster = None
    try:
        address = args.address
        if not address:
            from ray.cluster_utils import Cluster

            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            address = cluster.address
        ray_cluster.connect(address)
        print(f"Ray cluster at {address}: {ray_cluster.cluster_cpus()} CPUs")
        # Alternate the backends, so the machine's changing load hits both alike; the median of each.
        local_rates, ray_rates, lags = [], [], []
        for _ in range(args.rounds):
            local_rates.append(one_run(corpus, args.epochs, "process")[0])
            rate, more = one_run(corpus, args.epochs, "ray")
            ray_rates.append(rate)
            lags += more
        local_rate, ray_rate = statistics.median(local_rates), statistics.median(ray_rates)
        local_controls = controls(corpus, "process")
        ray_controls = controls(corpus, "ray")
        local_rpm = runs_per_minute(corpus, "process", args.runs, args.short_epochs)
        ray_rpm = runs_per_minute(corpus, "ray", args.runs, args.short_epochs)
    finally:
        ray_cluster.disconnect()
        if cluster is not None:
            cluster.shutdown()

    print(f"one run, local process backend: {local_rate:9,.0f} chars/s (rounds: {_fmt(local_rates)})")
    print(
        f"one run, Ray backend:           {ray_rate:9,.0f} chars/s = {ray_rate / local_rate:.0%} of local "
        f"(rounds: {_fmt(ray_rates)})"
    )
    print(
        f"epoch event reaches the web process after: median {statistics.median(lags) * 1000:.1f} ms, "
        f"worst {max(lags) * 1000:.1f} ms ({len(lags)} epochs)"
    )
    for name, figures in (("local", local_controls), ("Ray", ray_controls)):
        print(
            f"controls answered ({name}): "
            + ", ".join(
                f"{k} median {statistics.median(v) * 1000:.0f} ms / worst {max(v) * 1000:.0f} ms"
                for k, v in figures.items()
            )
        )
    print(
        f"{args.runs} runs of {args.short_epochs} epochs: local backend (2 slots) {local_rpm:.1f} runs/min, "
        f"Ray two-node cluster (1 CPU each) {ray_rpm:.1f} runs/min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
