"""Parse time and peak memory of one checkpoint upload: genuine files against crafted ones.

    python tests/checkpoint_bench.py [--repo PATH]

Each file is parsed by `lm_core.checkpoint.read_bytes` (what a page does with an
upload) in a fresh Python process, so the peak resident memory it reports
(`+MB`: above the process's peak after importing torch and one warm-up parse; `peak MB`: the
process's whole peak) is that parse's alone. `--repo` points at another checkout (e.g. the main branch)
to measure its `lm_core` with the same files; the baseline is the genuine
small checkpoint parsed in the same run. The crafted files are built in memory
here and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

PARSE = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from lm_core import checkpoint
data = open(sys.argv[2], "rb").read()
checkpoint.read_bytes(checkpoint.to_bytes(checkpoint.from_bytes(open(sys.argv[3], "rb").read())), "warm-up")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
ckpt, error = checkpoint.read_bytes(data, "upload.pt")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "total_mb": total, "error": str(error) if error else None}))
"""


def _genuine(hidden: int, with_optimizer: bool) -> bytes:
    from testkit import tiny_text

    from lm_core import checkpoint
    from lm_core.corpus import Corpus
    from lm_core.training import TrainConfig, Trainer

    corpus = Corpus.from_text(tiny_text(), name="tiny", max_chars=None)
    trainer = Trainer(corpus, TrainConfig(model="gru", hidden=hidden, optimizer="adam", lr=1e-3, epochs=1))
    if with_optimizer:
        trainer.config.steps_per_epoch = 1
        for _ in trainer.train():
            pass
    ckpt = checkpoint.from_trainer(trainer)
    if not with_optimizer:
        ckpt.optimizer_state = None
    return checkpoint.to_bytes(ckpt)


def main() -> None:
    from testkit import crafted_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the checkout whose lm_core parses the files")
    args = parser.parse_args()
    cases = {
        "genuine GRU 8 hidden + Adam": _genuine(8, True),
        "genuine GRU 1,200 hidden, weights only": _genuine(1200, False),
        "crafted: zero strides, 50 M weights": crafted_checkpoint("gru"),
        "crafted: zero strides, + Adam moments": crafted_checkpoint("gru", optimizer=True),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="ckpt-bench-") as folder:
        warm = Path(folder) / "warm.pt"
        warm.write_bytes(cases["genuine GRU 8 hidden + Adam"])
        for label, data in cases.items():
            path = Path(folder) / "upload.pt"
            path.write_bytes(data)
            out = subprocess.run(
                [sys.executable, "-c", PARSE, str(args.repo.resolve()), str(path), str(warm)],
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            results[label] = json.loads(out.stdout.strip().splitlines()[-1]) | {"kb": len(data) / 1024}
    base = results["genuine GRU 8 hidden + Adam"]["seconds"]
    print(f"lm_core from {args.repo.resolve()}")
    print(f"{'file':42} {'size':>10} {'parse s':>9} {'x base':>7} {'+MB':>7} {'peak MB':>8}  outcome")
    for label, r in results.items():
        outcome = "loaded" if r["error"] is None else "refused: " + r["error"][:70]
        print(
            f"{label:42} {r['kb']:8.0f}KB {r['seconds']:9.3f} {r['seconds'] / base:7.1f} {r['peak_mb']:7.1f} {r['total_mb']:8.1f}  {outcome}"
        )


if __name__ == "__main__":
    main()
