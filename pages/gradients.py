"""Gradients through time: why recurrent networks explode or forget, on the model the student just trained."""

from __future__ import annotations

import copy

import numpy as np
import streamlit as st

from lab_ui import charts, model_cache, model_source, session, turns
from lab_ui.companions import Companion, companions
from lab_ui.highlight import activation_html
from lab_ui.i18n import current_lang, t
from lab_ui.model_source import ModelChoice
from lab_ui.persist import clamp, restore, save
from lab_ui.text import escape_markdown, visible_char
from lm_core.analysis import bptt
from lm_core.errors import LabError, detached, localized
from lm_core.limits import MAX_GRADIENT_TEXT
from lm_core.models import CharModel, build_model

PAGE = "gradients"
RHO_HIDDEN = 256  # the book's h for the ρ experiment's fresh RNN
THETAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
STRIP_UNITS = 32
TARGET_COLOR = "rgb(255, 213, 79)"  # the character being predicted
LATER_COLOR = "rgb(238, 238, 238)"  # characters the prediction cannot see


DIST_LATEX = (
    r"\frac{\partial \ell_t}{\partial H_{t-k}} = \frac{\partial \ell_t}{\partial H_t}"
    r"\prod_{j=t-k+1}^{t} \frac{\partial H_j}{\partial H_{j-1}},\qquad "
    r"\frac{\partial H_j}{\partial H_{j-1}} = \operatorname{diag}(1 - H_j^2)\, W_{hh}^\top"
)

# (input term, recurrent term, bias, the tanh's output) per model kind: the book's symbols, not translated.
_TERM_LABELS = {
    "scratch-rnn": ("Xₜ W_xh", "Hₜ₋₁ W_hh", "b_h", "Hₜ = tanh(·)"),
    "rnn": ("W_ih xₜ", "W_hh Hₜ₋₁", "b_ih + b_hh", "Hₜ = tanh(·)"),
    "scratch-gru": ("Xₜ W_xh", "(Rₜ ⊙ Hₜ₋₁) W_hh", "b_h", "H̃ₜ = tanh(·)"),
    "gru": ("W_in xₜ", "Rₜ ⊙ (W_hn Hₜ₋₁ + b_hn)", "b_in", "H̃ₜ = tanh(·)"),
    "scratch-lstm": ("Xₜ W_xc", "Hₜ₋₁ W_hc", "b_c", "C̃ₜ = tanh(·)"),
    "lstm": ("W_ig xₜ", "W_hg Hₜ₋₁", "b_ig + b_hg", "C̃ₜ = tanh(·)"),
}


# -- cached computations (keyed by the weights' version and the text) ------------------------------------------


@st.cache_data(max_entries=64, show_spinner=False)
def _connectivity(key: str, text: str, pos: int, _model: CharModel, _ids: list[int]) -> np.ndarray:
    return bptt.connectivity(_model, _ids, pos - 1)


@st.cache_data(max_entries=32, show_spinner=False)
def _surprisal(key: str, text: str, _model: CharModel, _ids: list[int]) -> bptt.Surprisal:
    return bptt.surprisal(_model, _ids)


@st.cache_data(max_entries=64, show_spinner=False)
def _step(key: str, text: str, index: int, _model: CharModel, _ids: list[int]) -> bptt.StepView:
    return bptt.step_view(_model, _ids, index)


@st.cache_resource(max_entries=4, show_spinner=False)
def _rho_base(vocab_size: int) -> CharModel:
    """The fresh RNN of the ρ experiment; never changed (each ρ rescales a copy)."""
    return build_model("scratch-rnn", vocab_size, RHO_HIDDEN, seed=0)


@st.cache_data(max_entries=4, show_spinner=False)
def _rho_base_radius(vocab_size: int) -> float:
    """ρ of the fresh RNN's W_hh before rescaling: one eigenvalue computation per vocabulary size."""
    return bptt.spectral_radius(bptt.recurrent_weight(_rho_base(vocab_size)))


@st.cache_data(max_entries=32, show_spinner=False)
def _problem(key: str, _model: CharModel) -> LabError | None:
    """Why a model cannot be differentiated (diverged), once per weights version; shown with `localized`."""
    try:
        bptt.check_model(_model)
    except LabError as exc:
        return detached(exc)
    return None


@st.cache_data(max_entries=64, show_spinner=False)
def _rho_run(
    vocab_size: int, data_key: str, rho: float, num_steps: int, batch: int, _ids: list[int]
) -> tuple[np.ndarray, float, float]:
    """(gradient by distance, minibatch gradient norm, loss) of the fresh RNN rescaled to ρ."""
    model = copy.deepcopy(_rho_base(vocab_size))
    bptt.set_spectral_radius(model, rho, current=_rho_base_radius(vocab_size))
    curve = bptt.gradient_by_distance(model, _ids, num_steps, batch)
    X, Y = bptt.corpus_minibatch(_ids, batch, num_steps)
    view = bptt.minibatch_gradient(model, X, Y, theta=1.0)
    return curve.mean, view.norm, view.loss


# -- widgets ------------------------------------------------------------------------------------------------------


def _message(exc: LabError) -> str:
    return escape_markdown(localized(exc, current_lang()))


def _second_ui(choice: ModelChoice) -> Companion:
    """The model drawn beside the chosen one: a trained one with the same vocabulary if any, else a fresh GRU."""
    options = companions(choice)
    ids = list(options)
    trained = [i for i in ids if not i.startswith("fresh:")]
    wanted = "scratch-gru" if choice.checkpoint.config.model != "scratch-gru" else "scratch-rnn"
    default = trained[0] if trained else next(i for i in ids if i.startswith(f"fresh:{wanted}:"))
    key = f"{PAGE}:second"
    restore(key)
    if st.session_state.get(key) not in options:
        st.session_state[key] = default
    labels = {i: options[i].label for i in ids}
    picked = st.selectbox(t("gradients.second"), ids, key=key, format_func=labels.get, help=t("gradients.second_help"))
    save(key)
    return options[picked]


def _text_ui(choice: ModelChoice, limit: int) -> tuple[str, list[int]] | None:
    """The text and its ids after skipping (and naming) unknown characters; None after saying why."""
    key = f"{PAGE}:text"
    restore(key)
    if not st.session_state.get(key) and f"{PAGE}:text_set" not in st.session_state:
        st.session_state[key] = model_source.sample_text(choice, 60)
    st.session_state[f"{PAGE}:text_set"] = True
    text = st.text_area(t("gradients.text"), key=key, height=80, help=t("gradients.text_help", n=MAX_GRADIENT_TEXT))
    save(key)
    if not text:
        st.info(t("gradients.type_text"))
        return None
    if len(text) > MAX_GRADIENT_TEXT:
        st.error(t("gradients.too_long", n=len(text), m=MAX_GRADIENT_TEXT))
        return None
    kept = model_source.known_text_ui(choice, text)
    if kept is None:
        return None
    if len(kept) > limit:
        st.warning(t("gradients.capped_text", h=f"{choice.model.num_hiddens:,}", m=limit))
        kept = kept[:limit]
    if len(kept) < 2:
        st.info(t("gradients.short"))
        return None
    return kept, choice.encode(kept)


# -- sections -------------------------------------------------------------------------------------------------------


def _connectivity_html(text: str, pos: int, scores: np.ndarray) -> str:
    shades = bptt.normalise(scores)
    colors = charts.value_colors(shades.tolist(), (0.0, 1.0), charts.INFLUENCE_SCALE)
    titles = [t("gradients.influence", ch=ch, i=i + 1, v=float(v)) for i, (ch, v) in enumerate(zip(text[:pos], shades))]
    colors += [TARGET_COLOR] + [LATER_COLOR] * (len(text) - pos - 1)
    titles += [t("gradients.target_title")] + [t("gradients.later_title")] * (len(text) - pos - 1)
    return activation_html(list(text), colors, titles)


@turns.fragment
def _connectivity_ui(models: list[tuple[str, str, CharModel]], text: str, ids: list[int]) -> None:
    """Section 1, a fragment: moving its slider reruns this section alone, not the page's other analyses."""
    st.subheader(t("gradients.s1"))
    st.caption(t("gradients.s1_help"))
    key = f"{PAGE}:pos"
    clamp(key, len(text) - 1, 1, len(text) - 1)
    pos = st.slider(t("gradients.pos"), 1, len(text) - 1, key=key, help=t("gradients.pos_help")) if len(text) > 2 else 1
    save(key)
    for col, (mkey, label, model) in zip(st.columns(len(models)), models):
        with col:
            st.markdown(f"**{escape_markdown(label)}**")
            with st.spinner(t("gradients.computing")):
                scores = _connectivity(mkey, text, pos, model, ids)
                p = 2.0 ** -float(_surprisal(mkey, text, model, ids).bits[pos - 1])
            st.caption(escape_markdown(t("gradients.predicting", i=pos + 1, ch=visible_char(text[pos]), p=p)))
            st.html(_connectivity_html(text, pos, scores))


def _distance_ui(choice: ModelChoice, models: list[tuple[str, str, CharModel]], corpus: tuple[str, list[int]]) -> None:
    st.subheader(t("gradients.s2"))
    data_key, corpus_ids = corpus
    cfg = choice.checkpoint.config
    lines, last = [], None
    for mkey, label, model in models:
        with st.spinner(t("gradients.computing")):
            curve = model_cache.distance_curve(mkey, data_key, cfg.num_steps, cfg.batch_size, model, corpus_ids)
        lines.append(charts.DistanceLine(label, curve.mean.tolist()))
        last = curve
        if curve.capped:
            st.caption(t("gradients.s2_capped", h=f"{model.num_hiddens:,}", b=curve.rows, T=len(curve.mean) - 1))
    if last is not None:
        st.caption(t("gradients.s2_caption", b=last.rows, T=len(last.mean) - 1))
    if data_key.startswith("text:"):
        st.caption(t("gradients.s2_no_corpus"))
    fig = charts.distance_figure(lines, t("gradients.dist_title"), t("gradients.dist_x"), t("gradients.dist_y"))
    st.plotly_chart(fig, width="stretch", key=f"{PAGE}:distance")
    with st.expander(t("gradients.explain")):
        st.latex(DIST_LATEX)
        st.markdown(t("gradients.explain_text"))


@turns.fragment
def _rho_ui(choice: ModelChoice, corpus: tuple[str, list[int]]) -> None:
    """Section 3, a fragment: a move of ρ or θ reruns this section alone (it took 2.7 s as a full page rerun)."""
    st.subheader(t("gradients.s3"))
    data_key, corpus_ids = corpus
    cfg = choice.checkpoint.config
    V = len(choice.vocab)
    r0 = _rho_base_radius(V)
    st.caption(t("gradients.s3_caption", h=RHO_HIDDEN, r0=r0))
    c1, c2 = st.columns(2)
    rkey, tkey = f"{PAGE}:rho", f"{PAGE}:theta"
    restore(rkey, 1.0)
    restore(tkey, 0.01)
    with c1:
        rho = st.slider(t("gradients.rho"), 0.5, 2.0, step=0.05, key=rkey, help=t("gradients.rho_help"))
    with c2:
        theta = st.select_slider(
            t("gradients.theta"), THETAS, key=tkey, help=t("gradients.theta_help"), format_func=lambda v: f"{v:g}"
        )
    save(rkey)
    save(tkey)
    with st.spinner(t("gradients.computing")):
        curve, norm, _ = _rho_run(V, data_key, round(float(rho), 4), cfg.num_steps, cfg.batch_size, corpus_ids)
    factor = min(1.0, theta / norm) if norm > 0 else 1.0
    left, right = st.columns([3, 2])
    with left:
        line = charts.DistanceLine(t("gradients.rho_line", rho=rho), curve.tolist())
        fig = charts.distance_figure([line], t("gradients.dist_title"), t("gradients.dist_x"), t("gradients.dist_y"))
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:rho_curve")
    with right:
        fig = charts.clip_figure(
            norm, theta, factor, (t("gradients.before"), t("gradients.after")), t("gradients.clip_title"), ""
        )
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:clip")
        if norm > theta:
            st.warning(t("gradients.clipped", n=norm, th=theta, f=factor))
        else:
            st.success(t("gradients.not_clipped", n=norm, th=theta))


def _surprise_ui(models: list[tuple[str, str, CharModel]], text: str, ids: list[int], vocab: list[str]) -> None:
    st.subheader(t("gradients.s4"))
    st.caption(t("gradients.s4_caption"))
    mkey, _, model = models[0]
    s = _surprisal(mkey, text, model, ids)
    top = max(float(np.log2(len(vocab))), 1.0)
    colors = ["rgb(255, 255, 255)"] + charts.value_colors(s.bits.tolist(), (0.0, top), charts.SURPRISE_SCALE)
    titles = [t("gradients.first_title")] + [
        t("gradients.bits_title", ch=ch, i=i + 2, b=float(b), p=2.0 ** -float(b))
        for i, (ch, b) in enumerate(zip(text[1:], s.bits))
    ]
    st.html(activation_html(list(text), colors, titles))
    c1, c2 = st.columns([1, 2])
    with c1:
        st.metric(t("gradients.ppl"), f"{s.perplexity:,.2f}", help=t("gradients.ppl_help", v=f"{len(vocab):,}"))
        if s.perplexity > len(vocab):
            st.caption(t("gradients.ppl_worse", v=f"{len(vocab):,}"))
        for okey, olabel, other in models[1:]:
            st.caption(
                escape_markdown(t("gradients.ppl_other", label=olabel, p=_surprisal(okey, text, other, ids).perplexity))
            )
    with c2:
        st.markdown(f"**{t('gradients.most')}**")
        worst = np.argsort(-s.bits, kind="stable")[:5]
        rows = [
            {
                t("gradients.col_pos"): int(i) + 2,
                t("gradients.col_char"): visible_char(text[i + 1]),
                t("gradients.col_context"): "".join(visible_char(c) for c in text[max(0, i - 7) : i + 1]),
                t("gradients.col_bits"): round(float(s.bits[i]), 2),
                t("gradients.col_p"): f"{2.0 ** -float(s.bits[i]):.3g}",
            }
            for i in worst
        ]
        st.dataframe(rows, hide_index=True, width="stretch", key=f"{PAGE}:surprising")


def _move(key: str, delta: int, n: int) -> None:
    st.session_state[key] = min(max(st.session_state.get(key, 0) + delta, 0), n - 1)


def _step_ui(models: list[tuple[str, str, CharModel]], text: str, ids: list[int], vocab: list[str]) -> None:
    st.subheader(t("gradients.s5"))
    mkey, _, model = models[0]
    key = f"{PAGE}:step"
    clamp(key, 0, 0, len(text) - 1)
    c1, c2, c3 = st.columns([1, 1, 6], vertical_alignment="center")
    with c1:
        st.button(
            t("gradients.prev"),
            key=f"{PAGE}:prev",
            on_click=_move,
            args=(key, -1, len(text)),
            disabled=st.session_state[key] == 0,
        )
    with c2:
        st.button(
            t("gradients.next"),
            key=f"{PAGE}:next",
            on_click=_move,
            args=(key, 1, len(text)),
            disabled=st.session_state[key] >= len(text) - 1,
        )
    index = st.session_state[key]
    save(key)
    view = _step(mkey, text, index, model, ids)
    with c3:
        st.markdown(
            escape_markdown(
                t("gradients.step_line", i=index + 1, n=len(text), ch=visible_char(text[index]), id=view.char_id)
            )
        )
    labels = _TERM_LABELS[model.kind]
    u = min(STRIP_UNITS, model.num_hiddens)
    rows = [(labels[0], view.terms["input"][:u]), (labels[1], view.terms["recurrent"][:u])]
    rows += [(labels[2], view.terms["bias"][:u]), (t("gradients.pre_label"), view.terms["pre"][:u])]
    if "candidate" in view.terms:
        rows.append((labels[3], view.terms["candidate"][:u]))
        rows += [(f"{g}ₜ", v[:u]) for g, v in view.gates.items()]
        if "C" in view.terms:
            rows.append(("Cₜ", view.terms["C"][:u]))
    rows.append(("Hₜ", view.H[:u]))
    left, right = st.columns([3, 2])
    with left:
        fig = charts.step_strip(
            rows, t("gradients.strip_title", u=u), t("gradients.strip_x"), t("gradients.strip_hover")
        )
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:strip")
        st.caption(t("gradients.strip_note"))
    with right:
        cands = [(vocab[c], p) for c, p in view.top]
        nxt = text[index + 1] if index + 1 < len(text) else None
        fig = charts.prob_bars(cands, t("gradients.next_title"), chosen=nxt, y_title=t("gradients.prob"))
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:next_probs")


def _corpus_ids(choice: ModelChoice, text: str, ids: list[int]) -> tuple[str, list[int]]:
    """The model's training text as ids (a cache key names it), or the typed text when it is unavailable."""
    corpus = model_cache.corpus_ids(choice.key, choice.char_to_idx, choice.corpus_text, choice.checkpoint.config)
    return corpus if corpus is not None else (f"text:{text}", ids)


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    choice = model_source.model_page_ui(PAGE, t("gradients.title"), t("gradients.intro"))
    if choice is None:
        return
    model_source.live_status_ui(choice, follow=False)
    second = _second_ui(choice)
    try:
        second_model = second.load()
    except LabError as exc:  # a checkpoint that no longer loads: draw the chosen model alone
        st.error(t("gradients.diverged", label=escape_markdown(second.label), msg=_message(exc)))
        second_model = None
    models = [(choice.key, choice.label, choice.model)]
    if second_model is not None:
        models.append((second.key, second.label, second_model))
    healthy = []
    for mkey, label, model in models:
        problem = _problem(mkey, model)
        if problem is None:
            healthy.append((mkey, label, model))
        else:
            st.error(t("gradients.diverged", label=escape_markdown(label), msg=_message(problem)))
    limit = min(bptt.text_limit(m) for _, _, m in models)
    typed = _text_ui(choice, limit)
    if typed is not None and healthy:
        text, ids = typed
        _connectivity_ui(healthy, text, ids)
        _distance_ui(choice, healthy, _corpus_ids(choice, text, ids))
    if typed is not None:
        _rho_ui(choice, _corpus_ids(choice, *typed))
    if typed is not None and healthy:
        _surprise_ui(healthy, text, ids, choice.vocab)
        _step_ui(healthy, text, ids, choice.vocab)


main()
