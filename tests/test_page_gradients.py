"""Gradients through time page: every section on real (tiny) models, and every bad input as a message."""

from __future__ import annotations

import io
import re

import apptest_helpers_models as helpers
import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from lab_ui.model_source import UPLOAD_KEY
from lm_core.analysis import bptt
from lm_core.checkpoint import from_bytes, to_bytes
from lm_core.models import build_model

pytestmark = pytest.mark.usefixtures("clean_streamlit")  # fresh caches, no thread left behind
TEXT = "我们分开以后天很蓝，不分开的手在风里"


def _page(shipped, *kinds: str, lang: str = "en") -> AppTest:
    shipped(*(kinds or ("rnn", "gru")))
    return helpers.open_page("gradients", lang=lang)


def _type(at: AppTest, text: str) -> AppTest:
    at.text_area(key="gradients:text").set_value(text).run()
    helpers.assert_ok(at)
    return at


def _model_of(trained_checkpoints: dict[str, bytes], kind: str):
    ckpt = from_bytes(trained_checkpoints[kind])
    return ckpt, ckpt.build_model()


def test_every_section_draws_with_two_models_side_by_side(shipped, trained_checkpoints) -> None:
    at = _type(_page(shipped), TEXT)
    assert at.selectbox(key="gradients:second").value.startswith("shipped:")  # the other trained model
    conn = [b for b in helpers.html_bodies(at) if "influence" in b]
    assert len(conn) == 2  # one coloured text per model
    dist = helpers.figure(at, "gradients:distance")
    assert len(dist["data"]) == 2 and dist["layout"]["yaxis"]["type"] == "log"
    assert len(helpers.decode(dist["data"][0]["y"])) == 10 + 1  # k = 0 … num_steps of the tiny config
    for key in ("gradients:rho_curve", "gradients:clip", "gradients:strip", "gradients:next_probs"):
        helpers.figure(at, key)
    assert "Perplexity of this text" in [m.label for m in at.metric]


def test_connectivity_follows_the_chosen_position_and_equals_lm_core(shipped, trained_checkpoints) -> None:
    at = _type(_page(shipped), TEXT)
    at.slider(key="gradients:pos").set_value(5).run()
    helpers.assert_ok(at)
    body = next(b for b in helpers.html_bodies(at) if "influence" in b)
    shown = [float(v) for v in re.findall(r"influence ([0-9.]+)", body)]
    assert len(shown) == 5  # characters 1 … 5 are read, the 6th is predicted
    _, model = _model_of(trained_checkpoints, "rnn")
    ckpt, _ = _model_of(trained_checkpoints, "rnn")
    ids = [ckpt.vocab.index(ch) for ch in TEXT]
    want = bptt.normalise(bptt.connectivity(model, ids, 4))
    np.testing.assert_allclose(shown, want, atol=6e-4)
    at.slider(key="gradients:pos").set_value(9).run()
    body = next(b for b in helpers.html_bodies(at) if "influence" in b)
    assert body.count("influence") == 9


def test_rho_slider_redraws_the_curve_and_clipping_triggers_by_theta(shipped) -> None:
    at = _type(_page(shipped), TEXT)
    at.slider(key="gradients:rho").set_value(0.5).run()
    low = helpers.decode(helpers.figure(at, "gradients:rho_curve")["data"][0]["y"])
    at.slider(key="gradients:rho").set_value(2.0).run()
    high = helpers.decode(helpers.figure(at, "gradients:rho_curve")["data"][0]["y"])
    assert low[-1] / low[0] < 1e-2  # ρ = 0.5: vanishing over num_steps = 10
    assert high[-1] / high[0] > 10  # ρ = 2: exploding
    at.select_slider(key="gradients:theta").set_value(1e-4).run()
    assert "clipping triggers" in helpers.texts(at)
    at.select_slider(key="gradients:theta").set_value(100.0).run()
    assert "no clipping" in helpers.texts(at)


def test_step_through_moves_and_shows_the_traced_state(shipped, trained_checkpoints) -> None:
    at = _type(_page(shipped), TEXT)
    assert "Step 1 of 18" in helpers.texts(at)
    at.button(key="gradients:next").click().run()
    at.button(key="gradients:next").click().run()
    assert "Step 3 of 18" in helpers.texts(at)
    at.button(key="gradients:prev").click().run()
    assert "Step 2 of 18" in helpers.texts(at)
    ckpt, model = _model_of(trained_checkpoints, "rnn")
    traced = model.trace(torch.tensor([[ckpt.vocab.index(ch) for ch in TEXT]]))["H"][1, 0, :16].numpy()
    strip = helpers.figure(at, "gradients:strip")["data"][0]
    z = np.asarray(helpers.decode(strip["z"]))
    assert strip["y"][-1] == "Hₜ"
    np.testing.assert_allclose(z[-1], traced, atol=1e-6)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bad_text_gives_a_message_not_a_traceback(shipped, lang: str) -> None:
    at = _page(shipped, lang=lang)
    _type(at, "")
    assert at.info and not at.get("plotly_chart")
    _type(at, "分" * 201)
    assert "201" in at.error[0].value
    _type(at, "分开xyz<b>")
    warned = at.warning[0].value
    assert "x" in warned and "<b>" not in warned.replace("\\", "")  # named, and shown as text
    _type(at, "ⓧⓨ")
    assert "ⓧ" in helpers.texts(at)


def test_a_checkpoint_with_non_finite_weights_is_refused_with_a_message(shipped, trained_checkpoints) -> None:
    """A diverged (NaN) model never reaches the page's maths: loading names the weights as not finite."""
    folder = shipped("rnn")
    ckpt = from_bytes(trained_checkpoints["gru"])
    ckpt.model_state = {k: torch.full_like(v, float("nan")) for k, v in ckpt.model_state.items()}
    (folder / "0_aa_nan.pt").write_bytes(to_bytes(ckpt))
    at = helpers.open_page("gradients")
    at.selectbox(key="gradients:model_source").set_value("shipped:0_aa_nan.pt").run()
    helpers.assert_ok(at)
    assert any("not finite" in e.value for e in at.error)


def test_2048_hidden_units_are_time_capped_with_a_message(shipped, trained_checkpoints, monkeypatch) -> None:
    ckpt = from_bytes(trained_checkpoints["gru"])
    big = build_model("gru", len(ckpt.vocab), 2048)
    ckpt.model_state = big.state_dict()
    ckpt.config.hidden = 2048
    folder = shipped()
    buf = io.BytesIO(to_bytes(ckpt))
    (folder / "0_big.pt").write_bytes(buf.getvalue())
    at = helpers.open_page("gradients")
    _type(at, TEXT * 6)  # 108 characters, more than the cap lets through at 2,048 units
    assert "Time cap" in helpers.texts(at)
    kept = int(re.search(r"only the first (\d+) characters", helpers.texts(at)).group(1))
    assert kept <= bptt.text_limit(big) < len(TEXT * 6)
    assert f"Step 1 of {kept}:" in helpers.texts(at)  # the analysis really stops at the cap
    helpers.figure(at, "gradients:distance")  # and the capped analysis is drawn


def test_a_session_run_is_used_with_its_corpus_and_fresh_models_of_every_kind_are_offered(shipped) -> None:
    """The model trained in this session: its own corpus feeds the gradient-vs-distance minibatch."""
    from lm_core.models import MODEL_KINDS

    shipped()
    at = helpers.open_page("gradients", lang="zh", prepare=helpers.with_train_job("scratch-rnn", "rnn"))
    assert at.selectbox(key="gradients:model_source").value.startswith("session:train:")
    assert at.text_area(key="gradients:text").value == helpers.tiny_corpus().text.strip()[:60]
    options = at.selectbox(key="gradients:second").options
    assert len([o for o in options if "未训练" in o]) == len(MODEL_KINDS)
    assert "取自你输入的文字" not in helpers.texts(at)  # the corpus, not the typed text, gives the minibatch
    assert "8 行 × 10 步" in helpers.texts(at)  # the run's own B × T
    fresh_lstm = f"fresh:lstm:{helpers.tiny_corpus().vocab_size}:16"
    at.selectbox(key="gradients:second").set_value(fresh_lstm).run()
    helpers.assert_ok(at)
    dist = helpers.figure(at, "gradients:distance")
    assert [tr["name"] for tr in dist["data"]][1].startswith("未训练的新模型")
    assert len(dist["data"]) == 2


def test_an_uploaded_checkpoint_can_be_drawn_beside_the_chosen_model(shipped, trained_checkpoints) -> None:
    import hashlib

    shipped("gru")
    data = trained_checkpoints["gru"]  # the same vocabulary as the shipped model (same tiny corpus)

    def with_upload(at: AppTest) -> None:
        at.session_state[UPLOAD_KEY] = ("mine.pt", hashlib.sha256(data).hexdigest(), data)

    at = helpers.open_page("gradients", prepare=with_upload)
    assert any("mine.pt" in o for o in at.selectbox(key="gradients:second").options)
    at.selectbox(key="gradients:second").set_value("upload").run()
    _type(at, TEXT)
    names = [tr["name"] for tr in helpers.figure(at, "gradients:distance")["data"]]
    assert len(names) == 2 and "mine.pt" in names[1]


@pytest.mark.parametrize("text", [TEXT, TEXT[::-1]])
def test_a_perplexity_above_the_vocabulary_size_is_explained(shipped, trained_checkpoints, text: str) -> None:
    """Millions on a new text puzzle a class: the page says so exactly when it is worse than a uniform guess."""
    at = _type(_page(shipped), text)
    ckpt, model = _model_of(trained_checkpoints, "rnn")
    ids = [ckpt.vocab.index(ch) for ch in text]
    ppl = bptt.surprisal(model, ids).perplexity
    worse = "Worse than a uniform guess" in helpers.texts(at)
    assert worse == (ppl > len(ckpt.vocab)), (ppl, len(ckpt.vocab))


def test_a_warmed_server_draws_both_distance_curves_and_the_first_rho_without_computing_them(
    shipped, monkeypatch
) -> None:
    """After the server's warm-up (`model_source.warm_default_model`), the first visit computes no
    gradient-against-distance curve (neither the chosen shipped model's, nor its default companion's, nor the
    ρ experiment's at its first ρ) and no minibatch gradient."""
    from lab_ui import model_cache, model_source

    corpus = helpers.tiny_corpus().text
    monkeypatch.setattr(model_cache, "find_training_text", lambda name, vocab: (corpus, "songci", {"n": len(corpus)}))
    shipped("gru", "rnn")
    model_source.warm_default_model()
    computed: list[str] = []
    for name in ("gradient_by_distance", "minibatch_gradient"):
        real = getattr(bptt, name)
        monkeypatch.setattr(
            bptt, name, lambda *a, _name=name, _real=real, **kw: computed.append(_name) or _real(*a, **kw)
        )
    at = helpers.open_page("gradients", lang="en")
    helpers.assert_ok(at)
    assert at.selectbox(key="gradients:second").value.startswith("shipped:")
    assert len(helpers.figure(at, "gradients:distance")["data"]) == 2  # both curves drawn
    helpers.figure(at, "gradients:rho_curve")
    assert computed == [], "the first visit computed what the warm-up should have"
    at.slider(key="gradients:rho").set_value(1.5).run()  # another ρ is computed on the visit, as before
    helpers.assert_ok(at)
    assert computed == ["gradient_by_distance", "minibatch_gradient"]


@pytest.mark.parametrize("kinds", [("gru", "rnn"), ("gru",)], ids=["trained-companion", "fresh-companion"])
def test_a_warmed_server_draws_section_one_without_computing_it(shipped, monkeypatch, kinds) -> None:
    """After the server's warm-up, the first visit finds the default text's connectivity and surprise of both
    drawn models (the chosen shipped one and its default companion: the other shipped model with the same
    vocabulary, else a fresh one) in the caches: section 1 computes nothing, so it shows at once."""
    from lab_ui import model_cache, model_source

    corpus = helpers.tiny_corpus().text
    monkeypatch.setattr(model_cache, "find_training_text", lambda name, vocab: (corpus, "songci", {"n": len(corpus)}))
    shipped(*kinds)
    model_source.warm_default_model()
    computed: list[str] = []
    for name in ("connectivity", "surprisal"):
        real = getattr(bptt, name)
        monkeypatch.setattr(bptt, name, lambda *a, _name=name, _real=real: computed.append(_name) or _real(*a))
    at = helpers.open_page("gradients", lang="en")
    helpers.assert_ok(at)
    assert len([b for b in helpers.html_bodies(at) if "influence" in b]) == 2  # both models' section 1 drawn
    second = at.selectbox(key="gradients:second").value
    assert second.startswith("shipped:" if len(kinds) > 1 else "fresh:"), second
    assert computed == [], "the first visit computed what the warm-up should have"
