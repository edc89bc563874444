"""Plain helpers shared by test modules and the scripts beside them: synthetic text, polling, a reference
training curve, a real `streamlit run` server and the headless browser's flags. No Streamlit import here.

Fixtures live in `conftest.py`; the AppTest page helpers in `apptest_helpers.py`
and `apptest_helpers_models.py`. This module is for what any test may import,
including the engine's tests, which must not pull in the UI, and the load and
bench scripts, which run it as a plain module (so heavy imports stay inside
the functions that need them).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from lm_core.training import Trainer

REPO = Path(__file__).resolve().parents[1]

# Phrases written for these tests (not lyrics from any corpus).
TINY_PHRASES = (
    "春风吹过小河边",
    "月光照在老树上",
    "我们一起唱着歌",
    "雨后的天空很蓝",
    "远方的朋友你好吗",
    "山上的花开了",
)


def tiny_text(phrases: Sequence[str] = TINY_PHRASES, n_lines: int = 80, seed: int = 1) -> str:
    """Deterministic synthetic lines "a，b。" of two different `phrases` each (about 1,000 characters by default).

    Made up here so tests train on a small known alphabet without reading any corpus.
    """
    rng = random.Random(seed)
    return "\n".join(f"{a}，{b}。" for a, b in (rng.sample(phrases, 2) for _ in range(n_lines)))


def flood_text(session: int, megabytes: float) -> str:
    """About `megabytes` of UTF-8 text, different for every `session`: what a flood of visitors pastes.

    Lines of 1,000 characters drawn from 3,000 CJK characters (within the vocabulary limit), so the text is
    valid and as large as the lab accepts; the session's number heads it, so no two sessions send the same text.
    """
    rng = random.Random(session)
    alphabet = [chr(0x4E00 + k) for k in range(3000)]
    lines = ["".join(rng.choices(alphabet, k=1000)) for _ in range(8)]
    count = int(megabytes * 2**20 / 3001) + 1  # 3 bytes a character, a line end
    return f"{session}\n" + "\n".join(lines[i % len(lines)] for i in range(count))


TIMEOUT = 120.0  # seconds: an upper bound for a worker to get somewhere; never a pass condition by itself


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, poll: float = 0.01) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


def seconds_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> float:
    """Seconds until `predicate` held, polled every 5 ms (fails the test after `timeout`): how fast a control acts."""
    start = time.monotonic()
    assert wait_until(predicate, timeout, poll=0.005), "timed out"
    return time.monotonic() - start


def thread_curve(trainer: Trainer, timeout: float = TIMEOUT) -> list[float]:
    """Perplexity by epoch of `trainer` run to the end on the local thread backend.

    The reference that a worker process, a Ray actor or a resumed run must reproduce exactly.
    """
    return [h["perplexity"] for h in thread_history(trainer, timeout)]


def thread_history(trainer: Trainer, timeout: float = TIMEOUT) -> list[dict]:
    """Every epoch's record of `trainer` run to the end on the local thread backend (see `thread_curve`)."""
    from lm_core.serve.manager import JobManager

    manager = JobManager()
    try:
        job = manager.submit("reference", [trainer])
        job.thread.join(timeout)
        return manager.view(job).runs[0].history
    finally:
        manager.shutdown()


def learned(history: list[dict]) -> list[tuple]:
    """What a run learned per epoch (training and validation perplexity, gradient norms), without its timings."""
    return [(h["perplexity"], h["val_perplexity"], h["grad_norm_mean"], h["best_epoch"]) for h in history]


def reachable(root: object, kind: type, max_objects: int = 200_000) -> list[object]:
    """Objects of `kind` that `root` holds, directly or through its attributes and containers.

    Walks `gc.get_referents` but not into classes, modules or functions (their globals would reach the
    whole interpreter): what an object owns, not what it could import.
    """
    import gc
    import types

    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType, types.FrameType)
    seen, todo, found = {id(root)}, [root], []
    while todo and len(seen) < max_objects:
        obj = todo.pop()
        if isinstance(obj, kind):
            found.append(obj)
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, skip):
                seen.add(id(ref))
                todo.append(ref)
    return found


def check_released_weights(
    manager: object, trainer: Trainer, prefix: str, elsewhere: bool, timeout: float = TIMEOUT
) -> None:
    """Train `trainer` to the end as a job of `manager` (which has a run store), leave it unwatched until the
    manager releases it, and check that the weights it then shows are the ones its worker trained last.

    The run store's checkpoint is what the worker sent after its last epoch. After the release the job's
    published checkpoint must equal it bit for bit; the job must hold no model of its own (one that could
    stand in for the run's weights); and a greedy line written from the released job must equal the line
    `python -m lm_core generate` writes from the stored checkpoint. A job trained `elsewhere` (a worker
    process, a Ray actor) must hold no model at any time: its only weights are the ones its worker sent.
    """
    import torch

    from lm_core import checkpoint
    from lm_core.generation import generate

    job = manager.submit("alice", [trainer], ["GRU"])
    job.thread.join(timeout)
    view = manager.view(job)
    assert view.status == "finished", view.message
    epochs = view.epoch
    stored_path = manager.store.checkpoint_path(f"{job.id}-0")
    stored = checkpoint.load(stored_path)
    assert len(stored.history) == epochs
    if elsewhere:
        assert reachable(job, torch.nn.Module) == [], "a job trained elsewhere holds a model in the web process"

    def same_weights(ckpt: checkpoint.Checkpoint) -> bool:
        keys = stored.model_state.keys()
        return ckpt.model_state.keys() == keys and all(
            torch.equal(ckpt.model_state[k], stored.model_state[k]) for k in keys
        )

    assert same_weights(job.checkpoint(0))  # what its page showed while it was watched
    manager.reap(now=time.time() + manager.retention.release_after + 1)  # nobody looked at it for that long
    assert job.released
    published = job.checkpoint(0)
    assert len(published.history) == epochs and published.best_epoch == stored.best_epoch
    assert same_weights(published)
    assert published.optimizer_state is None  # what only Continue needs is given back
    assert reachable(job, torch.nn.Module) == [], "the released job holds a model besides its published weights"

    line = generate(published.build_model(), published.vocab, prefix, 30).text
    cli = subprocess.run(
        [sys.executable, "-m", "lm_core", "generate", "--checkpoint", str(stored_path), "--prefix", prefix,
         "--length", "30"],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == line


# Debian's Chromium, never a downloaded browser; the flags a headless run in a container needs.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(NamedTuple):
    url: str  # http://127.0.0.1:<port>
    pid: int  # for the load test's memory and CPU figures


@contextmanager
def streamlit_server(
    data: str, log: IO[str], ready_within: float = 60.0, repo: Path = REPO, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`streamlit run streamlit_app.py` on a free 127.0.0.1 port, once it answers its health check.

    Its runs go to `data` (RNN_LAB_DATA), never the repository's lab-data/; its output to `log`. Stopped on exit.
    `repo`: the checkout whose app is served (a benchmark compares two); `env`: extra environment variables.
    It trains on the app's own default backend (worker processes), as a real server does, whatever the test
    process's backend (unless `env` names one). `env`: the operator's settings for this server (limits, workers).
    Raises TimeoutError when the server is not healthy within `ready_within` seconds.
    """
    from lm_core.serve.manager import BACKEND_ENV

    server_env = {k: v for k, v in os.environ.items() if k != BACKEND_ENV} | (env or {}) | {"RNN_LAB_DATA": data}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=repo, env=server_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: _healthy(base), ready_within, poll=0.3):
            raise TimeoutError(f"streamlit did not become healthy within {ready_within:g} s")
        yield Server(base, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _healthy(base: str) -> bool:
    try:
        return urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


def crafted_checkpoint(kind: str = "gru", optimizer: bool = False, views: str = "expand") -> bytes:
    """A checkpoint file that declares the largest `kind` model the limits allow (~50 M weights, vocabulary 8,000)
    but whose tensors hold almost no data: a few kilobytes of storage behind tens of millions of values.

    `views`: "expand" (zero strides: `torch.zeros(1).expand(*shape)`), "shared" (every tensor a view of one
    storage), "offset" (a slice of a larger storage) or "strided" (every other value of a storage twice as big;
    this one is honest about its size, so it is only small when the model is). `optimizer=True` adds Adam moments
    built the same way. Written here, in memory, for the tests and `checkpoint_bench.py`: never commit one.
    """
    import io

    import torch

    from lm_core import checkpoint, limits, models
    from lm_core.training import TrainConfig

    vocab = [chr(0x4E00 + i) for i in range(limits.MAX_VOCAB)]
    hidden = max(
        h for h in range(1, limits.MAX_HIDDEN + 1)
        if models.parameter_count(kind, len(vocab), h) <= limits.MAX_PARAMETERS
    )  # fmt: skip
    shapes = models.expected_shapes(kind, len(vocab), hidden)
    if views != "expand":  # the other layouts need real storage: keep the model small
        vocab, hidden = vocab[:40], 16
        shapes = models.expected_shapes(kind, len(vocab), hidden)
    base = torch.zeros(max(math_prod(s) for s in shapes.values()) * 2 + 1)

    def fake(shape: tuple[int, ...]) -> torch.Tensor:
        n = math_prod(shape)
        if views == "expand":
            return torch.zeros(1).expand(*shape)
        if views == "shared":
            return base[:n].view(shape)
        if views == "offset":
            return base[1 : n + 1].view(shape)
        if views == "strided":
            return torch.zeros(n * 2)[::2].view(-1).as_strided(shape, _contiguous_strides(shape, 2))
        raise ValueError(views)

    config = TrainConfig(model=kind, hidden=hidden, optimizer="adam", lr=1e-3, epochs=1)
    state = None
    if optimizer:
        state = {
            "state": {
                i: {"step": torch.tensor(1.0), "exp_avg": fake(s), "exp_avg_sq": fake(s)}
                for i, s in enumerate(shapes.values())
            },
            "param_groups": [{"lr": 1e-3, "params": list(range(len(shapes)))}],
        }
    payload = {
        "format": checkpoint.FORMAT,
        "config": config.to_dict(),
        "vocab": vocab,
        "model_state": {k: fake(s) for k, s in shapes.items()},
        "optimizer_state": state,
        "history": [],
        "corpus_name": "crafted",
        "rng_state": None,
        "note": "",
        "best_epoch": None,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def math_prod(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _contiguous_strides(shape: tuple[int, ...], step: int = 1) -> tuple[int, ...]:
    strides, acc = [], step
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))
