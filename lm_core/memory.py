"""How much memory a run will take at its peak, estimated before anything is allocated, and the per-run budget.

`MAX_PARAMETERS` bounds a model's weights, but a run holds much more: the
gradients, the optimiser's state, a copy of the weights taken at each epoch's
start (the rollback point), and above all one minibatch's activations. Those
grow with batch × num_steps × (vocabulary + hidden units × gates): the output
layer alone keeps about four float copies of the (B·T) × V logits at once (the
logits, their log-softmax kept for the backward, and two gradient buffers), so
256 × 200 characters over an 8,000-character vocabulary is 1.6 GB per copy.

The estimate is a sum of terms, each a formula in the settings (see
`estimate_run_memory`); the coefficients were calibrated against the peak
resident memory of real runs, each in a fresh process
(`python -m lm_core bench-memory` prints estimate, measurement and their ratio;
the estimate must never fall more than a quarter below the measurement).

The budget: `RNN_LAB_RUN_MEMORY` (bytes, or a number with K/M/G/T, e.g. "3G"),
else `default_run_memory()`: one run per core must fit in the machine's memory
beside the web server, with the estimate's tolerance on top (the arithmetic is
in that function's docstring). `check_run_memory` refuses a run above it with a
message that names the setting to lower and the largest value of it that fits.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import ConfigError
from .messages import Message
from .models import parameter_count
from .sampling import minibatches_per_epoch

if TYPE_CHECKING:
    from .training import TrainConfig

log = logging.getLogger(__name__)

ENV = "RNN_LAB_RUN_MEMORY"
FLOAT = 4  # bytes of a float32

# -- calibrated coefficients (python -m lm_core bench-memory) -------------------------------------------------

# A worker with torch imported and warmed up (an optimiser built, one backward run) takes 303 MB before it reads
# a corpus; training adds some slack of the allocator's that no tensor accounts for.
PROCESS_BYTES = 350 * 2**20
# Per corpus character while training: the job's text and the preprocessed text (2 bytes a CJK character each, up
# to 4), the id list and its training slice (8-byte pointers), the id tensor of each pass (8). With a validation
# share, the n-gram baselines' numpy arrays while the run is set up add about half as much again.
CORPUS_BYTES_PER_CHAR = 32
BASELINE_BYTES_PER_CHAR = 16
# Float copies of the (B·T) × V logits alive at a step's peak: their log-softmax (kept for the backward) and the
# two gradients of the backward, or in the forward the logits, a contiguous copy and the log-softmax. Measured
# 3.0-3.1; the rest is margin.
OUTPUT_COPIES = 3.3
# Floats per character, per layer and hidden unit, that a step holds in each recurrence at its peak: the input
# projections, the saved activations and gates, and the gradients flowing back (measured 4.2 for the RNN,
# 11.6 for the GRU, 13 for the LSTM).
RECURRENT_FLOATS = {"rnn": 5, "gru": 13, "lstm": 15}
# ... of which each recurrence saves for its backward: what a kept graph holds per minibatch without detaching
# (RNN: H; GRU: two gates, the candidate, H and one more; LSTM: four gates, C and H) ...
SAVED_FLOATS = {"rnn": 1, "gru": 5, "lstm": 6}
# ... times this: the kept blocks sit among the backward's temporaries (measured 1.2-1.35 over their own bytes) ...
GRAPH_OVERHEAD = 1.4
# ... plus, per kept minibatch, this share of one (B·T) × V float block. glibc serves blocks up to the largest size
# it has freed (up to 32 MB) from its heap; each minibatch's kept blocks land in the holes its output layer left,
# and the next output layer no longer fits there, so the heap grows by about one output block per kept minibatch
# (measured 0.9: 10.4 MB per minibatch with blocks of 11.7 MB, all of 辛弃疾, the book's settings; it saturates
# within an epoch). Without detaching this, not the saved tensors, is the bulk of the graph's cost.
FRAGMENT_SHARE = 0.9
# Weight-sized copies through a step beside the weights and their gradients: the epoch's rollback copy and the
# transient gradient of the input matrix (gathered rows scatter into a dense one).
STEP_WEIGHT_COPIES = 2
ADAM_COPIES = 2  # Adam's first and second moments (SGD without momentum keeps none)
# Publishing the checkpoint after an epoch: a copy of the weights (and of Adam's moments) and its serialised
# bytes (measured 6 weight-sized copies with Adam, beside the weights, gradients and moments).
PUBLISH_COPIES = 2
# Float copies of a validation minibatch's (B·T) × V logits (no gradients): the logits, a contiguous copy and
# the log-softmax.
VALIDATION_COPIES = 3

# -- the budget ----------------------------------------------------------------------------------------------

SERVER_RESERVE = 4 * 2**30  # the web server itself (sessions, caches, corpora) and the operating system
ESTIMATE_TOLERANCE = 1.25  # a run may really take up to this factor more than estimated (see the benchmark)
MIN_DEFAULT_BUDGET = 1 * 2**30  # a small laptop still gets runs of the book's size (~0.5 GB)

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int | None:
    """Bytes from "3221225472", "3G", "3 GiB", "2.5g", "512M" (binary units); None if it is not a size."""
    match = _SIZE.match(text or "")
    if not match:
        return None
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    return int(value) if value >= 1 else None


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its container's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                raw = f.read().strip()
        except OSError:
            continue
        if raw.isdigit():
            total = min(total, int(raw))
    return total


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_run_memory(memory: int | None = None, slots: int | None = None) -> int:
    """The per-run budget when `RNN_LAB_RUN_MEMORY` is not set.

    One run trains per core (the job manager's default), each in its own worker. They must all fit beside the
    web server even when each takes `ESTIMATE_TOLERANCE` times its estimate:

        budget = (memory − SERVER_RESERVE) / (cores × ESTIMATE_TOLERANCE)

    On the lab's 2-core, 24 GiB machine: (24 − 4) GiB / (2 × 1.25) = 8 GiB per run; on a 4-core 8 GiB laptop:
    (8 − 4) / 5 = 0.8 GiB, raised to the 1 GiB floor (the book's runs take about half a gigabyte).
    """
    memory = machine_memory() if memory is None else memory
    slots = cores() if slots is None else slots
    budget = (memory - SERVER_RESERVE) / (slots * ESTIMATE_TOLERANCE)
    return max(MIN_DEFAULT_BUDGET, int(budget))


def run_memory_budget() -> int:
    """Bytes one run may take: `RNN_LAB_RUN_MEMORY` when it is a size, else `default_run_memory()`.

    An unreadable value is the operator's mistake, not a visitor's: it is logged and the default applies.
    """
    raw = os.environ.get(ENV, "").strip()
    if raw:
        size = parse_size(raw)
        if size is not None:
            return size
        log.warning("%s=%r is not a size (use bytes or e.g. 3G); using the default", ENV, raw)
    return default_run_memory()


def size_text(n: int) -> str:
    """A size rounded as a person says it, the same in every language: "1.6 GB", "350 MB", "12 GB".

    The sentences around it say "about" (`error.memory.*`): an estimate is not a measurement.
    """
    value, unit = (n / 2**30, "GB") if n >= 2**30 else (n / 2**20, "MB")
    number = f"{value:.1f}" if value < 10 else f"{value:,.0f}"
    return f"{number} {unit}"


# -- the estimate -------------------------------------------------------------------------------------------


def _family(model: str) -> str:
    return model.removeprefix("scratch-")


def _gates(model: str) -> int:
    return {"rnn": 1, "gru": 3, "lstm": 4}[_family(model)]


def kept_minibatches(config: TrainConfig, n_train: int) -> int:
    """How many minibatches' graphs training without detaching holds at once (1 when it detaches).

    The graph grows over a pass of adjacent sampling and is cut where the state is reset or carried into a
    new epoch: at most a pass, or `steps_per_epoch` minibatches when an epoch is shorter than a pass.
    """
    if config.detach or config.sampling != "adjacent":
        return 1
    per_pass = max(1, minibatches_per_epoch(n_train, config.batch_size, config.num_steps, "adjacent"))
    return min(per_pass, config.steps_per_epoch) if config.steps_per_epoch else per_pass


@dataclass(frozen=True)
class MemoryEstimate:
    """A run's estimated peak resident memory (bytes), term by term.

    A run's memory has three peaks that never coincide: a training step (activations), publishing the
    checkpoint after an epoch (weight copies), the validation pass (its logits). `total` adds what lives
    throughout to the largest of them; the budget is checked on it.
    """

    process: int  # the worker itself, torch loaded
    corpus: int  # the text and its ids (and the baselines' arrays while setting up)
    weights: int  # weights and gradients, Adam's moments, the best weights when validating: held throughout
    step_weights: int  # during a step: the epoch's rollback copy and the input matrix's transient gradient
    output: int  # one minibatch's output layer: ∝ batch × num_steps × vocabulary
    recurrent: int  # one minibatch's recurrences: ∝ batch × num_steps × hidden × gates × layers
    graph: int  # without detaching: the earlier minibatches' graphs, kept until the epoch ends
    publish: int  # the checkpoint written after each epoch: copies of the weights and optimiser state
    validation: int  # the validation pass's logits

    @property
    def step(self) -> int:
        return self.step_weights + self.output + self.recurrent + self.graph

    @property
    def total(self) -> int:
        return self.process + self.corpus + self.weights + max(self.step, self.publish, self.validation)

    def terms(self) -> dict[str, int]:
        """What the settings control, largest first: one minibatch's output layer, its recurrences, the kept
        graph, the weights (with every copy at their peak), the corpus, the validation pass."""
        named = {
            "output": self.output,
            "recurrent": self.recurrent,
            "graph": self.graph,
            "weights": self.weights + max(self.step_weights, self.publish),
            "corpus": self.corpus,
            "validation": self.validation,
        }
        return dict(sorted(named.items(), key=lambda kv: -kv[1]))

    @property
    def dominant(self) -> str:
        """The largest term: what to lower first."""
        return next(iter(self.terms()))


def estimate_run_memory(config: TrainConfig, vocab_size: int, n_chars: int) -> MemoryEstimate:
    """Peak resident bytes of a worker training `config` on a corpus of `n_chars` characters and `vocab_size`.

    Pure arithmetic on the settings: nothing is allocated, so it can run on a visitor's settings before
    anything else does. The coefficients above say what each term counts and how it was calibrated.
    """
    V, h, L, E = vocab_size, config.hidden, config.num_layers, config.embed
    chars = config.batch_size * config.num_steps  # characters of one minibatch
    family, gates = _family(config.model), _gates(config.model)
    weight_bytes = parameter_count(config.model, V, h, L, E) * FLOAT
    adam = ADAM_COPIES if config.optimizer == "adam" else 0
    validating = config.val_fraction > 0
    n_train = n_chars - int(n_chars * config.val_fraction)

    # Between layers: the dropout mask and the layer's input kept for its input projection; an embedding's rows.
    between = 2 * h * (L - 1) + 2 * E
    recurrent = chars * (RECURRENT_FLOATS[family] * h * L + between) * FLOAT
    kept = kept_minibatches(config, n_train)
    graph = 0
    if kept > 1:
        saved = chars * (SAVED_FLOATS[family] * h * L + between) + L * gates * h * h  # + the W_hh snapshots
        graph = int((kept - 1) * (saved * GRAPH_OVERHEAD + FRAGMENT_SHARE * chars * V) * FLOAT)
    val_rows = min(config.batch_size, (n_chars - n_train) // (config.num_steps + 1)) if validating else 0
    return MemoryEstimate(
        process=PROCESS_BYTES,
        corpus=(CORPUS_BYTES_PER_CHAR + (BASELINE_BYTES_PER_CHAR if validating else 0)) * n_chars,
        weights=weight_bytes * (2 + adam + (1 if validating else 0)),
        step_weights=weight_bytes * STEP_WEIGHT_COPIES,
        output=int(OUTPUT_COPIES * chars * V * FLOAT),
        recurrent=recurrent,
        graph=graph,
        publish=weight_bytes * PUBLISH_COPIES * (1 + adam),
        validation=VALIDATION_COPIES * val_rows * config.num_steps * V * FLOAT,
    )


# -- the check and its message ------------------------------------------------------------------------------


class RunMemoryError(ConfigError):
    """The run's estimated memory is above the per-run budget; the message says what to lower.

    `estimate` and `budget` (bytes) are kept for a page that wants to draw them; they survive pickling
    (an error may cross from a worker process), as `LabError` keeps an error's attributes.
    """

    estimate: MemoryEstimate | None = None
    budget: int = 0


Fits = Callable[[str, int], bool]  # whether the run (or a job's runs) fits with one whole-number setting changed


def _one_run_fits(config: TrainConfig, vocab_size: int, n_chars: int, budget: int) -> Fits:
    return lambda field, value: (
        estimate_run_memory(replace(config, **{field: value}), vocab_size, n_chars).total <= budget
    )


def _largest_fitting(field: str, low: int, high: int, fits: Fits) -> int | None:
    """The largest value of the whole-number `field` in [low, high] that fits (the estimate grows with it)."""
    if not fits(field, low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if fits(field, mid):
            low = mid
        else:
            high = mid - 1
    return low


def _advice(config: TrainConfig, estimate: MemoryEstimate, vocab_size: int, n_chars: int, fits: Fits) -> Message:
    """What to lower for the dominant term of `config`'s run, with the largest value of that setting that `fits`."""
    term, B, T = estimate.dominant, config.batch_size, config.num_steps
    if term in ("output", "recurrent", "validation"):
        b = _largest_fitting("batch_size", 1, B, fits)
        t = _largest_fitting("num_steps", 1, T, fits)
        if b is not None and t is not None:
            facts = {"batch": B, "steps": T, "max_batch": b, "max_steps": t}
            if term == "recurrent":
                return Message("error.memory.advice_recurrent", {**facts, "hidden": config.hidden})
            return Message("error.memory.advice_output", {**facts, "vocab": vocab_size})
    if term == "graph":
        kept = kept_minibatches(config, n_chars - int(n_chars * config.val_fraction))
        k = _largest_fitting("steps_per_epoch", 1, kept, fits)
        if k is not None:
            return Message("error.memory.advice_graph", {"kept": kept, "max_minibatches": k})
    if term == "weights":
        h = _largest_fitting("hidden", 1, config.hidden, fits)
        if h is not None:
            if config.optimizer == "adam":
                return Message("error.memory.advice_weights_adam", {"max_hidden": h, "vocab": vocab_size})
            return Message("error.memory.advice_weights", {"max_hidden": h, "vocab": vocab_size})
    if term == "corpus":
        return Message("error.memory.advice_corpus", {"chars": n_chars, "size": size_text(estimate.corpus)})
    return Message("error.memory.advice_any")


def check_run_memory(config: TrainConfig, vocab_size: int, n_chars: int, budget: float | None = None) -> MemoryEstimate:
    """The run's estimate, or a `RunMemoryError` when it is above `budget` (default: `run_memory_budget()`).

    Called where a run is created (`Trainer`), so every way in (a page, a worker, a lesson, the CLI)
    is checked before the model, the optimiser or a minibatch is allocated.
    """
    budget = run_memory_budget() if budget is None else budget
    estimate = estimate_run_memory(config, vocab_size, n_chars)
    if estimate.total > budget:
        error = RunMemoryError(
            "error.memory.run_too_big",
            need=size_text(estimate.total),
            budget=size_text(int(budget)),
            advice=_advice(
                config, estimate, vocab_size, n_chars, _one_run_fits(config, vocab_size, n_chars, int(budget))
            ),
        )
        error.estimate, error.budget = estimate, int(budget)
        raise error
    return estimate


def job_total(estimates: list[MemoryEstimate]) -> int:
    """Peak of one worker training several runs in lockstep (a comparison): each run's corpus and weights stay,
    the runs' steps, checkpoints and validations take turns, so only the largest of those counts."""
    if not estimates:
        return 0
    held = sum(e.corpus + e.weights for e in estimates)
    return estimates[0].process + held + max(max(e.step, e.publish, e.validation) for e in estimates)


def check_job_memory(estimates: list[MemoryEstimate], budget: float | None = None) -> int:
    """`job_total`, or a `RunMemoryError` when the runs of one job do not fit the budget together.

    Each run alone passed `check_run_memory` (the `Trainer` did it); this is for the job manager, whose
    worker process holds all of a comparison's runs.
    """
    budget = run_memory_budget() if budget is None else budget
    total = job_total(estimates)
    if total > budget:
        error = RunMemoryError(
            "error.memory.job_too_big", runs=len(estimates), need=size_text(total), budget=size_text(int(budget))
        )
        error.estimate, error.budget = max(estimates, key=lambda e: e.total), int(budget)
        raise error
    return total


def check_runs_memory(
    configs: Sequence[TrainConfig], vocab_size: int, n_chars: int, budget: float | None = None
) -> int:
    """Before any model is built: each run alone (`check_run_memory`), then all of them as the one worker that
    trains them in lockstep holds them (`job_total`); returns that total, or raises a `RunMemoryError`.

    Over the budget together, the message names the setting to lower and the largest value that fits, for the
    run whose step is the largest (e.g. the run that does not detach): a comparison's runs share their settings,
    so that value is tried in every run at once.
    """
    budget = run_memory_budget() if budget is None else budget
    estimates = [check_run_memory(config, vocab_size, n_chars, budget) for config in configs]
    total = job_total(estimates)
    if total <= budget:
        return total

    def fits(field: str, value: int) -> bool:
        changed = [estimate_run_memory(replace(c, **{field: value}), vocab_size, n_chars) for c in configs]
        return job_total(changed) <= budget

    largest = max(range(len(configs)), key=lambda i: estimates[i].step)
    error = RunMemoryError(
        "error.memory.runs_too_big",
        runs=len(configs),
        need=size_text(total),
        budget=size_text(int(budget)),
        advice=_advice(configs[largest], estimates[largest], vocab_size, n_chars, fits),
    )
    error.estimate, error.budget = estimates[largest], int(budget)
    raise error


def runs_memory_note(configs: Sequence[TrainConfig], vocab_size: int, n_chars: int) -> Message:
    """The settings form's sentence for runs trained together: what their worker needs against the budget."""
    need = job_total([estimate_run_memory(c, vocab_size, n_chars) for c in configs])
    return Message(
        "training_page.memory_note_runs",
        {"runs": len(configs), "need": size_text(need), "budget": size_text(run_memory_budget())},
    )


def memory_note(config: TrainConfig, vocab_size: int, n_chars: int) -> Message:
    """The settings form's sentence: what this run needs against what one run may use ("about X GB")."""
    need, budget = estimate_run_memory(config, vocab_size, n_chars).total, run_memory_budget()
    return Message("training_page.memory_note", {"need": size_text(need), "budget": size_text(budget)})


__all__ = [
    "ENV",
    "MemoryEstimate",
    "RunMemoryError",
    "check_job_memory",
    "check_run_memory",
    "check_runs_memory",
    "default_run_memory",
    "estimate_run_memory",
    "job_total",
    "kept_minibatches",
    "memory_note",
    "parse_size",
    "run_memory_budget",
    "runs_memory_note",
    "size_text",
]
