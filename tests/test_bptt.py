"""Gradients through time (`lm_core.analysis.bptt`) against autograd through independent paths and float64 finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lm_core.analysis import bptt
from lm_core.errors import ConfigError, VocabularyError, localized
from lm_core.limits import MAX_GRADIENT_TEXT
from lm_core.models import MODEL_KINDS, build_model, input_rows
from lm_core.training import evaluate_perplexity
from lm_core.vocab import SHOWN_CHARS

V, H = 7, 5
IDS = [0, 3, 1, 4, 4, 2, 6, 5, 1]


def _tiny(kind: str, seed: int = 1, scale: float = 30.0) -> torch.nn.Module:
    """A float64 model whose weights are large enough that every path carries a visible gradient."""
    model = build_model(kind, V, H, seed=seed).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale if kind.startswith("scratch") else 1.5)
            p.add_(0.05)
    return model


def _logp_from_onehots(model, xs: torch.Tensor, target: int) -> torch.Tensor:
    """log p(target) after the model reads one-hot rows `xs` (n, V), via its fast forward.

    Independent of `bptt`: the input projections are `xs @ W_x` fed to the
    hand-written recurrences (scratch) or torch.nn's own layer on one-hot input.
    """
    if model.kind.startswith("scratch"):
        names = {"scratch-rnn": "W_xh", "scratch-gru": "W_xz W_xr W_xh", "scratch-lstm": "W_xi W_xf W_xc W_xo"}
        W = [getattr(model, name) for name in names[model.kind].split()]
        proj = torch.cat([xs @ w for w in W], dim=1)  # (n, k·h)
        from lm_core import recurrences as rec

        h0 = torch.zeros(1, H, dtype=xs.dtype)
        if model.kind == "scratch-rnn":
            hs = rec.TanhRNN.apply(proj[:, None], h0, model.W_hh, model.b_h)
        elif model.kind == "scratch-gru":
            W_zr = torch.cat([model.W_hz, model.W_hr], 1)
            b_zr = torch.cat([model.b_z, model.b_r])
            hs = rec.GRUBook.apply(
                proj[:, None, : 2 * H], proj[:, None, 2 * H :], h0, W_zr, b_zr, model.W_hh, model.b_h
            )
        else:
            W_h = torch.cat([model.W_hi, model.W_hf, model.W_hc, model.W_ho], 1)
            b = torch.cat([model.b_i, model.b_f, model.b_c, model.b_o])
            hs, _ = rec.LSTM.apply(proj[:, None] + b, h0, h0.clone(), W_h)
        logits = hs[-1] @ model.W_hq + model.b_q
    else:
        out, _ = model.rnn(xs[:, None])  # torch.nn's own cell on one-hot input
        logits = model.dense(out[-1])
    return F.log_softmax(logits, dim=-1)[0, target]


@pytest.mark.parametrize(
    ("kind", "embed"),
    [(kind, 0) for kind in MODEL_KINDS] + [(kind, 24) for kind in MODEL_KINDS if not kind.startswith("scratch")],
)  # only torch.nn models have an embedding
def test_fast_connectivity_equals_the_one_hot_reference_in_float32(kind: str, embed: int) -> None:
    """The page's connectivity (gathered rows, one product at the end) against the plain one-hot computation
    it replaced, on float32 models with a vocabulary far larger than the hidden size, as the shipped ones:
    equal to rounding, and the influences the page shows (3 decimals) are the same."""
    vocab = 700
    model = build_model(kind, vocab, 48, embed=embed, seed=3) if embed else build_model(kind, vocab, 48, seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(20.0 if kind.startswith("scratch") else 2.0)
    ids = torch.randint(0, vocab, (60,), generator=torch.Generator().manual_seed(5)).tolist()
    for t in (0, 1, 30, 58):
        fast, ref = bptt.connectivity(model, ids, t), bptt.connectivity_reference(model, ids, t)
        assert fast.shape == ref.shape == (t + 1,)
        np.testing.assert_allclose(fast, ref, rtol=2e-5, atol=0)
        assert [f"{v:.3f}" for v in bptt.normalise(fast)] == [f"{v:.3f}" for v in bptt.normalise(ref)]


def test_fast_connectivity_leaves_no_tap_behind() -> None:
    """After `connectivity`, gathering rows is plain again (no leaf rows noted, nothing requires grad)."""
    model = _tiny("scratch-gru")
    bptt.connectivity(model, IDS, 4)
    rows = input_rows(model.W_xh.detach(), torch.tensor([1, 2]))
    assert not rows.requires_grad


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_connectivity_equals_autograd_and_finite_differences(kind: str) -> None:
    model = _tiny(kind)
    t = 6
    got = bptt.connectivity(model, IDS, t)
    assert got.shape == (t + 1,)

    xs = F.one_hot(torch.tensor(IDS[: t + 1]), V).double().requires_grad_()
    (grad,) = torch.autograd.grad(_logp_from_onehots(model, xs, IDS[t + 1]), xs)
    np.testing.assert_allclose(got, grad.norm(dim=1).numpy(), rtol=1e-8, atol=1e-12)

    # float64 central differences on every one-hot coordinate
    eps = 1e-6
    fd = torch.zeros_like(xs)
    with torch.no_grad():
        for s in range(t + 1):
            for v in range(V):
                up, down = xs.detach().clone(), xs.detach().clone()
                up[s, v] += eps
                down[s, v] -= eps
                fd[s, v] = (_logp_from_onehots(model, up, IDS[t + 1]) - _logp_from_onehots(model, down, IDS[t + 1])) / (
                    2 * eps
                )
    np.testing.assert_allclose(got, fd.norm(dim=1).numpy(), rtol=1e-5, atol=1e-9)
    assert got.min() > 0  # every earlier character reaches the prediction


def _loss_from_state(model, X: torch.Tensor, Y: torch.Tensor, start: int, state) -> torch.Tensor:
    """ℓ_t (sum over rows) when the model is run from `state` taken as the state after step `start − 1`."""
    for s in range(start, X.shape[1]):
        _, state = model.step(X[:, s], state)
    return F.cross_entropy(model.readout(state[0]), Y[:, -1], reduction="sum")


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_hidden_gradients_equal_finite_differences_and_the_fast_path(kind: str) -> None:
    model = _tiny(kind)
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, V, (3, 6), generator=gen)
    Y = torch.randint(0, V, (3, 6), generator=gen)
    norms = bptt.hidden_gradients(model, X, Y)
    T = X.shape[1]
    assert norms.shape == (T + 1, 3)

    # finite differences on H_{t−k}: rerun from the perturbed state (C held for an LSTM)
    with torch.no_grad():
        states = [model.begin_state(3)]
        for s in range(T):
            states.append(model.step(X[:, s], states[-1])[1])
        eps = 1e-6
        for k in (0, 2, T):
            idx = T - k  # states[idx] is the state after step idx − 1
            fd = torch.zeros(3, H, dtype=torch.float64)
            for u in range(H):
                diff = []
                for b in range(3):
                    u_state, d_state = [s.clone() for s in states[idx]], [s.clone() for s in states[idx]]
                    u_state[0][b, u] += eps
                    d_state[0][b, u] -= eps
                    lu = _loss_from_state(model, X, Y, idx, tuple(u_state))
                    ld = _loss_from_state(model, X, Y, idx, tuple(d_state))
                    diff.append((lu - ld) / (2 * eps))
                fd[:, u] = torch.stack(diff)
            np.testing.assert_allclose(norms[k], fd.norm(dim=1).numpy(), rtol=1e-5, atol=1e-9)

    # k = T is the initial state: the fast forward's hand-written backward gives the same gradient
    state = tuple(s.requires_grad_() for s in model.begin_state(3))
    logits, _ = model(X, state)
    loss = F.cross_entropy(logits[-3:], Y[:, -1], reduction="sum")
    (g0,) = torch.autograd.grad(loss, state[0])
    np.testing.assert_allclose(norms[T], g0.norm(dim=1).numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("rho", [0.5, 1.0, 1.37, 2.0])
@pytest.mark.parametrize("kind", ["scratch-rnn", "rnn"])
def test_spectral_radius_after_rescaling_is_rho(kind: str, rho: float) -> None:
    model = build_model(kind, 30, 64, seed=3)
    before = bptt.set_spectral_radius(model, rho)
    assert before != pytest.approx(rho, abs=1e-2)  # the rescale actually changed something
    assert bptt.spectral_radius(bptt.recurrent_weight(model)) == pytest.approx(rho, abs=1e-4)
    again = build_model(kind, 30, 64, seed=3)
    bptt.set_spectral_radius(again, rho, current=before)  # the known radius skips the eigenvalues, same result
    assert torch.equal(bptt.recurrent_weight(again), bptt.recurrent_weight(model))


def test_gradient_shrinks_below_one_and_grows_above_one() -> None:
    """A fresh RNN with tiny activations: ‖∂ℓ/∂H_{t−k}‖ follows ρ^k roughly, down for ρ < 1, up for ρ > 1."""
    ids = [i % 30 for i in range(0, 3000, 7)]
    curves = {}
    for rho in (0.5, 1.8):
        model = build_model("scratch-rnn", 30, 64, seed=0)
        bptt.set_spectral_radius(model, rho)
        curves[rho] = bptt.gradient_by_distance(model, ids, 20, 8).mean
    assert curves[0.5][20] < 1e-3 * curves[0.5][0]
    assert curves[1.8][20] > 1e2 * curves[1.8][0]  # less than 1.8^20: growing H saturates tanh


def test_clipping_view_matches_the_trainer_rule() -> None:
    model = build_model("scratch-rnn", 30, 32, seed=0)
    bptt.set_spectral_radius(model, 1.9)
    ids = [i * 11 % 30 for i in range(2000)]
    X, Y = bptt.corpus_minibatch(ids, 8, 10)
    view = bptt.minibatch_gradient(model, X, Y, theta=1e-4)
    assert view.clipped and view.factor == pytest.approx(1e-4 / view.norm)
    loose = bptt.minibatch_gradient(model, X, Y, theta=view.norm * 2)
    assert not loose.clipped and loose.factor == 1.0 and loose.norm == pytest.approx(view.norm)
    assert all(p.grad is None for p in model.parameters())  # no stale gradients left behind


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_surprisal_gives_the_trainers_perplexity(kind: str) -> None:
    model = _tiny(kind, scale=20.0).float()
    s = bptt.surprisal(model, IDS)
    assert s.bits.shape == (len(IDS) - 1,)
    book = evaluate_perplexity(model, IDS, num_steps=len(IDS) - 1, batch_size=1)
    assert s.perplexity == pytest.approx(book, rel=1e-5)
    assert 2 ** s.bits.mean() == pytest.approx(s.perplexity, rel=1e-9)


def _checked_step_views(model: torch.nn.Module, traced: dict) -> list[tuple[int, bptt.StepView]]:
    """The step views at the first, a middle and the last character of IDS, each checked against `traced`:
    its hidden state is the traced one and its pre-activation is the sum of the terms it shows."""
    views = [(i, bptt.step_view(model, IDS, i)) for i in (0, 4, len(IDS) - 1)]
    for i, view in views:
        np.testing.assert_allclose(view.H, traced["H"][i, 0].numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            view.terms["pre"], view.terms["input"] + view.terms["recurrent"] + view.terms["bias"]
        )
    return views


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_step_view_rebuilds_the_traced_hidden_state(kind: str) -> None:
    model = _tiny(kind, scale=20.0)
    traced = model.trace(torch.tensor([IDS]))
    for i, view in _checked_step_views(model, traced):
        for g, values in view.gates.items():
            np.testing.assert_allclose(values, traced[g][i, 0].numpy(), rtol=1e-10)
        probs = F.softmax(model.readout(traced["H"][i]), -1)[0]
        assert [c for c, _ in view.top] == probs.topk(5).indices.tolist()
        assert view.char_id == IDS[i]
    assert set(bptt.step_view(model, IDS, 0).gates) == {g for g in model.gate_names if g != "C"}


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_step_view_of_a_model_with_an_embedding(kind: str) -> None:
    """The shipped all-Song-ci model reads an embedding, not one-hot: W x is W times the character's row."""
    model = build_model(kind, V, H, seed=2, embed=5).double()
    assert len(_checked_step_views(model, model.trace(torch.tensor([IDS])))) == 3


def test_units_on_span_and_pattern_search() -> None:
    H = np.full((8, 4), -0.5)
    H[3:6, 1] = 0.9  # unit 1 turns on exactly over 3..5
    H[2:6, 2] = 0.9  # unit 2 was already on before the span
    H[3:5, 3] = 0.9  # unit 3 is off at 5
    assert bptt.units_on_span(H, 3, 5, 0.5) == [1]
    assert bptt.units_on_span(H, 3, 4, 0.5) == [1, 3]
    H[3:5, 3] = 0.95  # now unit 3 is further above the threshold: listed first
    H[2, 3] = -0.9
    assert bptt.units_on_span(H, 3, 4, 0.5) == [3, 1]
    states = np.full((20, 4), -1.0)
    states[2:4, [1, 3]] = 1.0
    states[10:15, [1, 3]] = 1.0
    states[17, 1] = 1.0  # only one of the two units
    matches = bptt.find_unit_pattern(states, [1, 3], 0.5)
    assert [(m.start, m.end) for m in matches] == [(10, 14), (2, 3)]


def test_corpus_states_match_a_plain_trace_of_each_row() -> None:
    model = build_model("scratch-gru", 30, 8, seed=0)
    ids = [i * 7 % 30 for i in range(100)]
    states = bptt.corpus_states(model, ids, rows=4)
    assert states.shape == (100, 8)
    row2 = model.trace(torch.tensor([ids[50:75]]))["H"][:, 0].numpy()
    np.testing.assert_allclose(states[50:75], row2, rtol=1e-5, atol=1e-7)


def test_bad_text_and_diverged_models_raise_clear_errors() -> None:
    vocab = {ch: i for i, ch in enumerate("分开不要")}
    with pytest.raises(ConfigError, match="Type a text"):
        bptt.check_text("", vocab)
    with pytest.raises(VocabularyError, match="vocabulary: x\\.") as exc:
        bptt.check_text("分开x要", vocab)
    assert "词典中：x。" in localized(exc.value, "zh")
    many = "".join(chr(0x4F00 + i) for i in range(SHOWN_CHARS + 3))
    assert not set(many) & set(vocab)
    with pytest.raises(VocabularyError, match=r"\(and 3 more\)") as exc:  # the engine's one list format
        bptt.check_text(many, vocab)
    zh = localized(exc.value, "zh")
    assert f"{many[SHOWN_CHARS - 1]}（另有 3 个）" in zh and many[SHOWN_CHARS] not in zh  # 20 named, then the count
    with pytest.raises(ConfigError, match="at most 200"):
        bptt.check_text("分" * 201, vocab)
    assert bptt.check_text("分开", vocab) == [0, 1]
    model = build_model("gru", 4, 8)
    bptt.check_model(model)
    with torch.no_grad():
        model.rnn.weight_hh_l0[0, 0] = math.nan
    with pytest.raises(bptt.DivergedModelError, match="weight_hh_l0"):
        bptt.check_model(model)


def test_work_is_capped_for_2048_hidden_units_and_not_for_256() -> None:
    small = build_model("scratch-rnn", 2000, 256)
    assert not bptt.cap_work(small, 32, 35).capped
    big = build_model("gru", 2000, 2048)
    cap = bptt.cap_work(big, 32, 35)
    assert cap.capped and cap.rows * cap.steps * bptt.step_cost(big) <= bptt.WORK_BUDGET
    assert bptt.text_limit(small) == MAX_GRADIENT_TEXT
    assert 2 <= bptt.text_limit(big) < 60
    assert bptt.search_limit(small) == bptt.MAX_SEARCH_CHARS
    assert bptt.search_limit(big) * 3 * 2048**2 <= bptt.SEARCH_BUDGET < bptt.MAX_SEARCH_CHARS * 3 * 2048**2
