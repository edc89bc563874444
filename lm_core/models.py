"""Character language models with one interface.

Every model maps `(B, T)` character ids and a state to `(T*B, V)` logits
(time-major rows, matching the book's `flatten(Y.T)` labels) and a new state.
`State` is a tuple: `(H,)` for RNN/GRU, `(H, C)` for LSTM, each `(B, h)`.

* `scratch-*`: the book's equations with explicit parameters named as in the
  chapter (`W_xh, W_hh, b_h, ...`) and its initialisation N(0, 0.01), zero bias.
* `rnn`, `gru`, `lstm`: a `torch.nn.RNN/GRU/LSTM` over one-hot inputs plus an
  `nn.Linear` output layer: the book's concise model, so its `state_dict` is
  plain torch.nn. Optionally 2–3 layers with dropout between them and an
  `nn.Embedding` input (see `TorchRecurrentLM`); the defaults are the book's.
* Both RNNs take `nonlinearity="relu"` for the chapter's exercise "replace tanh
  with ReLU" (`nn.RNN(nonlinearity="relu")`); GRU and LSTM refuse it.

Speed without changing the maths: a one-hot row times a matrix is one row of
that matrix, so inputs are gathered (`F.embedding`) instead of multiplied; the
output layer runs once over all time steps; every recurrence runs in
`recurrences.py` with a hand-written backward pass. `step()` keeps each cell's
plain equations: `trace()` uses it to return the hidden state (and gates) at
every step for the UI, and the tests compare the fast path against it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from . import recurrences as rec
from .errors import ConfigError
from .limits import MAX_DROPOUT, MAX_EMBED, MAX_HIDDEN, MAX_LAYERS, MAX_PARAMETERS, MAX_VOCAB
from .messages import Listed

State = tuple[torch.Tensor, ...]

# The plain RNN's nonlinearity φ in H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h): the book's tanh, or ReLU (one of
# the chapter's exercises). GRU and LSTM keep their gates' sigmoid and tanh: there ReLU is no drop-in swap.
NONLINEARITIES = ("tanh", "relu")
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
RELU_KINDS = ("scratch-rnn", "rnn")

MODEL_KINDS = ("scratch-rnn", "scratch-gru", "scratch-lstm", "rnn", "gru", "lstm")
MODEL_LABELS = {
    "scratch-rnn": "RNN from scratch (book)",
    "scratch-gru": "GRU from scratch (book)",
    "scratch-lstm": "LSTM from scratch (book)",
    "rnn": "torch.nn.RNN",
    "gru": "torch.nn.GRU",
    "lstm": "torch.nn.LSTM",
}


def init_normal(shape: tuple[int, ...], gen: torch.Generator) -> nn.Parameter:
    """The book's `_one`: N(0, 0.01), drawn from a private generator.

    A private generator (not `torch.manual_seed`) keeps two jobs in two threads
    from disturbing each other's initial weights.
    """
    return nn.Parameter(torch.randn(shape, generator=gen) * 0.01)


def _zeros(n: int) -> nn.Parameter:
    return nn.Parameter(torch.zeros(n))


# Set by `tapped_input_rows`: where `input_rows` notes each gathered input row (see there).
_ROW_TAP: ContextVar[list[tuple[torch.Tensor, torch.Tensor]] | None] = ContextVar("input_row_tap", default=None)


def input_rows(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Rows of `W` (V, k) for ids `x` (B,), or `x @ W` for float one-hot rows `x` (B, V).

    The same product either way (a one-hot row times W is exactly a row of W);
    the float form lets autograd take gradients with respect to the one-hot
    input itself. Inside `tapped_input_rows` a gathered row becomes a leaf that
    requires grad, noted with its matrix: ∂f/∂x = W ∂f/∂(x W), so the caller gets
    the one-hot gradient of every step from one product later (the Gradients
    through time page's connectivity, without a (1, V) × (V, k) product per step).
    """
    if x.is_floating_point():
        return x @ W
    rows = W[x]
    tap = _ROW_TAP.get()
    if tap is not None:
        rows = rows.detach().requires_grad_()
        tap.append((W, rows))
    return rows


@contextmanager
def tapped_input_rows() -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """`(W, rows)` of every `input_rows(W, ids)` called inside, in call order (this thread or task only)."""
    tap: list[tuple[torch.Tensor, torch.Tensor]] = []
    token = _ROW_TAP.set(tap)
    try:
        yield tap
    finally:
        _ROW_TAP.reset(token)


def _output_layer(hs: torch.Tensor, weight_vh: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(T, B, h) hidden states -> (T*B, V) logits, with `weight_vh` of shape (V, h).

    Computed as (W Hᵀ)ᵀ: the same product as H Wᵀ, in the layout that CPU BLAS
    runs fastest for a vocabulary-sized output (about 1.5× on this machine).
    """
    flat = hs.reshape(-1, hs.shape[-1])
    return torch.addmm(bias.unsqueeze(1), weight_vh, flat.t()).t()


class CharModel(nn.Module):
    """Interface shared by every model; see the module docstring."""

    kind: ClassVar[str]
    n_state: ClassVar[int] = 1
    gate_names: ClassVar[tuple[str, ...]] = ()
    nonlinearity: str = "tanh"  # the plain RNNs may use "relu" instead; gated models' candidates are tanh

    def __init__(self, vocab_size: int, num_hiddens: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.num_hiddens = num_hiddens

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def begin_state(self, batch_size: int) -> State:
        p = next(self.parameters())
        return tuple(
            torch.zeros(batch_size, self.num_hiddens, device=p.device, dtype=p.dtype) for _ in range(self.n_state)
        )

    def forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    @torch.no_grad()
    def trace(self, X: torch.Tensor, state: State | None = None) -> dict[str, torch.Tensor]:
        """Hidden state `H` (and gates, and LSTM cell `C`) at every step, each (T, B, h)."""
        state = self.begin_state(X.shape[0]) if state is None else state
        steps: list[dict[str, torch.Tensor]] = []
        for t in range(X.shape[1]):
            values, state = self.step(X[:, t], state)
            steps.append(values)
        return {name: torch.stack([s[name] for s in steps]) for name in steps[0]}

    def step(self, x: torch.Tensor, state: State) -> tuple[dict[str, torch.Tensor], State]:
        """One time step on ids `x` (B,) or one-hot rows (B, V), returning named internals and the new state."""
        raise NotImplementedError

    def readout(self, H: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) from one step's hidden state (B, h): the output layer alone."""
        raise NotImplementedError


class ScratchRNN(CharModel):
    """H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h);  O_t = H_t W_hq + b_q, with φ the book's tanh or ReLU."""

    kind = "scratch-rnn"

    def __init__(self, vocab_size: int, num_hiddens: int, gen: torch.Generator, nonlinearity: str = "tanh") -> None:
        super().__init__(vocab_size, num_hiddens)
        self.nonlinearity = nonlinearity
        V, h = vocab_size, num_hiddens
        self.W_xh = init_normal((V, h), gen)
        self.W_hh = init_normal((h, h), gen)
        self.b_h = _zeros(h)
        self.W_hq = init_normal((h, V), gen)
        self.b_q = _zeros(V)

    def forward(self, X, state):
        xw = F.embedding(X.t(), self.W_xh)  # (T, B, h) == one-hot(X_t) @ W_xh
        hs = rec.ELMAN[self.nonlinearity].apply(xw, state[0], self.W_hh, self.b_h)
        return _output_layer(hs, self.W_hq.t(), self.b_q), (hs[-1],)

    def step(self, x, state):
        H = ACTIVATIONS[self.nonlinearity](input_rows(self.W_xh, x) + state[0] @ self.W_hh + self.b_h)
        return {"H": H}, (H,)

    def readout(self, H):
        return H @ self.W_hq + self.b_q


class ScratchGRU(CharModel):
    """The book's GRU: reset gate R, update gate Z, candidate from (R ⊙ H) W_hh."""

    kind = "scratch-gru"
    gate_names = ("Z", "R")

    def __init__(self, vocab_size: int, num_hiddens: int, gen: torch.Generator) -> None:
        super().__init__(vocab_size, num_hiddens)
        V, h = vocab_size, num_hiddens
        self.W_xz, self.W_hz, self.b_z = init_normal((V, h), gen), init_normal((h, h), gen), _zeros(h)
        self.W_xr, self.W_hr, self.b_r = init_normal((V, h), gen), init_normal((h, h), gen), _zeros(h)
        self.W_xh, self.W_hh, self.b_h = init_normal((V, h), gen), init_normal((h, h), gen), _zeros(h)
        self.W_hq, self.b_q = init_normal((h, V), gen), _zeros(V)

    def _cell(self, xz, xr, xh, H):
        Z = torch.sigmoid(xz + H @ self.W_hz + self.b_z)  # update gate
        R = torch.sigmoid(xr + H @ self.W_hr + self.b_r)  # reset gate
        H_tilde = torch.tanh(xh + (R * H) @ self.W_hh + self.b_h)  # candidate
        return Z * H + (1 - Z) * H_tilde, Z, R

    def forward(self, X, state):
        xzr = F.embedding(X.t(), torch.cat([self.W_xz, self.W_xr], 1))  # (T, B, 2h)
        xh = F.embedding(X.t(), self.W_xh)
        W_zr, b_zr = torch.cat([self.W_hz, self.W_hr], 1), torch.cat([self.b_z, self.b_r])
        hs = rec.GRUBook.apply(xzr, xh, state[0], W_zr, b_zr, self.W_hh, self.b_h)
        return _output_layer(hs, self.W_hq.t(), self.b_q), (hs[-1],)

    def step(self, x, state):
        H, Z, R = self._cell(input_rows(self.W_xz, x), input_rows(self.W_xr, x), input_rows(self.W_xh, x), state[0])
        return {"H": H, "Z": Z, "R": R}, (H,)

    def readout(self, H):
        return H @ self.W_hq + self.b_q


class ScratchLSTM(CharModel):
    """The book's LSTM: input I, forget F, output O gates and candidate cell C̃."""

    kind = "scratch-lstm"
    n_state = 2
    gate_names = ("I", "F", "O", "C")

    def __init__(self, vocab_size: int, num_hiddens: int, gen: torch.Generator) -> None:
        super().__init__(vocab_size, num_hiddens)
        V, h = vocab_size, num_hiddens
        self.W_xi, self.W_hi, self.b_i = init_normal((V, h), gen), init_normal((h, h), gen), _zeros(h)
        self.W_xf, self.W_hf, self.b_f = init_normal((V, h), gen), init_normal((h, h), gen), _zeros(h)
        self.W_xo, self.W_ho, self.b_o = init_normal((V, h), gen), init_normal((h, h), gen), _zeros(h)
        self.W_xc, self.W_hc, self.b_c = init_normal((V, h), gen), init_normal((h, h), gen), _zeros(h)
        self.W_hq, self.b_q = init_normal((h, V), gen), _zeros(V)

    def _cell(self, xi, xf, xo, xc, H, C):
        I = torch.sigmoid(xi + H @ self.W_hi + self.b_i)
        Fg = torch.sigmoid(xf + H @ self.W_hf + self.b_f)  # forget gate
        O = torch.sigmoid(xo + H @ self.W_ho + self.b_o)
        C_tilde = torch.tanh(xc + H @ self.W_hc + self.b_c)
        C = Fg * C + I * C_tilde
        return O * torch.tanh(C), C, I, Fg, O

    def forward(self, X, state):
        # gate order (i, f, c̃, o), as rec.LSTM expects
        W_x = torch.cat([self.W_xi, self.W_xf, self.W_xc, self.W_xo], 1)
        W_h = torch.cat([self.W_hi, self.W_hf, self.W_hc, self.W_ho], 1)
        b = torch.cat([self.b_i, self.b_f, self.b_c, self.b_o])
        hs, C = rec.LSTM.apply(F.embedding(X.t(), W_x) + b, state[0], state[1], W_h)
        return _output_layer(hs, self.W_hq.t(), self.b_q), (hs[-1], C)

    def step(self, x, state):
        rows = (input_rows(W, x) for W in (self.W_xi, self.W_xf, self.W_xo, self.W_xc))
        H, C, I, Fg, O = self._cell(*rows, *state)
        return {"H": H, "I": I, "F": Fg, "O": O, "C": C}, (H, C)

    def readout(self, H):
        return H @ self.W_hq + self.b_q


class TorchRecurrentLM(CharModel):
    """`torch.nn.RNN/GRU/LSTM` + `nn.Linear`: the book's concise model, optionally deeper.

    Defaults (`num_layers=1, dropout=0, embed=0`) are the book's model exactly:
    one layer over one-hot input, the same parameters in the same order, so
    checkpoints written before these options existed load and give identical
    outputs. `embed > 0` puts an `nn.Embedding(V, embed)` in front (the book's
    later chapters); `num_layers` 2–3 stacks layers with `dropout` on the
    outputs of every layer but the last, in training mode only, as torch.nn does.

    The layer's own parameters are used, so `reference_forward` (the plain
    torch.nn call) gives the same result as `forward`; `forward` gathers
    `weight_ih_l0` columns instead of multiplying by one-hot vectors and runs
    each layer through the hand-written recurrences (identical maths).

    State layout: per layer, `(H,)` or `(H, C)`, concatenated bottom to top, so
    a one-layer model keeps `(H,)` / `(H, C)`. `step()` and `trace()` report the
    **top** layer's H (and gates): the one the output layer reads.

    `nonlinearity="relu"` (RNN only) is `nn.RNN(nonlinearity="relu")`: the same
    parameters, so only the config says which one a checkpoint holds.
    """

    layer_cls: ClassVar[type[nn.RNNBase]]
    per_layer_state: ClassVar[int] = 1  # H, or for an LSTM H and C

    @property
    def n_state(self) -> int:  # type: ignore[override] -- per model: it grows with the layers
        return self.per_layer_state * self.num_layers

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int,
        gen: torch.Generator,
        num_layers: int = 1,
        dropout: float = 0.0,
        embed: int = 0,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__(vocab_size, num_hiddens)
        self.num_layers, self.dropout, self.embed = num_layers, float(dropout), embed
        self.nonlinearity = nonlinearity
        options = {"nonlinearity": nonlinearity} if self.layer_cls is nn.RNN else {}
        self.rnn = self.layer_cls(
            embed or vocab_size, num_hiddens, num_layers=num_layers, dropout=self.dropout, **options
        )
        self.dense = nn.Linear(num_hiddens, vocab_size)
        # torch.nn's default U(-1/√h, 1/√h), but drawn from our generator (thread-safe, seeded).
        bound = 1.0 / math.sqrt(num_hiddens)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)
        if embed:
            self.embedding = nn.Embedding(vocab_size, embed)  # registered last: the book's order stays
            with torch.no_grad():  # nn.Embedding's default N(0, 1), from our generator
                self.embedding.weight.copy_(torch.randn(self.embedding.weight.shape, generator=gen))
        # Dropout masks from a private generator too: the same seed gives the same run.
        self._dropout_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))

    def _w(self, name: str, layer: int) -> torch.Tensor:
        return getattr(self.rnn, f"{name}_l{layer}")

    def _inputs(self, X: torch.Tensor) -> torch.Tensor:
        """x_t W_ihᵀ + b_ih of the first layer for all steps, (T, B, gates*h)."""
        if self.embed:
            return F.linear(self.embedding(X.t()), self.rnn.weight_ih_l0, self.rnn.bias_ih_l0)
        return F.embedding(X.t(), self.rnn.weight_ih_l0.t()) + self.rnn.bias_ih_l0

    def _step_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """x_t W_ihᵀ + b_ih of the first layer for one step, from ids (B,) or one-hot rows (B, V)."""
        if self.embed:
            return F.linear(input_rows(self.embedding.weight, x), self.rnn.weight_ih_l0, self.rnn.bias_ih_l0)
        return input_rows(self.rnn.weight_ih_l0.t(), x) + self.rnn.bias_ih_l0

    def _drop(self, hs: torch.Tensor) -> torch.Tensor:
        """Inverted dropout between layers (training mode only), masks from the model's generator."""
        if not (self.training and self.dropout > 0):
            return hs
        keep = 1.0 - self.dropout
        mask = torch.bernoulli(torch.full(hs.shape, keep), generator=self._dropout_gen).to(hs.device, hs.dtype)
        return hs * mask / keep

    def _run_layer(self, layer: int, gi: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One layer over all steps: inputs (T, B, gates*h) -> outputs (T, B, h) and its last state."""
        raise NotImplementedError

    def _cell(self, layer: int, gi: torch.Tensor, *state: torch.Tensor) -> tuple[dict[str, torch.Tensor], State]:
        """One layer, one step: named internals and the layer's new state."""
        raise NotImplementedError

    def forward(self, X, state):
        s, new_state = self.per_layer_state, []
        hs = X
        for k in range(self.num_layers):
            if k == 0:
                gi = self._inputs(X)
            else:
                gi = F.linear(self._drop(hs), self._w("weight_ih", k), self._w("bias_ih", k))
            hs, last = self._run_layer(k, gi, state[k * s : (k + 1) * s])
            new_state.extend(last)
        return self._finish(hs), tuple(new_state)

    def step(self, x, state):
        s, new_state = self.per_layer_state, []
        values: dict[str, torch.Tensor] = {}
        for k in range(self.num_layers):
            if k == 0:
                gi = self._step_inputs(x)
            else:
                gi = F.linear(values["H"], self._w("weight_ih", k), self._w("bias_ih", k))
            values, last = self._cell(k, gi, *state[k * s : (k + 1) * s])
            new_state.extend(last)
        return values, tuple(new_state)

    def readout(self, H: torch.Tensor) -> torch.Tensor:
        return self.dense(H)

    def _finish(self, hs: torch.Tensor) -> torch.Tensor:
        return _output_layer(hs, self.dense.weight, self.dense.bias)

    def reference_forward(self, X: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The plain torch.nn path (one-hot or embedding into the layer): used to prove `forward` equal."""
        inputs = self.embedding(X.t()) if self.embed else F.one_hot(X.t(), self.vocab_size).float()
        s, L = self.per_layer_state, self.num_layers
        hx = tuple(torch.stack([state[k * s + j] for k in range(L)]) for j in range(s))
        out, hn = self.rnn(inputs, hx if s == 2 else hx[0])
        hn = hn if isinstance(hn, tuple) else (hn,)
        return self.dense(out.reshape(-1, self.num_hiddens)), tuple(hn[j][k] for k in range(L) for j in range(s))


class TorchRNN(TorchRecurrentLM):
    kind = "rnn"
    layer_cls = nn.RNN

    def _run_layer(self, layer, gi, state):
        recurrence = rec.ELMAN[self.nonlinearity]
        hs = recurrence.apply(gi, state[0], self._w("weight_hh", layer).t(), self._w("bias_hh", layer))
        return hs, (hs[-1],)

    def _cell(self, layer, gi, H):
        H = ACTIVATIONS[self.nonlinearity](gi + H @ self._w("weight_hh", layer).t() + self._w("bias_hh", layer))
        return {"H": H}, (H,)


class TorchGRU(TorchRecurrentLM):
    """PyTorch's GRU: the reset gate multiplies (H W_hn + b_hn), not H."""

    kind = "gru"
    layer_cls = nn.GRU
    gate_names = ("Z", "R")

    def _run_layer(self, layer, gi, state):
        hs = rec.GRUTorch.apply(gi, state[0], self._w("weight_hh", layer).t(), self._w("bias_hh", layer))
        return hs, (hs[-1],)

    def _cell(self, layer, gi, H):
        gh = H @ self._w("weight_hh", layer).t() + self._w("bias_hh", layer)
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        R = torch.sigmoid(i_r + h_r)
        Z = torch.sigmoid(i_z + h_z)
        N = torch.tanh(i_n + R * h_n)
        H = (1 - Z) * N + Z * H
        return {"H": H, "Z": Z, "R": R}, (H,)


class TorchLSTM(TorchRecurrentLM):
    kind = "lstm"
    layer_cls = nn.LSTM
    per_layer_state = 2
    gate_names = ("I", "F", "O", "C")

    def _run_layer(self, layer, gi, state):
        W_hh, b_hh = self._w("weight_hh", layer), self._w("bias_hh", layer)
        hs, C = rec.LSTM.apply(gi + b_hh, state[0], state[1], W_hh.t())
        return hs, (hs[-1], C)

    def _cell(self, layer, gi, H, C):
        g = gi + H @ self._w("weight_hh", layer).t() + self._w("bias_hh", layer)
        i, f, c, o = g.chunk(4, 1)
        I, Fg, O = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
        C = Fg * C + I * torch.tanh(c)
        H = O * torch.tanh(C)
        return {"H": H, "I": I, "F": Fg, "O": O, "C": C}, (H, C)


_CLASSES: dict[str, type[CharModel]] = {
    cls.kind: cls for cls in (ScratchRNN, ScratchGRU, ScratchLSTM, TorchRNN, TorchGRU, TorchLSTM)
}

_SCRATCH_GATES = {"scratch-rnn": ("h",), "scratch-gru": ("z", "r", "h"), "scratch-lstm": ("i", "f", "o", "c")}
_TORCH_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def expected_shapes(
    kind: str, vocab_size: int, num_hiddens: int, num_layers: int = 1, embed: int = 0
) -> dict[str, tuple[int, ...]]:
    """The `state_dict` shapes of a `kind` model, in parameter order, by arithmetic: nothing is allocated.

    Lets a checkpoint be checked against its declared model before building
    one (a crafted file could otherwise ask for gigabytes). A test compares it
    with every real model's `state_dict`.
    """
    V, h = vocab_size, num_hiddens
    if kind in _SCRATCH_GATES:
        shapes: dict[str, tuple[int, ...]] = {}
        for g in _SCRATCH_GATES[kind]:
            shapes |= {f"W_x{g}": (V, h), f"W_h{g}": (h, h), f"b_{g}": (h,)}
        return shapes | {"W_hq": (h, V), "b_q": (V,)}
    gh = _TORCH_GATES[kind] * h
    shapes = {}
    for k in range(num_layers):
        shapes |= {
            f"rnn.weight_ih_l{k}": (gh, (embed or V) if k == 0 else h),
            f"rnn.weight_hh_l{k}": (gh, h),
            f"rnn.bias_ih_l{k}": (gh,),
            f"rnn.bias_hh_l{k}": (gh,),
        }
    shapes |= {"dense.weight": (V, h), "dense.bias": (V,)}
    if embed:
        shapes["embedding.weight"] = (V, embed)
    return shapes


def parameter_count(kind: str, vocab_size: int, num_hiddens: int, num_layers: int = 1, embed: int = 0) -> int:
    """Number of weights of a `kind` model, without building it."""
    return sum(math.prod(s) for s in expected_shapes(kind, vocab_size, num_hiddens, num_layers, embed).values())


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_architecture(
    kind: str, num_layers: int = 1, dropout: float = 0.0, embed: int = 0, nonlinearity: str = "tanh"
) -> None:
    """Raise `ConfigError` for layers / dropout / embedding / nonlinearity settings the model cannot take.

    ReLU is refused for GRU and LSTM rather than ignored: a student comparing "ReLU" runs
    must not be shown a gated model that silently kept tanh.
    """
    if nonlinearity not in NONLINEARITIES:
        raise ConfigError("error.models.unknown_nonlinearity", value=nonlinearity, kinds=Listed(NONLINEARITIES))
    if nonlinearity != "tanh" and kind not in RELU_KINDS:
        raise ConfigError("error.models.relu_rnn_only")
    if not _whole(num_layers) or not 1 <= num_layers <= MAX_LAYERS:
        raise ConfigError(
            "error.models.layers",
            limit=MAX_LAYERS,
            value=num_layers,
        )
    if not _whole(embed) or not 0 <= embed <= MAX_EMBED:
        raise ConfigError(
            "error.models.embed",
            limit=MAX_EMBED,
            value=embed,
        )
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout <= MAX_DROPOUT:
        raise ConfigError(
            "error.models.dropout",
            limit=MAX_DROPOUT,
            value=dropout,
        )
    if kind.startswith("scratch-") and (num_layers != 1 or embed or dropout):
        raise ConfigError(
            "error.models.scratch_is_book",
        )
    if dropout > 0 and num_layers == 1:
        raise ConfigError(
            "error.models.dropout_one_layer",
        )


def check_size(
    kind: str,
    vocab_size: int,
    num_hiddens: int,
    num_layers: int = 1,
    dropout: float = 0.0,
    embed: int = 0,
    nonlinearity: str = "tanh",
) -> None:
    """Raise `ConfigError` unless the model is within the limits (checked before anything is allocated)."""
    if kind not in _CLASSES:
        raise ConfigError(
            "error.models.unknown_model",
            value=kind,
            kinds=Listed(MODEL_KINDS),
        )
    if isinstance(num_hiddens, bool) or not isinstance(num_hiddens, int) or not 1 <= num_hiddens <= MAX_HIDDEN:
        raise ConfigError(
            "error.models.hidden",
            limit=MAX_HIDDEN,
            value=num_hiddens,
        )
    if not 1 <= vocab_size <= MAX_VOCAB:
        raise ConfigError(
            "error.models.vocab_size",
            limit=MAX_VOCAB,
            value=vocab_size,
        )
    check_architecture(kind, num_layers, dropout, embed, nonlinearity)
    n = parameter_count(kind, vocab_size, num_hiddens, num_layers, embed)
    if n > MAX_PARAMETERS:
        raise ConfigError(
            "error.models.too_many_weights",
            n=n,
            limit=MAX_PARAMETERS,
        )


def build_model(
    kind: str,
    vocab_size: int,
    num_hiddens: int,
    seed: int = 0,
    num_layers: int = 1,
    dropout: float = 0.0,
    embed: int = 0,
    nonlinearity: str = "tanh",
) -> CharModel:
    """A freshly initialised model; the same `seed` gives the same weights.

    The size is checked first, so an absurd request fails before it allocates.
    Layers, dropout and embedding apply to the torch.nn kinds only; ReLU to the RNNs only.
    The nonlinearity changes no weight, so a tanh and a ReLU model of one seed start equal.
    """
    check_size(kind, vocab_size, num_hiddens, num_layers, dropout, embed, nonlinearity)
    gen = torch.Generator().manual_seed(seed)
    options = {"nonlinearity": nonlinearity} if kind in RELU_KINDS else {}
    if kind in _SCRATCH_GATES:
        return _CLASSES[kind](vocab_size, num_hiddens, gen, **options)
    return _CLASSES[kind](vocab_size, num_hiddens, gen, num_layers, dropout, embed, **options)


def detach_state(state: State) -> State:
    return tuple(s.detach() for s in state)
