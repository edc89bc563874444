"""Training as a stream of events, with the book's state handling.

`Trainer.train()` yields a `StepEvent` per minibatch (gradient norm before
clipping), an `EpochEvent` per epoch (perplexity, time, gradient statistics)
and one `EndEvent` (finished / stopped / diverged). The CLI prints them, the
app's job manager stores them, the tests read them: nobody prints from here.

Hidden state follows the book: random sampling starts every minibatch from
zeros; adjacent sampling starts each epoch from zeros and carries the state
across minibatches, detached from the graph. `detach=False` is the chapter's
exercise of not detaching it (see `forward_keeping_graph`). A `Control` lets
another thread pause, resume, step one epoch or stop between minibatches.

A `Trainer` checks its run's estimated peak memory (`memory.py`) before it
builds anything; each `EpochEvent` carries the process's measured peak.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F

from . import memory, rss
from .baselines import Baselines, ngram_baselines
from .corpus import Corpus
from .device import DEVICE
from .errors import ConfigError, CorpusError
from .limits import MAX_HIDDEN
from .messages import N_, Listed
from .models import MODEL_KINDS, NONLINEARITIES, CharModel, State, build_model, check_architecture, detach_state
from .sampling import MODES, adjacent_batches, batches, check_enough, minibatches_per_epoch

OPTIMIZERS = ("sgd", "adam")
# A mean loss above this makes exp(loss) overflow a float: no perplexity can be reported, so the
# run has diverged even if the loss is still finite (unclipped SGD at lr 100 gets there in a few steps).
MAX_LOSS = 700.0


@dataclass(frozen=True)
class Bound:
    """The range one numeric setting must lie in, with the sentence a user sees when it does not.

    The ends are inclusive unless `*_open`; `optional` lets None through (clipping off).
    NaN and ±inf are always refused, so a corrupted URL or checkpoint cannot slip past.
    """

    field: str
    low: float
    high: float
    key: str  # the catalogue key of the sentence
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)  # what fills the sentence's placeholders

    def accepts(self, value: float | None) -> bool:
        if value is None:
            return self.optional
        try:
            if not math.isfinite(value):
                return False
        except OverflowError:  # an int too long for a float is beyond every bound
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


# Checked in this order, so the first bad setting is the one reported. Each message names its bounds
# in words (lm_core/locales): the numbers here and in the catalogue's sentences must change together.
BOUNDS = (
    Bound("hidden", 1, MAX_HIDDEN, N_("error.training.hidden"), params={"limit": MAX_HIDDEN}),
    Bound("num_steps", 1, 1000, N_("error.training.num_steps")),
    Bound("batch_size", 1, 1024, N_("error.training.batch_size")),
    Bound("lr", 0, 1e4, N_("error.training.lr"), low_open=True),
    Bound("clip", 0, math.inf, N_("error.training.clip"), low_open=True, optional=True),
    Bound("epochs", 1, 100_000, N_("error.training.epochs")),
    Bound("seed", 0, 2**31, N_("error.training.seed"), high_open=True),
    Bound("val_fraction", 0, 0.5, N_("error.training.val_fraction"), high_open=True),
    Bound("steps_per_epoch", 0, 1_000_000, N_("error.training.steps_per_epoch")),
    Bound("patience", 0, 100_000, N_("error.training.patience")),
)
# (field, allowed values, the message's key); the message names the value given.
CHOICES = (
    ("model", MODEL_KINDS, N_("error.models.unknown_model")),
    ("sampling", MODES, N_("error.training.unknown_sampling")),
    ("optimizer", OPTIMIZERS, N_("error.training.unknown_optimizer")),
    ("nonlinearity", NONLINEARITIES, N_("error.models.unknown_nonlinearity")),
)
WHOLE_NUMBERS = ("hidden", "num_steps", "batch_size", "epochs", "seed", "steps_per_epoch", "patience")
NUMBERS = ("lr", "clip", "val_fraction", "dropout")  # None passes this check; BOUNDS decides whether None is allowed
FLAGS = ("detach",)  # True or False, nothing that merely compares equal to them (1, 0.0)


@dataclass
class TrainConfig:
    """Every setting of a run; shown on the page, stored in checkpoints and URLs."""

    model: str = "scratch-rnn"  # one of MODEL_KINDS
    sampling: str = "random"  # "random" or "adjacent"
    hidden: int = 256  # hidden units h
    num_steps: int = 35  # T, characters per row of a minibatch
    batch_size: int = 32  # B, rows per minibatch
    lr: float = 100.0  # the book uses SGD lr 100 for its scratch models
    optimizer: str = "sgd"  # "sgd" (the book's) or "adam" (its concise chapters)
    clip: float | None = 0.01  # θ for global-norm clipping; None turns clipping off
    epochs: int = 250  # planned epochs
    seed: int = 0  # initial weights and minibatch shuffles
    val_fraction: float = 0.0  # held-out tail for validation perplexity (0: none, as the book)
    # Added after the first checkpoints; each default reproduces the earlier behaviour exactly, so a
    # checkpoint without these keys loads as what it was.
    num_layers: int = 1  # stacked torch.nn layers (1-3)
    dropout: float = 0.0  # between layers, training only; needs num_layers >= 2
    embed: int = 0  # 0: one-hot input (the book); else an nn.Embedding of this size
    steps_per_epoch: int = 0  # 0: an epoch is a full pass (the book); else this many minibatches
    patience: int = 0  # stop after this many epochs without a better validation perplexity (0: off)
    nonlinearity: str = "tanh"  # the RNNs' φ: the book's tanh, or relu (an exercise); GRU/LSTM refuse relu
    detach: bool = True  # adjacent sampling: cut the carried state's graph between minibatches (the book)

    def validate(self) -> None:
        """Raise `ConfigError` with a user-facing message for the first bad value.

        Order: a known model / sampling / optimiser, then the type of each number, then `BOUNDS`,
        then the settings that depend on each other.
        """
        for name, allowed, key in CHOICES:
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(key, value=value, kinds=Listed(allowed))
        for name in WHOLE_NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):  # 16.5 hidden units, 2.5 epochs: no
                raise ConfigError("error.training.not_whole", name=name, value=value)
        for name in FLAGS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError("error.training.not_flag", name=name, value=value)
        for name in NUMBERS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ConfigError("error.training.not_number", name=name, value=value)
        for bound in BOUNDS:
            if not bound.accepts(getattr(self, bound.field)):
                raise ConfigError(bound.key, **bound.params)
        if not (self.patience == 0 or self.val_fraction > 0):
            raise ConfigError(
                "error.training.patience_needs_val",
            )
        if not self.detach and self.sampling != "adjacent":
            raise ConfigError("error.training.detach_needs_adjacent")
        check_architecture(self.model, self.num_layers, self.dropout, self.embed, self.nonlinearity)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (older or newer checkpoints)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def book_config(model: str = "scratch-rnn", sampling: str | None = None, **overrides: Any) -> TrainConfig:
    """The chapter's settings for `model`.

    Scratch models: SGD lr 100; `torch.nn` models: Adam, lr 1e-3 (RNN) or 1e-2
    (GRU/LSTM), adjacent sampling. RNN chapters train 250 epochs, GRU/LSTM 160.
    """
    scratch = model.startswith("scratch-")
    cfg = TrainConfig(
        model=model,
        sampling=sampling or ("random" if scratch else "adjacent"),
        optimizer="sgd" if scratch else "adam",
        lr=100.0 if scratch else (1e-3 if model == "rnn" else 1e-2),
        epochs=250 if model.endswith("rnn") else 160,
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def build_config_model(config: TrainConfig, vocab_size: int) -> CharModel:
    """The model `config` describes, freshly initialised from its seed."""
    return build_model(
        config.model,
        vocab_size,
        config.hidden,
        config.seed,
        config.num_layers,
        config.dropout,
        config.embed,
        config.nonlinearity,
    )


@dataclass
class StepEvent:
    epoch: int
    step: int  # 1-based within the epoch
    loss: float
    grad_norm: float  # global L2 norm before clipping
    clipped: bool


@dataclass
class EpochEvent:
    epoch: int
    perplexity: float
    seconds: float
    tokens_per_s: float
    grad_norm_mean: float
    grad_norm_max: float
    clipped_fraction: float
    steps: int
    val_perplexity: float | None = None
    best_epoch: int | None = None  # the epoch with the lowest validation perplexity so far
    # The process's peak resident bytes during this epoch (see `rss`); None where it cannot be measured.
    # In a worker process (one job) that is the run's memory, the number the run-memory estimate predicts.
    peak_rss: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EndEvent:
    status: str  # "finished" | "stopped" | "diverged"
    message: str
    epoch: int  # epochs completed (for "diverged": the epoch that failed is epoch + 1)
    step: int = 0  # step of the failing or interrupted epoch
    loss: float | None = None  # the loss that diverged
    best_epoch: int | None = None  # whose weights `Trainer.best_state` holds (validation on)
    early_stop: bool = False  # "finished" by patience before the planned epochs: the best weights are the run's


Event = StepEvent | EpochEvent | EndEvent


@dataclass(frozen=True)
class StreamPoint:
    """Where a run's minibatch stream stood at the end of its last completed epoch: what exact resume needs.

    With `steps_per_epoch` > 0 an epoch is a slice of a longer pass, and the next epoch continues that pass
    (its shuffle, its position) and, for adjacent sampling, the state carried out of its last minibatch.
    The sampler's RNG alone (all older checkpoints keep) cannot say that: it has already drawn the pass's
    shuffle, so a run resumed from it started a new pass and its curve left the uninterrupted one.
    Taken at the end of each epoch, the point a published checkpoint's weights are from (Stop rolls back there).
    """

    pass_rng: tuple  # the sampler RNG's state just before the current pass drew its shuffle
    taken: int  # minibatches of that pass trained on so far
    carried: State | None  # adjacent sampling: the state carried into the next minibatch (detached, on the CPU)


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU copy owning its storage: a checkpoint refuses tensors that are views of more."""
    return tensor.detach().cpu().clone(memory_format=torch.contiguous_format)


class Control:
    """Pause / resume / one-epoch step / stop, safe to call from any thread."""

    def __init__(self) -> None:
        # Called around a pause, so a job manager can lend its CPU slot to a queued job.
        self.on_block: Callable[[], None] | None = None
        self.on_unblock: Callable[[], None] | None = None
        self._go = threading.Event()
        self._go.set()
        self._stop = threading.Event()
        self._pause_after_epoch = False
        # Seconds spent blocked in wait(): epoch timings subtract it, so a pause does not
        # count as training time (time-left and characters/s would lie after Resume or Step).
        self.blocked_seconds = 0.0
        self.clock: Callable[[], float] = time.perf_counter

    def pause(self) -> None:
        self._go.clear()

    @property
    def stepping(self) -> bool:
        """Step was pressed: the run pauses at the end of this epoch."""
        return self._pause_after_epoch

    def press(self, stepping: bool, paused: bool, stopped: bool) -> None:
        """Press what was pressed elsewhere (another control's state), in an order that reproduces it."""
        if stepping:
            self.step_epoch()
        if paused:
            self.pause()
        if stopped:
            self.stop()

    def adopt(self, other: Control) -> None:
        """Take over what was pressed on `other` (the control a queued job had, before its worker's)."""
        self.press(other.stepping, other.paused, other.stopped)

    def resume(self) -> None:
        self._pause_after_epoch = False
        self._go.set()

    def step_epoch(self) -> None:
        """Run until the end of the next epoch, then pause."""
        self._pause_after_epoch = True
        self._go.set()

    def stop(self) -> None:
        self._stop.set()
        self._go.set()

    @property
    def paused(self) -> bool:
        return not self._go.is_set() and not self._stop.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait(self) -> bool:
        """Block while paused; return False when the run should stop."""
        if not self._go.is_set():
            blocked_from = self.clock()
            if self.on_block:
                self.on_block()
            while not self._go.wait(timeout=0.1):
                pass
            self.blocked_seconds += self.clock() - blocked_from
            if self.on_unblock and not self._stop.is_set():
                self.on_unblock()
        return not self._stop.is_set()

    def epoch_done(self) -> None:
        if self._pause_after_epoch:
            self._pause_after_epoch = False
            self._go.clear()


def make_optimizer(model: CharModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":  # p -= lr * grad, the book's d2l.sgd with batch_size 1
        return torch.optim.SGD(model.parameters(), lr=cfg.lr)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr)


def clip_gradients(params: list[torch.Tensor], theta: float | None) -> tuple[float, bool]:
    """Global L2 norm of all gradients; scale them by θ/‖g‖ when it exceeds θ.

    A plain loop over public `Tensor.mul_`, not `torch.nn.utils.clip_grad_norm_` (nor
    `clip_grads_with_norm_`): those scale by θ/(‖g‖ + 1e-6) and multiply even unclipped
    gradients, which is not the book's rule. A model has only a handful of weight tensors,
    so the private `torch._foreach_mul_` this replaces bought nothing measurable.
    """
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()
    if theta is not None and norm > theta:
        scale = theta / norm
        for g in grads:
            g.mul_(scale)
        return norm, True
    return norm, False


def forward_keeping_graph(model: CharModel, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    """`model(X, state)` for training without detaching the carried state (a chapter exercise).

    The book detaches the state before every minibatch of adjacent sampling. Without that, minibatch i's
    loss depends on every earlier minibatch of the epoch, and its backward must run through all of them.
    Two things stop the naive version in PyTorch: each backward frees the graph it ran through (so the next
    one fails), and the optimiser changes the weights in place after each minibatch, while the old graph
    pieces saved those very tensors (the recurrences save W_hh) to compute their backward.

    So each minibatch runs on a *snapshot* of the parameters, `p.clone()`: the clone is differentiable
    (its backward passes the gradient to `p` itself) but never changes afterwards, so every old piece
    keeps the weights it really used, and `backward(retain_graph=True)` keeps the pieces for the next
    minibatch's backward. The gradient of loss i is then Σ_j ∂ℓ_i/∂θ_j over the weights θ_j used by
    minibatches j ≤ i, each Jacobian taken where it was computed: full backpropagation through the epoch
    so far, the weights counted as one parameter. (Re-running the epoch with the current weights would
    change the forward pass itself, and cost a whole epoch per minibatch.)

    Costs: a minibatch's backward grows with its position in the epoch (the epoch's backward time grows
    with the square of its minibatches), and the recurrences' saved activations and the recurrent-weight
    snapshots of every minibatch stay in memory until the epoch ends (`memory.estimate_run_memory` counts them).
    Each minibatch's output layer and loss are freed after its own backward; only the recurrent chain is kept.
    """
    snapshot = {name: p.clone() for name, p in model.named_parameters()}
    return torch.func.functional_call(model, snapshot, (X, state))


@torch.no_grad()
def evaluate_perplexity(model: CharModel, ids: list[int], num_steps: int, batch_size: int) -> float | None:
    """Perplexity on `ids`, read in adjacent order with the state carried.

    The batch shrinks so that short held-out tails still give a minibatch.
    """
    batch_size = min(batch_size, len(ids) // (num_steps + 1))
    if batch_size < 1:
        return None
    state = model.begin_state(batch_size)
    total, n = 0.0, 0
    for X, Y in adjacent_batches(ids, batch_size, num_steps, model.device):
        logits, state = model(X, state)
        y = Y.t().reshape(-1)
        total += F.cross_entropy(logits, y, reduction="sum").item()
        del logits  # before the next minibatch's logits exist: one (B·T) × V array less at the peak
        n += y.numel()
    if not n:
        return None
    return math.exp(total / n) if total / n <= MAX_LOSS else math.inf


def check_validation(n_val: int, batch_size: int, num_steps: int) -> None:
    """Raise a `CorpusError` when the validation tail cannot fill one minibatch (B rows of T+1)."""
    need = batch_size * (num_steps + 1)
    if n_val < need:
        raise CorpusError(
            "error.training.val_too_small",
            n_val=n_val,
            batch_size=batch_size,
            row=num_steps + 1,
            need=need,
        )


class Trainer:
    """One model, its optimiser, its data stream and its history."""

    def __init__(
        self,
        corpus: Corpus,
        config: TrainConfig,
        model: CharModel | None = None,
        device: torch.device = DEVICE,
        memory_budget: float | None = None,
    ) -> None:
        """Check every setting, the corpus against them, and the run's estimated memory, then build the model.

        `memory_budget`: bytes the run may take (None: `RNN_LAB_RUN_MEMORY` or the machine's default;
        `math.inf`: no check, for the operator's `--force`). Checked before anything big is allocated.
        """
        config.validate()
        self.corpus = corpus
        self.config = config
        self.train_ids, self.val_ids = corpus.split(config.val_fraction)
        check_enough(len(self.train_ids), config.batch_size, config.num_steps, config.sampling)
        if config.val_fraction > 0:
            check_validation(len(self.val_ids), config.batch_size, config.num_steps)
        self.memory = memory.estimate_run_memory(config, corpus.vocab_size, len(corpus))
        if memory_budget != math.inf:
            memory.check_run_memory(config, corpus.vocab_size, len(corpus), memory_budget)
        self.model = model or build_config_model(config, corpus.vocab_size)
        self.model.to(device)
        self.optimizer = make_optimizer(self.model, config)
        self.rng = random.Random(config.seed)
        self.history: list[EpochEvent] = []
        self.control = Control()
        self.status = "ready"  # ready | running | finished | stopped | diverged
        self.message = ""
        # Counting models on this very split: the "learned something" lines of the chart.
        self.baselines: Baselines | None = None
        if len(self.val_ids) >= 2:
            self.baselines = ngram_baselines(self.train_ids, self.val_ids, corpus.vocab_size)
        # Best-by-validation weights (on the CPU) and their epoch; None until a validated epoch.
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch: int | None = None
        self.best_val: float = math.inf
        # With steps_per_epoch > 0 an epoch is a slice of a longer pass: the pass and (adjacent
        # sampling) its carried state continue into the next epoch.
        self._stream: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._carried: State | None = None
        self._pass_rng: tuple = self.rng.getstate()  # before the current pass's shuffle
        self._taken = 0  # minibatches drawn from the current pass
        # What a checkpoint saves to resume the pass exactly (None: no epoch of k minibatches done yet).
        self.stream_point: StreamPoint | None = None

    @property
    def epoch(self) -> int:
        return len(self.history)

    def _set_lr(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr

    def run_epoch(self) -> Iterator[StepEvent | EpochEvent | EndEvent]:
        """One epoch; ends with an EpochEvent, or an EndEvent if stopped or diverged."""
        cfg, model = self.config, self.model
        measured = rss.reset_peak_rss()
        self._set_lr()
        params = list(model.parameters())
        epoch = self.epoch + 1
        good = {k: v.detach().clone() for k, v in model.state_dict().items()}
        clock = self.control.clock
        start, blocked_before = clock(), self.control.blocked_seconds
        state = model.begin_state(cfg.batch_size)
        loss_sum, n, norms, n_clipped = 0.0, 0, [], 0
        model.train()
        if cfg.steps_per_epoch:
            stream = self._continuing(cfg.steps_per_epoch)
            state = self._carried or model.begin_state(cfg.batch_size)
        else:  # the book: one full pass, the state starting from zeros
            stream = batches(cfg.sampling, self.train_ids, cfg.batch_size, cfg.num_steps, self.rng, model.device)
            state = model.begin_state(cfg.batch_size)
        for step, (X, Y) in enumerate(stream, start=1):
            if X is None:  # a new pass began: adjacent sampling resets its state there, as at a book epoch
                state = model.begin_state(cfg.batch_size)
                X, Y = Y

            if not self.control.wait():
                model.load_state_dict(good)
                yield self._end(
                    "stopped", f"Stopped during epoch {epoch}; kept the model after epoch {epoch - 1}.", step
                )
                return
            if cfg.sampling == "random":
                state = model.begin_state(cfg.batch_size)
            elif cfg.detach:
                state = detach_state(state)
            if cfg.detach:
                logits, state = model(X, state)
            else:
                logits, state = forward_keeping_graph(model, X, state)
            y = Y.t().reshape(-1)  # time-major, like the logits
            loss = F.cross_entropy(logits, y)
            # The loss keeps what its backward needs (the log-softmax); the logits themselves would be one more
            # (B·T) × V copy through the backward, the largest array of a big-vocabulary run.
            del logits
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward(retain_graph=not cfg.detach)
            loss_value = loss.item()
            del loss  # without detaching, its graph (this minibatch's output layer) would live on otherwise
            norm, clipped = clip_gradients(params, cfg.clip)
            if not (math.isfinite(loss_value) and math.isfinite(norm) and loss_value <= MAX_LOSS):
                model.load_state_dict(good)
                msg = f"Diverged at epoch {epoch}, step {step}: the loss became {loss_value:g}. "
                msg += "The model was rolled back to the end of the previous epoch."
                yield self._end("diverged", msg, step, loss_value)
                return
            self.optimizer.step()
            loss_sum += loss_value * y.numel()
            n += y.numel()
            norms.append(norm)
            n_clipped += clipped
            yield StepEvent(epoch, step, loss_value, norm, clipped)
        seconds = clock() - start - (self.control.blocked_seconds - blocked_before)  # training time only
        self._carried = detach_state(state) if cfg.sampling == "adjacent" else None
        if cfg.steps_per_epoch:
            carried = None if self._carried is None else tuple(_cpu_copy(s) for s in self._carried)
            self.stream_point = StreamPoint(self._pass_rng, self._taken, carried)
        # The epoch is done: the rollback copy and (without detaching) the state's graph of the whole epoch are
        # not needed any more, and this generator stays suspended while the caller publishes a checkpoint.
        state = good = None
        val = None
        if self.val_ids:
            model.eval()  # no dropout while measuring
            val = evaluate_perplexity(model, self.val_ids, cfg.num_steps, cfg.batch_size)
            model.train()
            if val is not None and val < self.best_val:
                self.best_val, self.best_epoch = val, epoch
                self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        event = EpochEvent(
            epoch=epoch,
            perplexity=math.exp(loss_sum / n),
            seconds=seconds,
            tokens_per_s=n / seconds if seconds > 0 else 0.0,
            grad_norm_mean=sum(norms) / len(norms),
            grad_norm_max=max(norms),
            clipped_fraction=n_clipped / len(norms),
            steps=len(norms),
            val_perplexity=val,
            best_epoch=self.best_epoch,
            peak_rss=rss.peak_rss() if measured else None,
        )
        self.history.append(event)
        yield event

    def _continuing(self, n: int) -> Iterator[tuple[Any, Any]]:
        """`n` minibatches, continuing the current pass and starting a new one when it runs out.

        A batch that opens a new pass comes as `(None, (X, Y))` so the caller resets
        the adjacent state there; random sampling reshuffles its windows (from `self.rng`).
        """
        cfg = self.config
        for _ in range(n):
            batch = next(self._stream, None) if self._stream is not None else None
            if batch is None:
                self._pass_rng, self._taken = self.rng.getstate(), 0
                self._stream = batches(
                    cfg.sampling, self.train_ids, cfg.batch_size, cfg.num_steps, self.rng, self.model.device
                )
                self._taken += 1
                yield None, next(self._stream)  # check_enough guarantees one minibatch per pass
            else:
                self._taken += 1
                yield batch

    def continue_stream(self, point: StreamPoint) -> bool:
        """Carry on from `point` (a checkpoint's): the same pass, shuffled alike, from its next minibatch.

        Redraws the pass's shuffle from `point.pass_rng` (leaving `self.rng` exactly where the uninterrupted
        run's is) and restores the carried state. Returns False, changing nothing, when the point does not
        fit this run (another pass length or state shape): the run then starts a new pass, as before points.
        """
        cfg, model = self.config, self.model
        per_pass = minibatches_per_epoch(len(self.train_ids), cfg.batch_size, cfg.num_steps, cfg.sampling)
        if not (cfg.steps_per_epoch and 0 < point.taken <= per_pass):
            return False
        carried = None
        if cfg.sampling == "adjacent":
            fresh = model.begin_state(cfg.batch_size)
            if point.carried is None or [s.shape for s in point.carried] != [s.shape for s in fresh]:
                return False
            carried = tuple(s.to(f.device, f.dtype, copy=True) for s, f in zip(point.carried, fresh, strict=True))
        try:
            random.Random().setstate(point.pass_rng)  # tried on a spare first: a bad state changes nothing
        except (TypeError, ValueError):
            return False
        self.rng.setstate(point.pass_rng)
        ids, device = self.train_ids, model.device
        self._stream = batches(cfg.sampling, ids, cfg.batch_size, cfg.num_steps, self.rng, device, point.taken)
        self._pass_rng, self._taken, self._carried = point.pass_rng, point.taken, carried
        self.stream_point = point
        return True

    def _end(self, status: str, message: str, step: int = 0, loss: float | None = None) -> EndEvent:
        self.status, self.message = status, message
        if self.best_epoch is not None:
            message += f" Best validation perplexity {self.best_val:.2f} at epoch {self.best_epoch}."
            self.message = message
        return EndEvent(status, message, self.epoch, step, loss, self.best_epoch)

    def patience_ran_out(self) -> bool:
        """True when early stopping is on and the last `patience` epochs brought no better validation.

        `train()` stops on it; a caller driving `run_epoch()` itself (the job manager) can ask the same.
        """
        p = self.config.patience
        return p > 0 and self.best_epoch is not None and self.epoch - self.best_epoch >= p

    def stop_early(self) -> EndEvent:
        """End the run because its patience ran out (the one way early stopping is said, and flagged)."""
        p, best = self.config.patience, self.best_epoch
        self.status = "finished"
        self.message = (
            f"Stopped early: no better validation perplexity for {p} epochs; best from epoch {best} "
            f"(perplexity {self.best_val:.2f}), whose weights are kept."
        )
        return EndEvent("finished", self.message, self.epoch, best_epoch=best, early_stop=True)

    def train(self) -> Iterator[Event]:
        """Epochs until `config.epochs` are done, the run is stopped, or it diverges."""
        self.status = "running"
        while self.epoch < self.config.epochs:
            for event in self.run_epoch():
                yield event
                if isinstance(event, EndEvent):
                    return
            self.control.epoch_done()
            if self.patience_ran_out():
                yield self.stop_early()
                return
        yield self._end("finished", f"Finished {self.epoch} epochs.")
