"""Models: shapes, seeding, initialisation, and equality with torch.nn and with the book's equations.

The fast paths (gathered inputs, a hand-written tanh backward, one output matmul) must be the
same maths as the book's one-hot formulation and as torch.nn's layers; these tests compare them
with independent implementations written here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lm_core import checkpoint
from lm_core import recurrences as rec
from lm_core.errors import CheckpointError, ConfigError, localized
from lm_core.models import (
    MODEL_KINDS,
    CharModel,
    ScratchRNN,
    TorchRNN,
    build_model,
    detach_state,
    expected_shapes,
    parameter_count,
)
from lm_core.training import TrainConfig

V, H, B, T = 13, 8, 3, 5
SCRATCH = ("scratch-rnn", "scratch-gru", "scratch-lstm")
TORCH_KINDS = ("rnn", "gru", "lstm")
GATES = {
    "scratch-rnn": set(),
    "rnn": set(),
    "scratch-gru": {"Z", "R"},
    "gru": {"Z", "R"},
    "scratch-lstm": {"I", "F", "O", "C"},
    "lstm": {"I", "F", "O", "C"},
}


def _ids(seed: int = 0, b: int = B, t: int = T, v: int = V) -> torch.Tensor:
    return torch.randint(0, v, (b, t), generator=torch.Generator().manual_seed(seed))


def _random_state(model: CharModel, seed: int = 1) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, model.num_hiddens, generator=gen) * 0.5 for _ in range(model.n_state))


def _scale_weights(model: CharModel, std: float = 0.4, seed: int = 3) -> None:
    """Replace every parameter by N(0, std²) so the nonlinearities are really exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)


def _grads(model: CharModel) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


Forward = Callable[[torch.Tensor, tuple[torch.Tensor, ...]], tuple[torch.Tensor, tuple[torch.Tensor, ...]]]


def _scaled_problem(kind: str) -> tuple[CharModel, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """A model with scaled weights, inputs X, flattened targets y and a random state: one setup for every
    "two implementations agree" test, so they all compare on the same problem."""
    model = build_model(kind, V, H, seed=0)
    _scale_weights(model)
    return model, _ids(0), _ids(1).t().reshape(-1), _random_state(model)


def _loss_and_grads(
    model: CharModel, forward: Forward, X: torch.Tensor, y: torch.Tensor, state: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    """Logits, final state and parameter gradients of cross-entropy plus a loss on the state (so the state's
    own gradient path is checked too) through `forward`."""
    model.zero_grad(set_to_none=True)
    logits, new_state = forward(X, state)
    (F.cross_entropy(logits, y) + sum(s.square().sum() for s in new_state)).backward()
    return logits.detach(), detach_state(new_state), _grads(model)


# -- interface ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_forward_and_state_shapes(kind: str) -> None:
    """forward maps (B, T) ids to (T*B, V) logits and a state of (B, h) tensors; LSTM has (H, C)."""
    model = build_model(kind, V, H, seed=0)
    state = model.begin_state(B)
    assert len(state) == (2 if kind.endswith("lstm") else 1)
    assert all(s.shape == (B, H) and not s.any() for s in state)
    logits, new_state = model(_ids(), state)
    assert logits.shape == (T * B, V)
    assert isinstance(new_state, tuple) and len(new_state) == len(state)
    assert all(s.shape == (B, H) for s in new_state)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_trace_gives_states_and_gates_per_step_ending_in_forwards_state(kind: str) -> None:
    """trace returns H (and the gates, and LSTM's C) as (T, B, h); its last H is forward's final state."""
    model, X, _, state = _scaled_problem(kind)
    values = model.trace(X, state)
    assert set(values) == {"H"} | GATES[kind]
    for name, tensor in values.items():
        assert tensor.shape == (T, B, H), name
    _, final = model(X, state)
    assert torch.allclose(values["H"][-1], final[0], atol=1e-5)
    if kind.endswith("lstm"):
        assert torch.allclose(values["C"][-1], final[1], atol=1e-5)
    for gate in GATES[kind] - {"C"}:
        assert ((values[gate] >= 0) & (values[gate] <= 1)).all(), f"gate {gate} is not a sigmoid output"
    # trace from a zero state is the default
    assert torch.allclose(model.trace(X)["H"], model.trace(X, model.begin_state(B))["H"])


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_same_seed_same_weights_different_seed_different(kind: str) -> None:
    """Initial weights depend only on the seed (a private generator, not the global one)."""
    a = build_model(kind, V, H, seed=5)
    torch.manual_seed(123)  # the global generator must not matter
    b = build_model(kind, V, H, seed=5)
    c = build_model(kind, V, H, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("kind", SCRATCH)
def test_scratch_initialisation_is_the_books(kind: str) -> None:
    """Scratch weights are N(0, 0.01²) and biases are zero, as the book's `_one` and `_zero`."""
    model = build_model(kind, 200, 64, seed=0)
    weights = [p for name, p in model.named_parameters() if name.startswith("W_")]
    biases = [p for name, p in model.named_parameters() if name.startswith("b_")]
    assert weights and biases
    for name, p in model.named_parameters():
        if name.startswith("W_"):
            assert p.std().item() == pytest.approx(0.01, rel=0.1), name
            assert abs(p.mean().item()) < 0.002, name
        else:
            assert name.startswith("b_") and not p.any(), name
    count = 3 if kind == "scratch-rnn" else (7 if kind == "scratch-gru" else 9)
    assert len(weights) == count


@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_torch_initialisation_is_uniform_within_one_over_sqrt_h(kind: str) -> None:
    """torch.nn models use torch's default U(-1/√h, 1/√h) for every parameter."""
    h = 64
    bound = 1 / math.sqrt(h)
    model = build_model(kind, 100, h, seed=0)
    for name, p in model.named_parameters():
        assert p.abs().max().item() <= bound + 1e-7, name
        if p.numel() >= 1000:
            assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1), name


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_models_run_in_float64(kind: str) -> None:
    """begin_state follows the parameters' dtype, so a model converted with .double() runs in float64."""
    model = build_model(kind, V, H, seed=0).double()
    state = model.begin_state(B)
    assert all(s.dtype == torch.float64 for s in state)
    logits, new_state = model(_ids(), state)
    assert logits.dtype == torch.float64 and all(s.dtype == torch.float64 for s in new_state)


def test_build_model_rejects_bad_kind_and_size() -> None:
    """Unknown kinds and hidden sizes outside 1..2048 are ConfigErrors with a user message."""
    with pytest.raises(ConfigError, match="Unknown model"):
        build_model("transformer", V, H)
    for bad in (0, 2049):
        with pytest.raises(ConfigError, match="Hidden units"):
            build_model("rnn", V, bad)


def test_detach_state_cuts_the_graph() -> None:
    """detach_state keeps the values and drops the autograd history."""
    x = torch.ones(2, 3, requires_grad=True)
    state = (x * 2, x * 3)
    out = detach_state(state)
    assert all(not s.requires_grad for s in out)
    assert all(torch.equal(a, b) for a, b in zip(out, state, strict=True))


# -- the key equivalence: scratch RNN == torch.nn.RNN -----------------------------------------------


def _copy_scratch_into_torch(scratch: ScratchRNN, torch_rnn: TorchRNN) -> None:
    with torch.no_grad():
        torch_rnn.rnn.weight_ih_l0.copy_(scratch.W_xh.T)
        torch_rnn.rnn.weight_hh_l0.copy_(scratch.W_hh.T)
        torch_rnn.rnn.bias_ih_l0.copy_(scratch.b_h)
        torch_rnn.rnn.bias_hh_l0.zero_()
        torch_rnn.dense.weight.copy_(scratch.W_hq.T)
        torch_rnn.dense.bias.copy_(scratch.b_q)


@pytest.mark.parametrize("random_state", [False, True])
def test_scratch_rnn_equals_torch_rnn_and_real_nn_rnn(random_state: bool) -> None:
    """Same weights: ScratchRNN.forward, TorchRNN.forward and torch.nn.RNN on one-hot give the same logits and state."""
    scratch = build_model("scratch-rnn", V, H, seed=0)
    assert isinstance(scratch, ScratchRNN)
    _scale_weights(scratch)
    with torch.no_grad():
        scratch.b_h.copy_(torch.linspace(-0.5, 0.5, H))
        scratch.b_q.copy_(torch.linspace(-1, 1, V))
    torch_rnn = build_model("rnn", V, H, seed=1)
    assert isinstance(torch_rnn, TorchRNN)
    _copy_scratch_into_torch(scratch, torch_rnn)

    X = _ids()
    state = _random_state(scratch) if random_state else scratch.begin_state(B)
    logits_s, (h_s,) = scratch(X, state)
    logits_t, (h_t,) = torch_rnn(X, state)
    logits_r, (h_r,) = torch_rnn.reference_forward(X, state)
    for logits, h in ((logits_t, h_t), (logits_r, h_r)):
        assert torch.allclose(logits_s, logits, atol=1e-5)
        assert torch.allclose(h_s, h, atol=1e-5)
    assert logits_s.abs().max() > 0.5, "weights too small to exercise the nonlinearity"


def test_scratch_rnn_gradients_equal_torch_nn_rnn_gradients() -> None:
    """The hand-written backward of ScratchRNN gives torch.nn.RNN's gradients (mapped through the transposes)."""
    scratch = build_model("scratch-rnn", V, H, seed=0)
    _scale_weights(scratch)
    torch_rnn = build_model("rnn", V, H, seed=1)
    _copy_scratch_into_torch(scratch, torch_rnn)
    X, Y = _ids(0), _ids(1)
    y = Y.t().reshape(-1)
    state = _random_state(scratch)

    logits, (h,) = scratch(X, state)
    (F.cross_entropy(logits, y) + h.square().sum()).backward()
    logits_r, (h_r,) = torch_rnn.reference_forward(X, state)
    (F.cross_entropy(logits_r, y) + h_r.square().sum()).backward()

    r = torch_rnn.rnn
    pairs = [
        (scratch.W_xh.grad, r.weight_ih_l0.grad.T),
        (scratch.W_hh.grad, r.weight_hh_l0.grad.T),
        (scratch.b_h.grad, r.bias_ih_l0.grad),
        (scratch.b_h.grad, r.bias_hh_l0.grad),
        (scratch.W_hq.grad, torch_rnn.dense.weight.grad.T),
        (scratch.b_q.grad, torch_rnn.dense.bias.grad),
    ]
    for mine, theirs in pairs:
        assert torch.allclose(mine, theirs, atol=1e-5)
    assert scratch.W_hh.grad.abs().max() > 1e-3


@pytest.mark.parametrize("kind", TORCH_KINDS)
def test_torch_models_forward_and_gradients_equal_the_real_layer(kind: str) -> None:
    """TorchRNN/GRU/LSTM.forward equals the real nn.RNN/GRU/LSTM on one-hot input, in values and gradients."""
    model, X, y, state = _scaled_problem(kind)
    logits_f, state_f, grads_f = _loss_and_grads(model, model.forward, X, y, state)
    logits_r, state_r, grads_r = _loss_and_grads(model, model.reference_forward, X, y, state)
    assert torch.allclose(logits_f, logits_r, atol=1e-5)
    for a, b in zip(state_f, state_r, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert grads_f.keys() == grads_r.keys()
    for name in grads_f:
        assert torch.allclose(grads_f[name], grads_r[name], atol=1e-5), name
        assert grads_f[name].abs().max() > 0, name


# -- the hand-written recurrences (lm_core.recurrences) ----------------------------------------------


def _naive_tanh_rnn(xw: torch.Tensor, h0: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    H, hs = h0, []
    for t in range(xw.shape[0]):
        H = torch.tanh(xw[t] + H @ W + b)
        hs.append(H)
    return torch.stack(hs)


def _naive_relu_rnn(xw: torch.Tensor, h0: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    H, hs = h0, []
    for t in range(xw.shape[0]):
        H = torch.clamp(xw[t] + H @ W + b, min=0)  # max(0, z), not the code's relu_
        hs.append(H)
    return torch.stack(hs)


def _naive_lstm_cell_loop(xg: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, W: torch.Tensor):
    H, C, hs = h0, c0, []
    for t in range(xg.shape[0]):
        i, f, g, o = (xg[t] + H @ W).chunk(4, dim=1)  # PyTorch's gate order
        C = torch.sigmoid(f) * C + torch.sigmoid(i) * torch.tanh(g)
        H = torch.sigmoid(o) * torch.tanh(C)
        hs.append(H)
    return torch.stack(hs), C


def _naive_gru_torch(xg: torch.Tensor, h0: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    H, hs = h0, []
    for t in range(xg.shape[0]):
        i_r, i_z, i_n = xg[t].chunk(3, dim=1)
        h_r, h_z, h_n = (H @ W + b).chunk(3, dim=1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        H = (1 - z) * n + z * H
        hs.append(H)
    return torch.stack(hs)


def _naive_gru_book(xzr, xh, h0, W_zr, b_zr, W_hh, b_h) -> torch.Tensor:
    H, hs = h0, []
    n = h0.shape[1]
    for t in range(xh.shape[0]):
        zr = torch.sigmoid(xzr[t] + H @ W_zr + b_zr)
        Z, R = zr[:, :n], zr[:, n:]
        H_tilde = torch.tanh(xh[t] + (R * H) @ W_hh + b_h)
        H = Z * H + (1 - Z) * H_tilde
        hs.append(H)
    return torch.stack(hs)


def _recurrence_cases(dtype: torch.dtype, t: int = 4, b: int = 3, h: int = 5):
    """(name, Function, naive loop, inputs) for each hand-written recurrence, on small random inputs."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype) * 0.7

    return [
        ("TanhRNN", rec.TanhRNN, _naive_tanh_rnn, [rand(t, b, h), rand(b, h), rand(h, h), rand(h)]),
        ("ReLURNN", rec.ReLURNN, _naive_relu_rnn, [rand(t, b, h), rand(b, h), rand(h, h), rand(h)]),
        ("LSTM", rec.LSTM, _naive_lstm_cell_loop, [rand(t, b, 4 * h), rand(b, h), rand(b, h), rand(h, 4 * h)]),
        ("GRUTorch", rec.GRUTorch, _naive_gru_torch, [rand(t, b, 3 * h), rand(b, h), rand(h, 3 * h), rand(3 * h)]),
        (
            "GRUBook",
            rec.GRUBook,
            _naive_gru_book,
            [rand(t, b, 2 * h), rand(t, b, h), rand(b, h), rand(h, 2 * h), rand(2 * h), rand(h, h), rand(h)],
        ),
    ]


RECURRENCES = ["TanhRNN", "ReLURNN", "LSTM", "GRUTorch", "GRUBook"]


@pytest.mark.parametrize("index", range(len(RECURRENCES)), ids=RECURRENCES)
def test_recurrence_backward_passes_gradcheck_in_float64(index: int) -> None:
    """Each hand-written backward agrees with finite differences for every input (float64)."""
    _, function, _, inputs = _recurrence_cases(torch.float64, t=3, b=2, h=3)[index]
    leaves = [x.requires_grad_() for x in inputs]
    assert torch.autograd.gradcheck(function.apply, leaves, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("index", range(len(RECURRENCES)), ids=RECURRENCES)
def test_recurrence_matches_autograd_of_the_naive_loop(index: int) -> None:
    """Values and all gradients of each fast recurrence equal autograd through a plain loop of the cell."""
    _, function, naive_loop, inputs = _recurrence_cases(torch.float32)[index]
    gen = torch.Generator().manual_seed(1)

    def run(fn) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        leaves = [x.clone().requires_grad_() for x in inputs]
        out = fn(*leaves)
        outs = list(out) if isinstance(out, tuple) else [out]
        loss = sum((o * torch.randn(o.shape, generator=gen.manual_seed(7 + k))).sum() for k, o in enumerate(outs))
        loss.backward()
        return [o.detach() for o in outs], [x.grad for x in leaves]

    fast_out, fast_grads = run(function.apply)
    naive_out, naive_grads = run(naive_loop)
    for a, c in zip(fast_out, naive_out, strict=True):
        assert torch.allclose(a, c, atol=1e-6)
    for a, c in zip(fast_grads, naive_grads, strict=True):
        assert a is not None and torch.allclose(a, c, atol=1e-5)


# -- scratch models against the book's equations, written naively here -------------------------------


def _onehot_steps(X: torch.Tensor, v: int) -> list[torch.Tensor]:
    return [F.one_hot(X[:, t], v).float() for t in range(X.shape[1])]


def _naive_rnn(m: CharModel, X: torch.Tensor, state: tuple[torch.Tensor, ...]):
    (Hs,) = state
    outputs = []
    for x in _onehot_steps(X, m.vocab_size):
        Hs = torch.tanh(x @ m.W_xh + Hs @ m.W_hh + m.b_h)
        outputs.append(Hs @ m.W_hq + m.b_q)
    return torch.cat(outputs, dim=0), (Hs,)


def _naive_gru(m: CharModel, X: torch.Tensor, state: tuple[torch.Tensor, ...]):
    (Hs,) = state
    outputs = []
    for x in _onehot_steps(X, m.vocab_size):
        Z = torch.sigmoid(x @ m.W_xz + Hs @ m.W_hz + m.b_z)
        R = torch.sigmoid(x @ m.W_xr + Hs @ m.W_hr + m.b_r)
        H_tilda = torch.tanh(x @ m.W_xh + (R * Hs) @ m.W_hh + m.b_h)
        Hs = Z * Hs + (1 - Z) * H_tilda
        outputs.append(Hs @ m.W_hq + m.b_q)
    return torch.cat(outputs, dim=0), (Hs,)


def _naive_lstm(m: CharModel, X: torch.Tensor, state: tuple[torch.Tensor, ...]):
    Hs, C = state
    outputs = []
    for x in _onehot_steps(X, m.vocab_size):
        I = torch.sigmoid(x @ m.W_xi + Hs @ m.W_hi + m.b_i)  # the book's name
        Fg = torch.sigmoid(x @ m.W_xf + Hs @ m.W_hf + m.b_f)
        O = torch.sigmoid(x @ m.W_xo + Hs @ m.W_ho + m.b_o)  # the book's name
        C_tilda = torch.tanh(x @ m.W_xc + Hs @ m.W_hc + m.b_c)
        C = Fg * C + I * C_tilda
        Hs = O * torch.tanh(C)
        outputs.append(Hs @ m.W_hq + m.b_q)
    return torch.cat(outputs, dim=0), (Hs, C)


NAIVE = {"scratch-rnn": _naive_rnn, "scratch-gru": _naive_gru, "scratch-lstm": _naive_lstm}


@pytest.mark.parametrize("kind", SCRATCH)
def test_scratch_models_match_the_books_one_hot_equations(kind: str) -> None:
    """Scratch RNN/GRU/LSTM give the logits, state and gradients of the book's one-hot equations."""
    model, X, y, state = _scaled_problem(kind)
    logits, new_state, grads = _loss_and_grads(model, model, X, y, state)
    logits_n, state_n, grads_n = _loss_and_grads(model, lambda x, s: NAIVE[kind](model, x, s), X, y, state)

    assert torch.allclose(logits, logits_n, atol=1e-5)
    for a, b in zip(new_state, state_n, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    for name in grads:
        assert torch.allclose(grads[name], grads_n[name], atol=1e-5), name


@pytest.mark.parametrize("kind", SCRATCH)
def test_scratch_step_matches_the_books_equations(kind: str) -> None:
    """trace (the per-step path the UI draws) follows the same equations as the naive implementation."""
    model, X, _, state = _scaled_problem(kind)
    hs = model.trace(X, state)["H"]
    for t in range(T):
        _, naive_state = NAIVE[kind](model, X[:, : t + 1], state)
        assert torch.allclose(hs[t], naive_state[0], atol=1e-5)


# -- ReLU instead of tanh (a chapter exercise) --------------------------------------------------------------


def test_relu_recurrence_really_cuts_at_zero() -> None:
    """The ReLU case of the recurrence tests is not vacuous: some units are off and pass no gradient back."""
    _, function, _, inputs = _recurrence_cases(torch.float32)[1]
    hs = function.apply(*inputs)
    assert (hs == 0).any() and (hs > 0).any()


@pytest.mark.parametrize("random_state", [False, True])
def test_relu_scratch_rnn_equals_nn_rnn_relu_in_values_and_gradients(random_state: bool) -> None:
    """scratch-rnn and rnn with nonlinearity="relu" are torch.nn.RNN(nonlinearity="relu"): logits, state, gradients."""
    scratch = build_model("scratch-rnn", V, H, seed=0, nonlinearity="relu")
    _scale_weights(scratch)
    torch_rnn = build_model("rnn", V, H, seed=1, nonlinearity="relu")
    assert torch_rnn.rnn.nonlinearity == "relu"
    _copy_scratch_into_torch(scratch, torch_rnn)
    X, y = _ids(0), _ids(1).t().reshape(-1)
    state = _random_state(scratch) if random_state else scratch.begin_state(B)
    runs = [
        _loss_and_grads(scratch, scratch, X, y, state),
        _loss_and_grads(torch_rnn, torch_rnn, X, y, state),
        _loss_and_grads(torch_rnn, torch_rnn.reference_forward, X, y, state),
    ]
    (logits_s, (h_s,), grads_s), *torch_runs = runs
    assert (h_s == 0).any(), "ReLU must switch some units off"
    assert torch.equal(h_s.clamp(min=0), h_s)
    for logits, (h,), grads in torch_runs:
        assert torch.allclose(logits_s, logits, atol=1e-5)
        assert torch.allclose(h_s, h, atol=1e-5)
        assert torch.allclose(grads_s["W_hh"], grads["rnn.weight_hh_l0"].T, atol=1e-5)
        assert torch.allclose(grads_s["W_xh"], grads["rnn.weight_ih_l0"].T, atol=1e-5)
    tanh = build_model("scratch-rnn", V, H, seed=0)
    tanh.load_state_dict(scratch.state_dict())
    assert not torch.allclose(tanh(X, state)[0], logits_s, atol=1e-3), "the nonlinearity must change the model"


@pytest.mark.parametrize("kind", ["scratch-rnn", "rnn"])
def test_relu_step_and_trace_follow_the_forward(kind: str) -> None:
    """The plain per-step equations (Hidden states, Gradients pages) use ReLU too and end in forward's state."""
    model = build_model(kind, V, H, seed=0, nonlinearity="relu")
    _scale_weights(model)
    X = _ids()
    _, (h,) = model(X, model.begin_state(B))
    trace = model.trace(X)
    assert torch.allclose(trace["H"][-1], h, atol=1e-5)
    assert (trace["H"] == 0).any()


@pytest.mark.parametrize("kind", ["scratch-gru", "scratch-lstm", "gru", "lstm"])
def test_gated_models_refuse_relu_instead_of_ignoring_it(kind: str) -> None:
    with pytest.raises(ConfigError, match="plain RNN only") as info:
        build_model(kind, V, H, nonlinearity="relu")
    assert "ReLU" in localized(info.value, "zh") and "sigmoid" in localized(info.value, "zh-Hant")
    with pytest.raises(ConfigError, match="Unknown nonlinearity"):
        build_model("rnn", V, H, nonlinearity="sigmoid")


def test_relu_and_tanh_models_of_one_seed_start_from_the_same_weights() -> None:
    for kind in ("scratch-rnn", "rnn"):
        a, b = build_model(kind, V, H, seed=4), build_model(kind, V, H, seed=4, nonlinearity="relu")
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


# -- stacked torch.nn layers, dropout and embedding ----------------------------------------------------------------
# Deeper torch.nn models: layers, dropout between them, an embedding input; old checkpoints unchanged.
#
# Every comparison is against torch.nn's own layers (`reference_forward` feeds the
# real nn.RNN/GRU/LSTM with one-hot or embedded input) or against files written
# by the code that existed before these options.


KINDS = ("rnn", "gru", "lstm")

SHIPPED_GRU = Path(__file__).resolve().parents[1] / "checkpoints" / "songci-gru.pt"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("layers", "embed"), [(1, 6), (2, 0), (3, 6)])
def test_forward_and_gradients_equal_torch_nn(kind: str, layers: int, embed: int) -> None:
    """Stacked layers and embeddings: logits, final states and gradients equal the real nn layer's (eval mode)."""
    model = build_model(kind, V, H, seed=0, num_layers=layers, dropout=0.3 if layers > 1 else 0.0, embed=embed)
    model.eval()  # torch.nn's dropout is random; without it both paths are deterministic
    assert model.n_state == layers * (2 if kind == "lstm" else 1)
    X, y = _ids(0), _ids(1).t().reshape(-1)
    state = _random_state(model)

    def run(forward):
        model.zero_grad(set_to_none=True)
        logits, new = forward(X, state)
        (F.cross_entropy(logits, y) + sum(s.square().sum() for s in new)).backward()
        return logits.detach(), detach_state(new), {n: p.grad.clone() for n, p in model.named_parameters()}

    lf, sf, gf = run(model.forward)
    lr, sr, gr = run(model.reference_forward)
    assert lf.shape == (T * B, V)
    assert torch.allclose(lf, lr, atol=1e-5)
    for a, b in zip(sf, sr, strict=True):
        assert a.shape == (B, H)
        assert torch.allclose(a, b, atol=1e-5)
    for name in gf:
        assert torch.allclose(gf[name], gr[name], atol=1e-5), name
        assert gf[name].abs().max() > 0, name


@pytest.mark.parametrize("kind", KINDS)
def test_step_trace_and_readout_follow_the_top_layer(kind: str) -> None:
    """step() on ids and on one-hot rows agree; trace's last H is the top layer's; readout gives forward's logits."""
    model = build_model(kind, V, H, seed=2, num_layers=2, dropout=0.5, embed=4)
    model.eval()
    X = _ids(3)
    logits, state = model(X, model.begin_state(B))
    trace = model.trace(X)
    assert trace["H"].shape == (T, B, H)
    assert torch.allclose(trace["H"][-1], state[-2 if kind == "lstm" else -1], atol=1e-5)  # the top layer's H
    assert torch.allclose(model.readout(trace["H"][-1]), logits.view(T, B, V)[-1], atol=1e-5)
    s_ids, s_hot = model.begin_state(B), model.begin_state(B)
    for t in range(T):
        v_ids, s_ids = model.step(X[:, t], s_ids)
        v_hot, s_hot = model.step(F.one_hot(X[:, t], V).float(), s_hot)
        assert torch.allclose(v_ids["H"], v_hot["H"], atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_expected_shapes_and_count_match_the_real_model(kind: str) -> None:
    for layers, embed in [(1, 0), (2, 5), (3, 0)]:
        model = build_model(kind, V, H, num_layers=layers, embed=embed)
        real = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        shapes = expected_shapes(kind, V, H, layers, embed)
        assert list(shapes.items()) == list(real.items())  # the same order as the parameters, too
        assert [tuple(p.shape) for p in model.parameters()] == list(shapes.values())
        assert parameter_count(kind, V, H, layers, embed) == sum(p.numel() for p in model.parameters())


def test_dropout_acts_only_in_training_mode_and_follows_the_seed() -> None:
    X, state = _ids(0), None
    model = build_model("lstm", V, H, seed=4, num_layers=2, dropout=0.5)
    state = model.begin_state(B)
    model.eval()
    a, _ = model(X, state)
    b, _ = model(X, state)
    assert torch.equal(a, b)
    model.train()
    c, _ = model(X, state)
    assert not torch.allclose(a, c, atol=1e-4)  # dropout changed something
    twin = build_model("lstm", V, H, seed=4, num_layers=2, dropout=0.5)
    twin.train()
    d, _ = twin(X, state)
    assert torch.equal(c, d)  # same seed, same masks
    no_drop = build_model("lstm", V, H, seed=4, num_layers=2, dropout=0.0)
    no_drop.train()
    assert torch.allclose(no_drop(X, state)[0], a, atol=1e-6)


def test_bad_architectures_are_clear_errors_in_both_languages() -> None:
    with pytest.raises(ConfigError, match="Dropout acts between layers") as info:
        build_model("gru", V, H, num_layers=1, dropout=0.2)
    assert "丢弃" in localized(info.value, "zh")
    with pytest.raises(ConfigError, match="from-scratch"):
        build_model("scratch-rnn", V, H, num_layers=2)
    with pytest.raises(ConfigError, match="Layers"):
        build_model("gru", V, H, num_layers=4)
    with pytest.raises(ConfigError, match="embedding"):
        build_model("gru", V, H, embed=-1)
    with pytest.raises(ConfigError, match="Dropout acts between layers"):
        TrainConfig(model="gru", dropout=0.3).validate()


def test_default_model_is_unchanged_by_the_new_options() -> None:
    """num_layers=1, embed=0 builds the same parameters, from the same draws, as the one-layer one-hot model."""
    model = build_model("gru", V, H, seed=7)
    assert list(model.state_dict()) == [
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.bias_ih_l0",
        "rnn.bias_hh_l0",
        "dense.weight",
        "dense.bias",
    ]
    gen = torch.Generator().manual_seed(7)
    bound = 1 / H**0.5
    first = torch.rand(model.rnn.weight_ih_l0.shape, generator=gen) * 2 * bound - bound
    assert torch.equal(model.rnn.weight_ih_l0.detach(), first)


def test_shipped_checkpoint_from_before_the_options_loads_and_matches_torch_nn() -> None:
    """checkpoints/songci-gru.pt was written before these fields existed: it loads, and gives nn.GRU's outputs."""
    raw = torch.load(SHIPPED_GRU, map_location="cpu", weights_only=True)
    assert "num_layers" not in raw["config"]  # really an old-format file
    ckpt = checkpoint.load(SHIPPED_GRU)
    assert (ckpt.config.num_layers, ckpt.config.dropout, ckpt.config.embed) == (1, 0.0, 0)
    model = ckpt.build_model().eval()
    v, h = len(ckpt.vocab), ckpt.config.hidden
    gru, dense = torch.nn.GRU(v, h), torch.nn.Linear(h, v)
    gru.load_state_dict({k[4:]: w for k, w in raw["model_state"].items() if k.startswith("rnn.")})
    dense.load_state_dict({k[6:]: w for k, w in raw["model_state"].items() if k.startswith("dense.")})
    X = torch.randint(0, v, (2, 12), generator=torch.Generator().manual_seed(0))
    logits, _ = model(X, model.begin_state(2))
    with torch.no_grad():
        out, _ = gru(F.one_hot(X.t(), v).float())
        expected = dense(out.reshape(-1, h))
    assert torch.allclose(logits, expected, atol=1e-4)


def test_old_format_payload_without_new_fields_loads() -> None:
    model = build_model("lstm", V, H, seed=1)
    old_config = {
        k: v
        for k, v in TrainConfig(model="lstm", hidden=H).to_dict().items()
        if k not in ("num_layers", "dropout", "embed", "steps_per_epoch", "patience")
    }
    payload = {
        "format": checkpoint.FORMAT,
        "config": old_config,
        "vocab": [chr(0x4E00 + i) for i in range(V)],
        "model_state": model.state_dict(),
        "history": [
            {
                "epoch": 1,
                "perplexity": 9.0,
                "seconds": 1.0,
                "tokens_per_s": 1.0,
                "grad_norm_mean": 1.0,
                "grad_norm_max": 1.0,
                "clipped_fraction": 0.0,
                "steps": 3,
            }
        ],
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    ckpt = checkpoint.from_bytes(buffer.getvalue())
    assert ckpt.config.num_layers == 1 and ckpt.history[0].best_epoch is None
    X = _ids(0)
    state = model.begin_state(B)
    assert torch.equal(ckpt.build_model()(X, state)[0], model(X, state)[0])


def test_half_precision_checkpoint_is_half_the_size_and_loads_as_float32() -> None:
    model = build_model("gru", V, 64, seed=1, num_layers=2, embed=16)
    cfg = TrainConfig(model="gru", hidden=64, num_layers=2, embed=16, optimizer="adam", lr=0.01)
    ckpt = checkpoint.Checkpoint(cfg, [chr(0x4E00 + i) for i in range(V)], model.state_dict())
    full, half = checkpoint.to_bytes(ckpt), checkpoint.to_bytes(ckpt, half=True)
    assert len(half) < 0.7 * len(full)
    loaded = checkpoint.from_bytes(half)
    for key, value in loaded.model_state.items():
        assert value.dtype == torch.float32
        assert torch.allclose(value, model.state_dict()[key], rtol=1e-3, atol=1e-4)
    loaded.build_model()
    huge = checkpoint.Checkpoint(cfg, ckpt.vocab, {k: v * 1e6 for k, v in model.state_dict().items()})
    with pytest.raises(CheckpointError, match="float16"):
        checkpoint.to_bytes(huge, half=True)


def test_checkpoint_with_deeper_model_round_trips_and_refuses_a_mismatch() -> None:
    cfg = TrainConfig(model="lstm", hidden=H, num_layers=2, dropout=0.2, embed=4, optimizer="adam", lr=0.01)
    model = build_model("lstm", V, H, num_layers=2, dropout=0.2, embed=4)
    vocab = [chr(0x4E00 + i) for i in range(V)]
    data = checkpoint.to_bytes(checkpoint.Checkpoint(cfg, vocab, model.state_dict()))
    assert checkpoint.from_bytes(data).config.num_layers == 2
    wrong = checkpoint.Checkpoint(
        TrainConfig(model="lstm", hidden=H, num_layers=3, dropout=0.2, embed=4), vocab, model.state_dict()
    )
    with pytest.raises(CheckpointError, match="parameter names differ"):
        checkpoint.from_bytes(checkpoint.to_bytes(wrong))
