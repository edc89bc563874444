"""Deeper torch.nn models: layers, dropout between them, an embedding input; old checkpoints unchanged.

Every comparison is against torch.nn's own layers (`reference_forward` feeds the
real nn.RNN/GRU/LSTM with one-hot or embedded input) or against files written
by the code that existed before these options.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lm_core import checkpoint
from lm_core.errors import CheckpointError, ConfigError, localized
from lm_core.models import build_model, detach_state, expected_shapes, parameter_count
from lm_core.training import TrainConfig

V, H, B, T = 13, 8, 3, 5
KINDS = ("rnn", "gru", "lstm")
SHIPPED_GRU = Path(__file__).resolve().parents[1] / "checkpoints" / "songci-gru.pt"


def _ids(seed: int) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def _random_state(model, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, H, generator=gen) * 0.5 for _ in range(model.n_state))


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
