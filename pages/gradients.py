"""Gradients through time: why recurrent networks explode or forget, on the model the student just trained."""

from __future__ import annotations

import copy

import numpy as np
import streamlit as st

from lab_ui import charts, model_source, session
from lab_ui.companions import Companion, companions
from lab_ui.highlight import activation_html
from lab_ui.i18n import Translator, current_lang
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

t = Translator(
    {
        "title": ("梯度穿越时间：RNN 为什么会爆炸或遗忘", "Gradients through time: why RNNs explode or forget"),
        "intro": (
            "训练 RNN 用的是通过时间反向传播：传到 k 步之前那个字的梯度，是 k 个雅可比矩阵的乘积，"
            "所以它随 k 指数式地缩小或放大。这就是书中要裁剪梯度、也是 GRU 和 LSTM 出现的原因。"
            "本页所有数字都来自你选的模型。",
            "An RNN is trained by backpropagation through time: the gradient that reaches a character k steps "
            "back is a product of k Jacobians, so it shrinks or grows exponentially with k. That is why the book "
            "clips the gradient and why GRU and LSTM exist. Every number on this page comes from the model you "
            "pick.",
        ),
        "second": ("对比模型", "Compare with"),
        "second_help": (
            "词典相同的其他模型，或每种结构的未训练新模型（同样的词典和隐藏单元数）。",
            "Another model with the same vocabulary, or a fresh untrained model of any kind (same vocabulary "
            "and hidden size).",
        ),
        "text": ("输入一段文字", "Type a text"),
        "text_help": (
            "最多 {n} 个字。模型从零状态开始逐字读入。",
            "At most {n} characters, read from a zero state.",
        ),
        "type_text": ("请输入一段文字（至少 2 个字）。", "Type a text (at least 2 characters)."),
        "too_long": (
            "这段文字有 {n} 个字，本页最多分析 {m} 个。请缩短。",
            "The text has {n} characters; this page analyses at most {m}. Shorten it.",
        ),
        "short": ("至少需要 2 个模型认识的字。", "At least 2 characters the model knows are needed."),
        "capped_text": (
            "时间上限：{h} 个隐藏单元的模型每步较慢，只分析前 {m} 个字（约 1 秒内完成）。",
            "Time cap: with {h} hidden units a step is slow, so only the first {m} characters are analysed "
            "(to stay near one second).",
        ),
        "diverged": ("{label}：{msg}", "{label}: {msg}"),
        "s1": (
            "1. 连接性：哪些前面的字影响了这次预测",
            "1. Connectivity: which earlier characters drive this prediction",
        ),
        "s1_help": (
            "颜色 = ‖∂ log p(x_(t+1) | x_≤t) / ∂x_s‖，对独热输入 x_s 求梯度，按最大值归一化。"
            "黄色是被预测的字，灰色是模型还没读到的字。",
            "Shade = ‖∂ log p(x_(t+1) | x_≤t) / ∂x_s‖, the gradient with respect to the one-hot input x_s, "
            "divided by its largest value. Yellow is the character being predicted; grey ones are not read yet.",
        ),
        "pos": ("被预测的字（位置 t + 1）", "Character predicted (position t + 1)"),
        "pos_help": ("模型读入它之前的所有字，预测它。", "The model reads every character before it and predicts it."),
        "predicting": (
            "预测第 {i} 个字「{ch}」：p = {p:.3g}",
            "Predicting character {i}, “{ch}”: p = {p:.3g}",
        ),
        "influence": ("{ch} · 第 {i} 个字 · 影响 {v:.3f}", "{ch} · character {i} · influence {v:.3f}"),
        "target_title": ("被预测的字", "the character predicted"),
        "later_title": ("还没读到", "not read yet"),
        "s2": ("2. 梯度随距离的变化", "2. Gradient against distance"),
        "s2_caption": (
            "对语料的一个真实小批量（书中的随机采样，{b} 行 × {T} 步）求平均：‖∂ℓ_t / ∂H_(t−k)‖，t 是最后一步；"
            "k = {T} 是零初始状态（随机采样每个小批量都从它开始）。",
            "Averaged over a real minibatch of the corpus (the book's random sampling, {b} rows × {T} steps): "
            "‖∂ℓ_t / ∂H_(t−k)‖ with t the last step; k = {T} is the zero initial state (random sampling starts "
            "every minibatch from it).",
        ),
        "s2_no_corpus": (
            "找不到这个模型的训练语料，小批量取自你输入的文字。",
            "This model's training text is not available: the minibatch is drawn from the typed text.",
        ),
        "s2_capped": (
            "时间上限：{h} 个隐藏单元时只用 {b} 行 × {T} 步。",
            "Time cap: with {h} hidden units only {b} rows × {T} steps are used.",
        ),
        "dist_title": ("‖∂ℓ_t / ∂H_(t−k)‖（对数刻度）", "‖∂ℓ_t / ∂H_(t−k)‖ (log scale)"),
        "dist_x": ("距离 k（步）", "distance k (steps)"),
        "dist_y": ("梯度范数", "gradient norm"),
        "explain": ("为什么是乘积？", "Why a product?"),
        "explain_text": (
            "书中的 RNN：H_t = tanh(X_t W_xh + H_(t−1) W_hh + b_h)。由链式法则，"
            "∂ℓ_t/∂H_(t−k) 是 k 个雅可比矩阵 ∂H_j/∂H_(j−1) = diag(1 − H_j²) W_hhᵀ 的乘积再乘 ∂ℓ_t/∂H_t。"
            "tanh 的导数 1 − H² ≤ 1，所以大致按 W_hh 的谱半径 ρ 的 k 次方变化：ρ < 1 时梯度消失（模型记不住远处的字），"
            "ρ > 1 且单元未饱和时梯度爆炸（训练发散，书中因此裁剪梯度）。GRU 的更新门 Z 和 LSTM 的遗忘门 F "
            "给梯度开了一条近似恒等的通路（H_t ≈ H_(t−1) 或 C_t ≈ C_(t−1)），所以它们的曲线下降得慢。",
            "The book's RNN: H_t = tanh(X_t W_xh + H_(t−1) W_hh + b_h). By the chain rule, ∂ℓ_t/∂H_(t−k) is "
            "∂ℓ_t/∂H_t times a product of k Jacobians ∂H_j/∂H_(j−1) = diag(1 − H_j²) W_hhᵀ. The tanh factor "
            "1 − H² is at most 1, so the product behaves roughly like ρ^k, with ρ the spectral radius of W_hh: "
            "for ρ < 1 the gradient vanishes (the model cannot learn from distant characters); for ρ > 1 and "
            "unsaturated units it explodes (training diverges, which is why the book clips). The GRU's update "
            "gate Z and the LSTM's forget gate F give the gradient a nearly identity path (H_t ≈ H_(t−1) or "
            "C_t ≈ C_(t−1)), so their curves fall more slowly.",
        ),
        "s3": ("3. 爆炸还是消失：调节 W_hh 的谱半径", "3. Explode or vanish, live: set the spectral radius of W_hh"),
        "s3_caption": (
            "一个未训练的从零实现 RNN（{h} 个隐藏单元，书中的初始化），把 W_hh 缩放到谱半径 ρ（原为 {r0:.3f}）。",
            "A fresh scratch RNN ({h} hidden units, the book's initialisation) with W_hh rescaled to spectral "
            "radius ρ (it was {r0:.3f}).",
        ),
        "rho": ("谱半径 ρ", "Spectral radius ρ"),
        "rho_help": ("W_hh 的特征值绝对值的最大值。", "The largest |eigenvalue| of W_hh."),
        "theta": ("裁剪阈值 θ", "Clipping threshold θ"),
        "theta_help": ("书中 θ = 0.01。", "The book uses θ = 0.01."),
        "rho_line": ("ρ = {rho:.2f}", "ρ = {rho:.2f}"),
        "clip_title": ("一个小批量的梯度范数（虚线：θ）", "Gradient norm of one minibatch (dashed: θ)"),
        "before": ("裁剪前 ‖g‖", "before clipping ‖g‖"),
        "after": ("裁剪后", "after clipping"),
        "clipped": (
            "‖g‖ = {n:.3g} > θ = {th:g}：裁剪生效，所有梯度乘以 θ/‖g‖ = {f:.3g}，更新 lr·g 的方向不变、长度变为 lr·θ。",
            "‖g‖ = {n:.3g} > θ = {th:g}: clipping triggers. Every gradient is multiplied by θ/‖g‖ = {f:.3g}; the "
            "update lr·g keeps its direction and its length becomes lr·θ.",
        ),
        "not_clipped": (
            "‖g‖ = {n:.3g} ≤ θ = {th:g}：不裁剪，更新就是 lr·g。",
            "‖g‖ = {n:.3g} ≤ θ = {th:g}: no clipping, the update is lr·g as computed.",
        ),
        "s4": ("4. 每个字的意外程度", "4. Surprise per character"),
        "s4_caption": (
            "颜色 = −log₂ p(字 | 前面的字)，单位比特；第一个字没有上文，不计。",
            "Shade = −log₂ p(character | what came before), in bits; the first character has no context and "
            "is not scored.",
        ),
        "ppl": ("这段文字的困惑度", "Perplexity of this text"),
        "ppl_help": (
            "exp(平均交叉熵)，书中的定义：最好为 1，均匀猜测时等于词典大小 {v}。",
            "exp(mean cross-entropy), the book's definition: 1 at best, the vocabulary size {v} for a uniform guess.",
        ),
        "ppl_other": ("{label}：{p:,.2f}", "{label}: {p:,.2f}"),
        "ppl_worse": (
            "比均匀猜测（{v}）还差：模型对别的字很有把握，却没料到这些字。背熟了训练语料的模型读到新文本时就是这样。",
            "Worse than a uniform guess ({v}): the model is sure of other characters and did not expect these. "
            "A model that memorised its training text reads any new text like this.",
        ),
        "bits_title": (
            "{ch} · 第 {i} 个字 · {b:.2f} 比特 · p = {p:.3g}",
            "{ch} · character {i} · {b:.2f} bits · p = {p:.3g}",
        ),
        "first_title": ("第一个字：不计", "first character: not scored"),
        "most": ("最意外的字", "Most surprising characters"),
        "col_pos": ("位置", "position"),
        "col_char": ("字", "character"),
        "col_context": ("上文", "before it"),
        "col_bits": ("比特", "bits"),
        "col_p": ("概率", "probability"),
        "s5": ("5. 逐步查看前向计算", "5. Step through the forward pass"),
        "prev": ("上一步", "Previous"),
        "next": ("下一步", "Next"),
        "step_line": (
            "第 {i}/{n} 步：字「{ch}」，编号 {id}（独热向量第 {id} 位为 1）",
            "Step {i} of {n}: character “{ch}”, id {id} (the one-hot row has its 1 at {id})",
        ),
        "strip_title": ("这一步的各项（前 {u} 个单元）", "This step's terms (first {u} units)"),
        "strip_x": ("隐藏单元", "hidden unit"),
        "pre_label": ("预激活（三项之和）", "pre-activation (sum)"),
        "strip_hover": ("{row} · 单元 {unit}：{v}", "{row} · unit {unit}: {v}"),
        "next_title": ("下一个字最可能是", "Most likely next characters"),
        "prob": ("概率", "probability"),
        "strip_note": (
            "各项相加得到预激活，tanh 之后（GRU/LSTM 再经过门）得到 H_t；H_t 与模型 trace() 的输出一致。",
            "The terms add up to the pre-activation; after tanh (and the gates, for GRU/LSTM) it gives H_t, the "
            "same H_t the model's trace() records.",
        ),
    }
)

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


@st.cache_data(max_entries=16, show_spinner=False)
def _distance(
    key: str, data_key: str, num_steps: int, batch: int, _model: CharModel, _ids: list[int]
) -> bptt.DistanceCurve:
    return bptt.gradient_by_distance(_model, _ids, num_steps, batch)


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
    picked = st.selectbox(t("second"), ids, key=key, format_func=labels.get, help=t("second_help"))
    save(key)
    return options[picked]


def _text_ui(choice: ModelChoice, limit: int) -> tuple[str, list[int]] | None:
    """The text and its ids after skipping (and naming) unknown characters; None after saying why."""
    key = f"{PAGE}:text"
    restore(key)
    if not st.session_state.get(key) and f"{PAGE}:text_set" not in st.session_state:
        st.session_state[key] = model_source.sample_text(choice, 60)
    st.session_state[f"{PAGE}:text_set"] = True
    text = st.text_area(t("text"), key=key, height=80, help=t("text_help", n=MAX_GRADIENT_TEXT))
    save(key)
    if not text:
        st.info(t("type_text"))
        return None
    if len(text) > MAX_GRADIENT_TEXT:
        st.error(t("too_long", n=len(text), m=MAX_GRADIENT_TEXT))
        return None
    kept = model_source.known_text_ui(choice, text)
    if kept is None:
        return None
    if len(kept) > limit:
        st.warning(t("capped_text", h=f"{choice.model.num_hiddens:,}", m=limit))
        kept = kept[:limit]
    if len(kept) < 2:
        st.info(t("short"))
        return None
    return kept, choice.encode(kept)


# -- sections -------------------------------------------------------------------------------------------------------


def _connectivity_html(text: str, pos: int, scores: np.ndarray) -> str:
    shades = bptt.normalise(scores)
    colors = charts.value_colors(shades.tolist(), (0.0, 1.0), charts.INFLUENCE_SCALE)
    titles = [t("influence", ch=ch, i=i + 1, v=float(v)) for i, (ch, v) in enumerate(zip(text[:pos], shades))]
    colors += [TARGET_COLOR] + [LATER_COLOR] * (len(text) - pos - 1)
    titles += [t("target_title")] + [t("later_title")] * (len(text) - pos - 1)
    return activation_html(list(text), colors, titles)


def _connectivity_ui(models: list[tuple[str, str, CharModel]], text: str, ids: list[int]) -> None:
    st.subheader(t("s1"))
    st.caption(t("s1_help"))
    key = f"{PAGE}:pos"
    clamp(key, len(text) - 1, 1, len(text) - 1)
    pos = st.slider(t("pos"), 1, len(text) - 1, key=key, help=t("pos_help")) if len(text) > 2 else 1
    save(key)
    for col, (mkey, label, model) in zip(st.columns(len(models)), models):
        with col:
            st.markdown(f"**{escape_markdown(label)}**")
            scores = _connectivity(mkey, text, pos, model, ids)
            p = 2.0 ** -float(_surprisal(mkey, text, model, ids).bits[pos - 1])
            st.caption(escape_markdown(t("predicting", i=pos + 1, ch=visible_char(text[pos]), p=p)))
            st.html(_connectivity_html(text, pos, scores))


def _distance_ui(choice: ModelChoice, models: list[tuple[str, str, CharModel]], corpus: tuple[str, list[int]]) -> None:
    st.subheader(t("s2"))
    data_key, corpus_ids = corpus
    cfg = choice.checkpoint.config
    lines, last = [], None
    for mkey, label, model in models:
        curve = _distance(mkey, data_key, cfg.num_steps, cfg.batch_size, model, corpus_ids)
        lines.append(charts.DistanceLine(label, curve.mean.tolist()))
        last = curve
        if curve.capped:
            st.caption(t("s2_capped", h=f"{model.num_hiddens:,}", b=curve.rows, T=len(curve.mean) - 1))
    if last is not None:
        st.caption(t("s2_caption", b=last.rows, T=len(last.mean) - 1))
    if data_key.startswith("text:"):
        st.caption(t("s2_no_corpus"))
    fig = charts.distance_figure(lines, t("dist_title"), t("dist_x"), t("dist_y"))
    st.plotly_chart(fig, width="stretch", key=f"{PAGE}:distance")
    with st.expander(t("explain")):
        st.latex(DIST_LATEX)
        st.markdown(t("explain_text"))


def _rho_ui(choice: ModelChoice, corpus: tuple[str, list[int]]) -> None:
    st.subheader(t("s3"))
    data_key, corpus_ids = corpus
    cfg = choice.checkpoint.config
    V = len(choice.vocab)
    r0 = _rho_base_radius(V)
    st.caption(t("s3_caption", h=RHO_HIDDEN, r0=r0))
    c1, c2 = st.columns(2)
    rkey, tkey = f"{PAGE}:rho", f"{PAGE}:theta"
    restore(rkey, 1.0)
    restore(tkey, 0.01)
    with c1:
        rho = st.slider(t("rho"), 0.5, 2.0, step=0.05, key=rkey, help=t("rho_help"))
    with c2:
        theta = st.select_slider(t("theta"), THETAS, key=tkey, help=t("theta_help"), format_func=lambda v: f"{v:g}")
    save(rkey)
    save(tkey)
    curve, norm, _ = _rho_run(V, data_key, round(float(rho), 4), cfg.num_steps, cfg.batch_size, corpus_ids)
    factor = min(1.0, theta / norm) if norm > 0 else 1.0
    left, right = st.columns([3, 2])
    with left:
        line = charts.DistanceLine(t("rho_line", rho=rho), curve.tolist())
        fig = charts.distance_figure([line], t("dist_title"), t("dist_x"), t("dist_y"))
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:rho_curve")
    with right:
        fig = charts.clip_figure(norm, theta, factor, (t("before"), t("after")), t("clip_title"), "")
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:clip")
        if norm > theta:
            st.warning(t("clipped", n=norm, th=theta, f=factor))
        else:
            st.success(t("not_clipped", n=norm, th=theta))


def _surprise_ui(models: list[tuple[str, str, CharModel]], text: str, ids: list[int], vocab: list[str]) -> None:
    st.subheader(t("s4"))
    st.caption(t("s4_caption"))
    mkey, _, model = models[0]
    s = _surprisal(mkey, text, model, ids)
    top = max(float(np.log2(len(vocab))), 1.0)
    colors = ["rgb(255, 255, 255)"] + charts.value_colors(s.bits.tolist(), (0.0, top), charts.SURPRISE_SCALE)
    titles = [t("first_title")] + [
        t("bits_title", ch=ch, i=i + 2, b=float(b), p=2.0 ** -float(b))
        for i, (ch, b) in enumerate(zip(text[1:], s.bits))
    ]
    st.html(activation_html(list(text), colors, titles))
    c1, c2 = st.columns([1, 2])
    with c1:
        st.metric(t("ppl"), f"{s.perplexity:,.2f}", help=t("ppl_help", v=f"{len(vocab):,}"))
        if s.perplexity > len(vocab):
            st.caption(t("ppl_worse", v=f"{len(vocab):,}"))
        for okey, olabel, other in models[1:]:
            st.caption(escape_markdown(t("ppl_other", label=olabel, p=_surprisal(okey, text, other, ids).perplexity)))
    with c2:
        st.markdown(f"**{t('most')}**")
        worst = np.argsort(-s.bits, kind="stable")[:5]
        rows = [
            {
                t("col_pos"): int(i) + 2,
                t("col_char"): visible_char(text[i + 1]),
                t("col_context"): "".join(visible_char(c) for c in text[max(0, i - 7) : i + 1]),
                t("col_bits"): round(float(s.bits[i]), 2),
                t("col_p"): f"{2.0 ** -float(s.bits[i]):.3g}",
            }
            for i in worst
        ]
        st.dataframe(rows, hide_index=True, width="stretch", key=f"{PAGE}:surprising")


def _move(key: str, delta: int, n: int) -> None:
    st.session_state[key] = min(max(st.session_state.get(key, 0) + delta, 0), n - 1)


def _step_ui(models: list[tuple[str, str, CharModel]], text: str, ids: list[int], vocab: list[str]) -> None:
    st.subheader(t("s5"))
    mkey, _, model = models[0]
    key = f"{PAGE}:step"
    clamp(key, 0, 0, len(text) - 1)
    c1, c2, c3 = st.columns([1, 1, 6], vertical_alignment="center")
    with c1:
        st.button(
            t("prev"),
            key=f"{PAGE}:prev",
            on_click=_move,
            args=(key, -1, len(text)),
            disabled=st.session_state[key] == 0,
        )
    with c2:
        st.button(
            t("next"),
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
            escape_markdown(t("step_line", i=index + 1, n=len(text), ch=visible_char(text[index]), id=view.char_id))
        )
    labels = _TERM_LABELS[model.kind]
    u = min(STRIP_UNITS, model.num_hiddens)
    rows = [(labels[0], view.terms["input"][:u]), (labels[1], view.terms["recurrent"][:u])]
    rows += [(labels[2], view.terms["bias"][:u]), (t("pre_label"), view.terms["pre"][:u])]
    if "candidate" in view.terms:
        rows.append((labels[3], view.terms["candidate"][:u]))
        rows += [(f"{g}ₜ", v[:u]) for g, v in view.gates.items()]
        if "C" in view.terms:
            rows.append(("Cₜ", view.terms["C"][:u]))
    rows.append(("Hₜ", view.H[:u]))
    left, right = st.columns([3, 2])
    with left:
        fig = charts.step_strip(rows, t("strip_title", u=u), t("strip_x"), t("strip_hover"))
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:strip")
        st.caption(t("strip_note"))
    with right:
        cands = [(vocab[c], p) for c, p in view.top]
        nxt = text[index + 1] if index + 1 < len(text) else None
        fig = charts.prob_bars(cands, t("next_title"), chosen=nxt, y_title=t("prob"))
        st.plotly_chart(fig, width="stretch", key=f"{PAGE}:next_probs")


def _corpus_ids(choice: ModelChoice, text: str, ids: list[int]) -> tuple[str, list[int]]:
    """The model's training text as ids (a cache key names it), or the typed text when it is unavailable."""
    if choice.corpus_text:
        known = [choice.char_to_idx[ch] for ch in choice.corpus_text[:200_000] if ch in choice.char_to_idx]
        if len(known) > choice.checkpoint.config.num_steps + 1:
            return f"corpus:{choice.key}", known
    return f"text:{text}", ids


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    choice = model_source.model_page_ui(PAGE, t("title"), t("intro"))
    if choice is None:
        return
    model_source.live_status_ui(choice, follow=False)
    second = _second_ui(choice)
    try:
        second_model = second.load()
    except LabError as exc:  # a checkpoint that no longer loads: draw the chosen model alone
        st.error(t("diverged", label=escape_markdown(second.label), msg=_message(exc)))
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
            st.error(t("diverged", label=escape_markdown(label), msg=_message(problem)))
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
