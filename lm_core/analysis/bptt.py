"""Gradients through time: why a recurrent network explodes or forgets, measured on a real model.

Backpropagation through time multiplies one Jacobian per step: for the
book's RNN, ∂H_t/∂H_{t−1} = diag(1 − H_t²) W_hhᵀ, so the gradient that reaches a
character k steps back is a product of k such matrices and shrinks or grows
roughly like ρ(W_hh)^k. Everything here measures that on any `CharModel`:

* `connectivity`: ‖∂ log p(x_{t+1} | x_≤t) / ∂x_s‖ for every earlier one-hot input x_s;
* `gradient_by_distance`: ‖∂ℓ_t / ∂H_{t−k}‖ for k = 0 … num_steps over a minibatch;
* `set_spectral_radius` and `minibatch_gradient`: the ρ experiment and clipping;
* `surprisal`: −log₂ p(character | what came before) and the text's perplexity;
* `step_view`: one forward step split into the terms of the book's equations;
* `units_on_span` and `find_unit_pattern`: which units mark a span, and where else they fire.

The models' fast forward uses hand-written backward passes that only return
gradients for the weights and the initial state, so the per-step gradients here
run the models' plain `step()` under autograd (the tests check both agree).
No Streamlit here: the page calls these functions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, VocabularyError
from ..limits import MAX_GRADIENT_TEXT
from ..messages import Listed
from ..models import ACTIVATIONS, CharModel, tapped_input_rows
from ..sampling import random_batches
from ..training import clip_gradients
from ..vocab import Chars, unknown_chars

WORK_BUDGET = 2.5e9  # multiply-adds one figure may spend (under a second at one torch thread, see bench-bptt)
MAX_SEARCH_CHARS = 30_000  # corpus characters scanned for a unit pattern


class DivergedModelError(ConfigError):
    """The model's weights contain NaN or infinity: there is nothing to differentiate."""


def check_model(model: CharModel) -> None:
    """Refuse a diverged model (NaN or infinite weights) with a message instead of NaN figures."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise DivergedModelError(
            "error.bptt.diverged",
            names=Listed(bad[:4]),
        )


def check_text(text: str, char_to_idx: dict[str, int], max_len: int = MAX_GRADIENT_TEXT, min_len: int = 2) -> list[int]:
    """The ids of `text`, or a `VocabularyError`/`ConfigError` naming what is wrong with it."""
    if not text:
        raise ConfigError("error.bptt.empty_text")
    if len(text) > max_len:
        raise ConfigError(
            "error.bptt.text_too_long",
            length=len(text),
            limit=max_len,
        )
    unknown = unknown_chars(text, char_to_idx)
    if unknown:
        raise VocabularyError(
            "error.bptt.unknown_chars",
            chars=Chars(unknown),
        )
    if len(text) < min_len:
        raise ConfigError(
            "error.bptt.text_too_short",
            minimum=min_len,
        )
    return [char_to_idx[ch] for ch in text]


def _gate_factor(model: CharModel) -> int:
    """How many h×h products one step makes (RNN 1, GRU 3, LSTM 4): the cost of a step."""
    return {0: 1, 2: 3, 4: 4}.get(len(model.gate_names), 1)


def step_cost(model: CharModel) -> float:
    """Multiply-adds of one forward + backward step for one sequence (3 × the forward's h×h products).

    Inputs are gathered rows, so the vocabulary does not enter the per-step cost.
    """
    h = model.num_hiddens
    return 3.0 * _gate_factor(model) * h * h


@dataclass
class WorkCap:
    """How much of a computation fits in `WORK_BUDGET`; `capped` says the page must tell the visitor."""

    rows: int
    steps: int
    capped: bool


def cap_work(model: CharModel, rows: int, steps: int, budget: float = WORK_BUDGET) -> WorkCap:
    """Fewest cuts that keep rows × steps × step_cost under the budget: rows first, then steps."""
    per = step_cost(model)
    fit_rows = max(1, min(rows, int(budget // max(per * steps, 1.0))))
    fit_steps = steps if fit_rows * steps * per <= budget else max(1, int(budget // per))
    return WorkCap(fit_rows, min(steps, fit_steps), fit_rows < rows or fit_steps < steps)


def text_limit(model: CharModel, budget: float = WORK_BUDGET) -> int:
    """Characters whose connectivity fits the budget (at most MAX_GRADIENT_TEXT).

    Connectivity feeds one-hot rows (1, V) through every input matrix, so a
    step also costs about 3·g·V·h there; at one row the products are bound by
    memory, which the margin of the budget absorbs.
    """
    per_char = step_cost(model) + 3.0 * _gate_factor(model) * model.vocab_size * model.num_hiddens
    return max(2, min(MAX_GRADIENT_TEXT, int(budget // per_char)))


def _one_hot(ids: list[int] | torch.Tensor, model: CharModel) -> torch.Tensor:
    p = next(model.parameters())
    ids = torch.as_tensor(ids, dtype=torch.long, device=p.device)
    return F.one_hot(ids, model.vocab_size).to(p.dtype)


# -- 1. connectivity ---------------------------------------------------------------------------------------


def _check_position(ids: list[int], t: int) -> None:
    if not 0 <= t < len(ids) - 1:
        raise ConfigError(
            "error.bptt.no_next_char",
            position=t,
            length=len(ids),
        )


def connectivity(model: CharModel, ids: list[int], t: int) -> np.ndarray:
    """‖∂ log p(x_{t+1} | x_≤t) / ∂x_s‖ for s = 0 … t, with x_s the one-hot input (t + 1 values).

    The model reads `ids[: t + 1]` from a zero state; the target is `ids[t + 1]`.
    Not normalised: `normalise` divides by the largest, per t.

    The one-hot input x_s enters a step only through products x_s W (W: V × k),
    so ∂/∂x_s = Σ_W W ∂/∂(x_s W). The steps read gathered rows of W
    (`models.tapped_input_rows`), autograd gives ∂/∂(x_s W) for every step, and
    one (t+1) × k by k × V product per matrix gives every ∂/∂x_s at once; the
    forward values are those of `connectivity_reference` exactly, the sums of
    the last product differ from its per-step ones by rounding only (the tests
    compare both). About 10× faster than feeding (1, V) one-hot rows, whose
    products with W dominate at a large vocabulary (5,182 for the shipped LSTM).
    """
    _check_position(ids, t)
    n = t + 1
    p = next(model.parameters())
    x = torch.as_tensor(ids[:n], dtype=torch.long, device=p.device).view(n, 1)
    with torch.enable_grad(), tapped_input_rows() as tap:
        state = model.begin_state(1)
        per_step = []
        for s in range(n):
            before = len(tap)
            values, state = model.step(x[s], state)
            per_step.append(len(tap) - before)
        if per_step[0] == 0 or len(set(per_step)) != 1:  # a model that reads its input otherwise
            return connectivity_reference(model, ids, t)
        logp = F.log_softmax(model.readout(values["H"]), dim=-1)[0, ids[t + 1]]
        grads = torch.autograd.grad(logp, [rows for _, rows in tap], allow_unused=True)
    m = per_step[0]
    rows = [g if g is not None else torch.zeros_like(r) for g, (_, r) in zip(grads, tap)]  # unused: no path
    with torch.no_grad():
        # the j-th matrix a step reads is the same at every step: (n, k) × (k, V) gives ∂ log p / ∂x_s through it
        total = sum(torch.cat(rows[j::m]) @ tap[j][0].t() for j in range(m))
    return torch.linalg.vector_norm(total, dim=-1).double().numpy()


def connectivity_reference(model: CharModel, ids: list[int], t: int) -> np.ndarray:
    """`connectivity` the plain way: one-hot float rows (1, V) fed to every step, autograd to them."""
    _check_position(ids, t)
    with torch.enable_grad():
        xs = _one_hot(ids[: t + 1], model).unsqueeze(1).requires_grad_()  # (t+1, 1, V)
        state = model.begin_state(1)
        for s in range(t + 1):
            values, state = model.step(xs[s], state)
        logp = F.log_softmax(model.readout(values["H"]), dim=-1)[0, ids[t + 1]]
        (grad,) = torch.autograd.grad(logp, xs)
    return torch.linalg.vector_norm(grad[:, 0], dim=-1).double().numpy()


def normalise(values: np.ndarray) -> np.ndarray:
    """Scale to a largest value of 1 (all zeros stay zeros)."""
    top = float(np.max(values)) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


# -- 2. gradient against distance ---------------------------------------------------------------------------


def hidden_gradients(model: CharModel, X: torch.Tensor, Y: torch.Tensor) -> np.ndarray:
    """‖∂ℓ_t / ∂H_{t−k}‖ per row, shape (T + 1, B): row k for k = 0 … T, t the last step.

    ℓ_t is the cross-entropy of the last prediction (label `Y[:, -1]`); H_{t−k}
    is the hidden state after reading `X[:, T−1−k]`, and k = T is the initial
    (zero) state. For an LSTM the derivative is the total one through H, with
    C_{t−k} held as its own node. Rows are independent, so one backward pass
    gives every row's gradient.
    """
    B, T = X.shape
    with torch.enable_grad():
        state = tuple(s.requires_grad_() for s in model.begin_state(B))
        hs = [state[0]]
        for s in range(T):
            values, state = model.step(X[:, s], state)
            hs.append(values["H"])
        loss = F.cross_entropy(model.readout(hs[-1]), Y[:, -1], reduction="sum")
        grads = torch.autograd.grad(loss, hs)
    norms = torch.stack([torch.linalg.vector_norm(g, dim=-1) for g in grads])  # (T+1, B): index = step
    return norms.flip(0).double().numpy()


def corpus_minibatch(
    ids: list[int], batch_size: int, num_steps: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first of the book's random minibatches of the corpus (fixed seed: the same one every time).

    A text shorter than num_steps + 1 gives one row of all it has (the curve is then shorter).
    """
    if len(ids) < 2:
        raise ConfigError(
            "error.bptt.too_few_chars",
            length=len(ids),
        )
    num_steps = min(num_steps, len(ids) - 1)
    batch_size = min(batch_size, (len(ids) - 1) // num_steps)
    return next(iter(random_batches(ids, batch_size, num_steps, random.Random(seed))))


@dataclass
class DistanceCurve:
    """Mean ‖∂ℓ_t / ∂H_{t−k}‖ over a minibatch for k = 0 … len − 1, and what was cut to fit the budget."""

    mean: np.ndarray
    rows: int
    capped: bool


def gradient_by_distance(
    model: CharModel, corpus_ids: list[int], num_steps: int, batch_size: int, seed: int = 0
) -> DistanceCurve:
    """`hidden_gradients` over the corpus's first random minibatch, averaged over its rows."""
    cap = cap_work(model, batch_size, num_steps)
    X, Y = corpus_minibatch(corpus_ids, cap.rows, cap.steps, seed)
    norms = hidden_gradients(model, X.to(model.device), Y.to(model.device))
    return DistanceCurve(norms.mean(axis=1), X.shape[0], cap.capped)


# -- 3. explode or vanish --------------------------------------------------------------------------------------


def spectral_radius(W: torch.Tensor) -> float:
    """max |λ| over the eigenvalues of a square matrix (computed in float64)."""
    return float(torch.linalg.eigvals(W.detach().double()).abs().max())


def recurrent_weight(model: CharModel) -> torch.Tensor:
    """The matrix that multiplies H_{t−1}: W_hh (from scratch) or torch.nn's weight_hh (its transpose, same ρ)."""
    if hasattr(model, "W_hh") and not model.gate_names:
        return model.W_hh
    if hasattr(model, "rnn") and not model.gate_names:
        return model.rnn.weight_hh_l0
    raise ConfigError(
        "error.bptt.not_plain_rnn",
    )


@torch.no_grad()
def set_spectral_radius(model: CharModel, rho: float, current: float | None = None) -> float:
    """Rescale W_hh in place so that its spectral radius is `rho`; returns the radius it had.

    `current`, when the caller already knows the radius, saves the eigenvalue
    computation (the costliest part of a redraw of the ρ slider).
    """
    W = recurrent_weight(model)
    before = spectral_radius(W) if current is None else current
    if not before > 0:
        raise ConfigError("error.bptt.zero_w_hh")
    W.mul_(rho / before)
    return before


@dataclass
class ClipView:
    """One minibatch's global gradient norm ‖g‖ and what clipping at θ does to the SGD step lr·g."""

    norm: float
    theta: float
    clipped: bool
    factor: float  # min(1, θ/‖g‖): what every gradient is multiplied by
    loss: float


def minibatch_gradient(model: CharModel, X: torch.Tensor, Y: torch.Tensor, theta: float) -> ClipView:
    """The trainer's loss (mean cross-entropy over all T·B predictions), its gradient norm and the clip."""
    params = [p for p in model.parameters()]
    for p in params:
        p.requires_grad_(True)
        p.grad = None
    with torch.enable_grad():
        logits, _ = model(X, model.begin_state(X.shape[0]))
        loss = F.cross_entropy(logits, Y.t().reshape(-1))
        loss.backward()
    norm, _ = clip_gradients(params, None)  # θ = None: measure only, the page shows the clip
    for p in params:
        p.grad = None
    factor = min(1.0, theta / norm) if norm > 0 and math.isfinite(norm) else 1.0
    return ClipView(norm, theta, norm > theta, factor, float(loss.detach()))


# -- 4. surprise per character --------------------------------------------------------------------------------


@dataclass
class Surprisal:
    """−log₂ p(x_i | x_<i) for i = 1 … n−1 (the first character has no prediction) and the perplexity."""

    bits: np.ndarray
    perplexity: float


@torch.no_grad()
def surprisal(model: CharModel, ids: list[int]) -> Surprisal:
    """Read `ids` from a zero state; perplexity = exp(mean loss in nats) = 2^(mean bits), as the book."""
    X = torch.tensor([ids[:-1]], device=model.device)
    logits, _ = model(X, model.begin_state(1))
    nats = -F.log_softmax(logits.double(), dim=-1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    bits = (nats / math.log(2)).cpu().numpy()
    return Surprisal(bits, math.exp(float(nats.mean())))


# -- 5. one forward step ----------------------------------------------------------------------------------------


@dataclass
class StepView:
    """Step i of the forward pass split into the book's terms, each a vector of h numbers.

    `terms`: input term, recurrent term, bias and their sum (the pre-activation)
    of the tanh that makes H_t (RNN), the candidate H̃_t (GRU) or the candidate
    cell C̃_t (LSTM); `gates`: Z, R or I, F, O; `H` is composed from these.
    """

    index: int
    char_id: int
    terms: dict[str, np.ndarray]
    gates: dict[str, np.ndarray]
    H: np.ndarray
    top: list[tuple[int, float]] = field(default_factory=list)


def _terms(model: CharModel, x: torch.Tensor, state: tuple[torch.Tensor, ...], gates: dict[str, torch.Tensor]):
    """(input term, recurrent term, bias) of the tanh in each model's equations, for ids `x` (1,)."""
    H = state[0]
    kind, i = model.kind, int(x[0])
    if kind == "scratch-rnn":
        return model.W_xh[i], (H @ model.W_hh)[0], model.b_h
    if kind == "scratch-gru":
        return model.W_xh[i], ((gates["R"] * H) @ model.W_hh)[0], model.b_h
    if kind == "scratch-lstm":
        return model.W_xc[i], (H @ model.W_hc)[0], model.b_c
    r, h = model.rnn, model.num_hiddens
    if kind == "rnn":
        return _input_term(model, slice(None), i), (H @ r.weight_hh_l0.t())[0], r.bias_ih_l0 + r.bias_hh_l0
    if kind == "gru":  # torch order (r, z, n): n = tanh(W_in x + b_in + R ⊙ (W_hn H + b_hn))
        hn = (H @ r.weight_hh_l0[2 * h :].t())[0] + r.bias_hh_l0[2 * h :]
        return _input_term(model, slice(2 * h, None), i), gates["R"][0] * hn, r.bias_ih_l0[2 * h :]
    # lstm, torch order (i, f, g, o): the candidate g
    sl = slice(2 * h, 3 * h)
    return _input_term(model, sl, i), (H @ r.weight_hh_l0[sl].t())[0], r.bias_ih_l0[sl] + r.bias_hh_l0[sl]


def _input_term(model: CharModel, rows: slice, char_id: int) -> torch.Tensor:
    """W x for character `char_id`: a column of W for one-hot input, W times its embedding row otherwise."""
    weight = model.rnn.weight_ih_l0[rows]
    if getattr(model, "embed", 0):
        return weight @ model.embedding.weight[char_id]
    return weight[:, char_id]


@torch.no_grad()
def step_view(model: CharModel, ids: list[int], index: int, top_k: int = 5) -> StepView:
    """Read `ids[: index]`, then show step `index` term by term; H_t is rebuilt from the terms."""
    state = model.begin_state(1)
    for i in ids[:index]:
        _, state = model.step(torch.tensor([i], device=model.device), state)
    x = torch.tensor([ids[index]], device=model.device)
    values, _ = model.step(x, state)
    gates = {g: values[g] for g in model.gate_names if g != "C"}
    inp, rec, bias = _terms(model, x, state, gates)
    pre = inp + rec + bias
    cand = ACTIVATIONS[model.nonlinearity](pre)  # tanh, or an RNN's ReLU
    H_prev = state[0][0]
    if model.gate_names == ("Z", "R"):  # both GRUs: H = Z ⊙ H_{t−1} + (1 − Z) ⊙ H̃
        Z = gates["Z"][0]
        H = Z * H_prev + (1 - Z) * cand
    elif model.n_state == 2:  # LSTM: C = F ⊙ C_{t−1} + I ⊙ C̃, H = O ⊙ tanh(C)
        C = gates["F"][0] * state[1][0] + gates["I"][0] * cand
        H = gates["O"][0] * torch.tanh(C)
    else:
        H = cand
    terms = {"input": inp, "recurrent": rec, "bias": bias, "pre": pre}
    if model.gate_names:
        terms["candidate"] = cand
    if model.n_state == 2:
        terms["C"] = C
    probs = F.softmax(model.readout(H.unsqueeze(0)).double(), dim=-1)[0]
    p, top = probs.topk(min(top_k, probs.numel()))
    as_np = {k: v.double().cpu().numpy() for k, v in terms.items()}
    return StepView(
        index,
        int(ids[index]),
        as_np,
        {g: v[0].double().cpu().numpy() for g, v in gates.items()},
        H.double().cpu().numpy(),
        [(int(i), float(q)) for i, q in zip(top, p)],
    )


# -- LSTMVis: what a unit means -----------------------------------------------------------------------------------


def units_on_span(H: np.ndarray, start: int, end: int, threshold: float) -> list[int]:
    """Units on (≥ threshold) at every position of `start … end` (inclusive) and off just before it.

    `H` is (T, h). Before position 0 the state is the zero vector, so a unit is
    "off before" there exactly when 0 < threshold. The most decisive units come
    first: those whose smallest distance to the threshold (inside the span, or
    just before it) is largest; ties keep index order.
    """
    span = H[start : end + 1]
    before = H[start - 1] if start > 0 else np.zeros(H.shape[1])
    margin = np.minimum(span.min(axis=0) - threshold, threshold - before)
    on = (span >= threshold).all(axis=0) & (before < threshold)
    units = np.flatnonzero(on)
    return units[np.argsort(-margin[units], kind="stable")].tolist()


@dataclass
class Match:
    start: int  # first corpus position where every unit is on
    end: int  # last such position (inclusive)


SEARCH_BUDGET = 1e10  # multiply-adds of the batched corpus trace (about a second at one thread, see bench-bptt)


def search_limit(model: CharModel) -> int:
    """Corpus characters the unit search may trace: MAX_SEARCH_CHARS, fewer for very wide models."""
    per_char = _gate_factor(model) * model.num_hiddens**2
    return max(1, min(MAX_SEARCH_CHARS, int(SEARCH_BUDGET // per_char)))


@torch.no_grad()
def corpus_states(model: CharModel, ids: list[int], rows: int = 64) -> np.ndarray:
    """H at every corpus position, (n, h): the corpus cut into `rows` rows read in parallel from zero states."""
    n = len(ids) // rows * rows if len(ids) >= rows else len(ids)
    rows = rows if len(ids) >= rows else 1
    X = torch.tensor(ids[:n], device=model.device).view(rows, -1)
    H = model.trace(X)["H"]  # (L, rows, h)
    return H.permute(1, 0, 2).reshape(n, -1).float().cpu().numpy()


def find_unit_pattern(states: np.ndarray, units: list[int], threshold: float, limit: int = 10) -> list[Match]:
    """Stretches where all `units` are on together, longest first (ties: earliest), at most `limit`."""
    if not units:
        return []
    on = (states[:, units] >= threshold).all(axis=1)
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    order = sorted(range(len(starts)), key=lambda j: (-(ends[j] - starts[j]), starts[j]))
    return [Match(int(starts[j]), int(ends[j])) for j in order[:limit]]
