"""Hidden states page: what the network carries from one character to the next, unit by unit."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from lab_ui import charts, model_source, session
from lab_ui.highlight import activation_html, copied_html
from lab_ui.i18n import Translator
from lab_ui.model_source import ModelChoice
from lab_ui.persist import follow_default, keep_valid, restore, save
from lab_ui.text import escape_html
from lm_core.analysis import bptt
from lm_core.limits import MAX_HIDDEN_TEXT

PAGE = "hidden"
SORTS = ("variance", "activity", "index")  # variance first: units that change along the text tell the most
DEFAULT_TOP = 32

t = Translator(
    {
        "title": ("隐藏状态：模型记住了什么", "Hidden states: what the model remembers"),
        "intro": (
            "模型每读一个字，就更新一次隐藏状态 H：一个由 h 个数组成的向量，是它对已读内容的全部记忆。"
            "每个数叫一个隐藏单元。下图每一行是一个单元，每一列是一个字。",
            "Each character the model reads updates its hidden state H: a vector of h numbers, all it remembers "
            "of the text so far. Each number is a hidden unit. Below, each row is a unit and each column a "
            "character.",
        ),
        "text": ("输入一段文字", "Type a text"),
        "text_help": (
            "模型从零状态开始逐字读入这段文字（最多 {n} 个字）。默认是训练语料的开头。",
            "The model reads it character by character from a zero state (at most {n} characters). The default "
            "is the start of its training corpus.",
        ),
        "reset_text": ("恢复默认文字", "Default text"),
        "type_text": ("请输入一段文字。", "Type a text to see the hidden states."),
        "follow": ("跟随训练", "Follow training"),
        "follow_help": (
            "每完成一个周期，就用最新的权重重新计算。",
            "Recompute with the newest weights after every epoch.",
        ),
        "source": ("显示", "Show"),
        "source_help": ("隐藏状态 H，或门控循环单元的各个门。", "The hidden state H, or one of the gates."),
        "src_H": ("H 隐藏状态", "H hidden state"),
        "src_Z": ("Z 更新门", "Z update gate"),
        "src_R": ("R 重置门", "R reset gate"),
        "src_I": ("I 输入门", "I input gate"),
        "src_F": ("F 遗忘门", "F forget gate"),
        "src_O": ("O 输出门", "O output gate"),
        "src_C": ("C 记忆细胞", "C memory cell"),
        "sort": ("单元排序", "Order units by"),
        "sort_help": (
            "方差 = 随字符变化的程度（最能说明问题）；活跃度 = 平均 |值|（常包括一直饱和的单元）；编号 = 原始顺序。",
            "Variance = how much it changes along the text (the most telling); activity = mean |value| (often "
            "units stuck near ±1); index = original order.",
        ),
        "sort_activity": ("活跃度", "activity"),
        "sort_variance": ("方差", "variance"),
        "sort_index": ("编号", "index"),
        "top": ("显示前几个单元", "Units shown"),
        "top_help": ("按所选顺序的前 N 个单元。", "The first N units in the chosen order."),
        "unit": ("给文字着色的单元", "Unit that colours the text"),
        "unit_help": ("0 到 h−1。默认是排在最前面的单元。", "0 to h−1. The default is the first unit in the order."),
        "heat_title": (
            "{src}：{n}/{h} 个单元（按{sort}）× {T} 个字",
            "{src}: {n} of {h} units (by {sort}) × {T} characters",
        ),
        "unit_axis": ("单元", "unit"),
        "hover": ("字 {ch} · 单元 {unit}<br>值 {v}", "char {ch} · unit {unit}<br>value {v}"),
        "top_units": ("排在最前的单元：{units}", "First units in this order: {units}"),
        "unit_title": ("单元 #{u} 的{src}，逐字着色", "{src} of unit #{u}, character by character"),
        "char_value": ("{ch} · 第 {i} 个字 · {v:+.3f}", "{ch} · character {i} · {v:+.3f}"),
        "legend_signed": (
            "红色 = 负值，白色 = 0，蓝色 = 正值（范围 {lo:g} 到 {hi:g}）。鼠标悬停可看数值。",
            "Red = negative, white = 0, blue = positive (range {lo:g} to {hi:g}). Hover a character for its value.",
        ),
        "legend_gate": (
            "白色 = 0（门关闭），深蓝 = 1（门打开）。鼠标悬停可看数值。",
            "White = 0 (gate closed), dark blue = 1 (gate open). Hover a character for its value.",
        ),
        "unit_stats": (
            "单元 #{u}：平均 {mean:+.3f}，平均 |值| {act:.3f}，方差 {var:.3f}",
            "Unit #{u}: mean {mean:+.3f}, mean |value| {act:.3f}, variance {var:.3f}",
        ),
        "pat_title": ("找出一个单元的含义", "Find what a unit means"),
        "pat_intro": (
            "选一段文字（起止位置）和一个阈值：列出在这段文字上一直「开」（H ≥ 阈值）、而在它前一个字「关」的单元，"
            "再在模型的训练语料中找出这些单元同时打开的 10 处，附上下文。",
            "Select a span of the text (start and end) and a threshold: the units that are on (H ≥ threshold) "
            "across the whole span and off just before it are listed, then the 10 places in the model's training "
            "corpus where those units are on together, with their context.",
        ),
        "pat_start": ("起始字", "Span start"),
        "pat_end": ("结束字", "Span end"),
        "pat_thr": ("阈值", "Threshold"),
        "pat_thr_help": ("H ≥ 阈值算「开」。", "A unit counts as on when H ≥ threshold."),
        "pat_span": ("所选文字：{span}", "Selected span: {span}"),
        "pat_units": ("{n} 个单元符合（最明确的在前）：{units}", "{n} units match (most decisive first): {units}"),
        "pat_use": ("搜索时使用前几个单元", "Units used in the search"),
        "pat_use_help": (
            "只用最明确的前 N 个单元：单元越多，要求越严，找到的地方越少。",
            "Only the N most decisive units: the more units, the stricter the match and the fewer places.",
        ),
        "pat_using": ("搜索：{units} 同时 ≥ {thr:g}", "Searching for: {units} all ≥ {thr:g}"),
        "pat_none": (
            "没有单元在整段上都开、且在它前一个字关。请降低阈值，或换一段文字。",
            "No unit is on across the whole span and off just before it. Lower the threshold or pick another span.",
        ),
        "pat_no_corpus": (
            "找不到这个模型的训练语料，无法搜索。",
            "This model's training text is not available, so the corpus cannot be searched.",
        ),
        "pat_found": (
            "在训练语料的前 {n:,} 个字中，这些单元同时打开的最长 {k} 处（黄色）：",
            "The {k} longest places in the first {n:,} corpus characters where these units are on together (yellow):",
        ),
        "pat_nowhere": (
            "在训练语料的前 {n:,} 个字中，这些单元从未同时打开。",
            "In the first {n:,} corpus characters these units are never on together.",
        ),
        "pat_mark": ("这些单元同时打开", "these units are on together"),
        "pat_capped": (
            "时间上限：{h} 个隐藏单元时只搜索语料的前 {n} 个字。",
            "Time cap: with {h} hidden units only the first {n} corpus characters are searched.",
        ),
        "pat_place": ("语料第 {a:,}–{b:,} 个字", "corpus characters {a:,}–{b:,}"),
        "explain": ("这些数是什么？", "What are these numbers?"),
        "explain_h": (
            "**隐藏单元**：H 的一个分量。模型没有别的记忆，所以要预测下一个字，它需要的一切（在句中的位置、"
            "前面是什么字、韵脚……）都得编码在这 h 个数里。有些单元看得出含义，多数单元是多种信息的混合。\n\n"
            "RNN 和 GRU 的 H 经过 tanh，LSTM 的 H = O ⊙ tanh(C)，所以 H 的每个值都在 **[-1, 1]** 之间。"
            "接近 ±1 表示单元「饱和」。",
            "**A hidden unit** is one component of H. The model has no other memory, so everything it needs to "
            "predict the next character (position in the line, the characters before, the rhyme…) must be "
            "encoded in these h numbers. Some units mean something you can see; most mix several things.\n\n"
            "In an RNN and a GRU, H comes out of a tanh; in an LSTM, H = O ⊙ tanh(C): so every value of H lies "
            "in **[-1, 1]**. Values near ±1 mean the unit is saturated.",
        ),
        "explain_rnn": (
            "这是普通 RNN：没有门，每一步都用 tanh 把输入和旧状态混合成新状态。",
            "This is a plain RNN: no gates; each step mixes the input and the old state through a tanh.",
        ),
        "explain_gru": (
            "**GRU 的门**是 sigmoid，取值在 [0, 1]。**更新门 Z** 接近 1 时保留旧状态（H_t ≈ H_{t−1}），"
            "接近 0 时换成候选状态 H̃_t。**重置门 R** 接近 0 时，候选状态忽略旧状态，像从句首重新开始。"
            "（torch.nn.GRU 中 R 乘的是 H W_hh + b_hn，而不是 H 本身。）",
            "**GRU gates** are sigmoids in [0, 1]. The **update gate Z** near 1 keeps the old state "
            "(H_t ≈ H_{t−1}); near 0 it takes the candidate H̃_t. The **reset gate R** near 0 makes the "
            "candidate ignore the old state, as if starting a new line. (In torch.nn.GRU, R multiplies "
            "H W_hh + b_hn rather than H itself.)",
        ),
        "explain_lstm": (
            "**LSTM** 多了一个**记忆细胞 C**（不受 [-1, 1] 限制），由三个门控制：**输入门 I** 决定写入多少新内容，"
            "**遗忘门 F** 决定保留多少旧记忆（接近 1 = 记住），**输出门 O** 决定把多少记忆作为 H 输出。",
            "An **LSTM** adds a **memory cell C** (not bounded to [-1, 1]) governed by three gates: the **input "
            "gate I** decides how much new content is written, the **forget gate F** how much old memory is kept "
            "(near 1 = remember), and the **output gate O** how much of the memory is shown as H.",
        ),
    }
)

GRU_LATEX = (
    r"Z_t = \sigma(X_t W_{xz} + H_{t-1} W_{hz} + b_z),\quad R_t = \sigma(X_t W_{xr} + H_{t-1} W_{hr} + b_r)"
    r"\\ \tilde H_t = \tanh(X_t W_{xh} + (R_t \odot H_{t-1}) W_{hh} + b_h),\quad "
    r"H_t = Z_t \odot H_{t-1} + (1 - Z_t) \odot \tilde H_t"
)
LSTM_LATEX = (
    r"I_t, F_t, O_t = \sigma(X_t W_{x\cdot} + H_{t-1} W_{h\cdot} + b_\cdot),\quad "
    r"\tilde C_t = \tanh(X_t W_{xc} + H_{t-1} W_{hc} + b_c)"
    r"\\ C_t = F_t \odot C_{t-1} + I_t \odot \tilde C_t,\quad H_t = O_t \odot \tanh(C_t)"
)
RNN_LATEX = r"H_t = \tanh(X_t W_{xh} + H_{t-1} W_{hh} + b_h)"


@st.cache_data(max_entries=16, show_spinner=False)
def _trace(key: str, text: str, _choice: ModelChoice) -> dict[str, np.ndarray]:
    """Every recorded quantity as a (h, T) array; cached so a widget change does not re-run the model."""
    x = torch.tensor([_choice.encode(text)])
    return {name: v[:, 0, :].T.float().numpy().copy() for name, v in _choice.model.trace(x).items()}


def _order(values: np.ndarray, sort: str) -> np.ndarray:
    """Unit ids, most interesting first (ties keep index order, so the order is deterministic)."""
    if sort == "activity":
        return np.argsort(-np.abs(values).mean(axis=1), kind="stable")
    if sort == "variance":
        return np.argsort(-values.var(axis=1), kind="stable")
    return np.arange(values.shape[0])


def _scale(source: str, values: np.ndarray) -> tuple[tuple[float, float], str]:
    """Colour range and scale: tanh-bounded H in [-1, 1], gates in [0, 1], the LSTM cell symmetric."""
    if source in ("Z", "R", "I", "F", "O"):
        return (0.0, 1.0), charts.GATE_SCALE
    if source == "C":
        m = float(np.abs(values).max()) if values.size else 1.0
        m = m if m > 1e-6 else 1.0
        return (-m, m), charts.SIGNED_SCALE
    return (-1.0, 1.0), charts.SIGNED_SCALE


def _reset_text(default: str) -> None:
    st.session_state[f"{PAGE}:text"] = default


def _text_ui(choice: ModelChoice) -> str | None:
    """The text to trace, with unknown characters skipped (and named); None when nothing is left."""
    key = f"{PAGE}:text"
    default = model_source.sample_text(choice)
    follow_default(key, default)  # an untouched default follows the model; an edited text is the user's
    text_col, button_col = st.columns([6, 1], vertical_alignment="bottom")
    with text_col:
        text = st.text_area(
            t("text"), key=key, max_chars=MAX_HIDDEN_TEXT, height=80, help=t("text_help", n=MAX_HIDDEN_TEXT)
        )
    with button_col:
        st.button(t("reset_text"), key=f"{PAGE}:reset", on_click=_reset_text, args=(default,), width="stretch")
    save(key)
    if not text:
        st.info(t("type_text"))
        return None
    return model_source.known_text_ui(choice, text, offer_default=True)


def _controls_ui(choice: ModelChoice, h: int, order_for) -> tuple[str, str, int, int]:
    """Source (H or a gate), order, number of rows and the unit that colours the text."""
    sources = ["H", *choice.gate_names]
    keys = {name: f"{PAGE}:{name}" for name in ("source", "sort", "top", "unit")}
    keep_valid(keys["source"], "H", sources)
    keep_valid(keys["sort"], "variance", list(SORTS))
    # Labels are bound now, not looked up lazily: AppTest calls format_func outside the script run.
    source_labels = {s: t(f"src_{s}") for s in sources}
    sort_labels = {s: t(f"sort_{s}") for s in SORTS}
    source = "H"
    if len(sources) > 1:
        source = st.radio(
            t("source"),
            sources,
            key=keys["source"],
            help=t("source_help"),
            horizontal=True,
            format_func=source_labels.get,
        )
    cols = st.columns(3)
    with cols[0]:
        sort = st.selectbox(t("sort"), SORTS, key=keys["sort"], help=t("sort_help"), format_func=sort_labels.get)
    order = order_for(source, sort)
    keep_valid(keys["top"], min(h, DEFAULT_TOP), list(range(1, h + 1)))
    keep_valid(keys["unit"], int(order[0]), list(range(h)))
    with cols[1]:
        top = st.slider(t("top"), 1, h, key=keys["top"], help=t("top_help")) if h > 1 else 1
    with cols[2]:
        unit = int(st.number_input(t("unit"), 0, h - 1, step=1, key=keys["unit"], help=t("unit_help")))
    for key in keys.values():
        save(key)
    return source, sort, top, unit


def _explain_ui(choice: ModelChoice) -> None:
    with st.expander(t("explain")):
        st.markdown(t("explain_h"))
        gates = choice.gate_names
        if "Z" in gates:
            st.markdown(t("explain_gru"))
            st.latex(GRU_LATEX)
        elif "F" in gates:
            st.markdown(t("explain_lstm"))
            st.latex(LSTM_LATEX)
        else:
            st.markdown(t("explain_rnn"))
            st.latex(RNN_LATEX)


@st.cache_data(max_entries=8, show_spinner=False)
def _corpus_states(key: str, corpus: str, _choice: ModelChoice) -> np.ndarray:
    """H at every position of the (searched part of the) training text, once per weights version."""
    return bptt.corpus_states(_choice.model, _choice.encode(corpus))


def _pattern_ui(choice: ModelChoice, text: str, H: np.ndarray) -> None:
    """LSTMVis-style search: units that switch on over a span, and where in the corpus they fire together."""
    st.subheader(t("pat_title"))
    st.caption(t("pat_intro"))
    n = len(text)
    keys = {name: f"{PAGE}:pat_{name}" for name in ("start", "end", "thr")}
    keep_valid(keys["start"], max(1, n - 1), list(range(1, n + 1)))
    c1, c2, c3 = st.columns(3)
    with c1:
        start = int(st.number_input(t("pat_start"), 1, n, step=1, key=keys["start"]))
    keep_valid(keys["end"], n, list(range(start, n + 1)))
    with c2:
        end = int(st.number_input(t("pat_end"), start, n, step=1, key=keys["end"]))
    restore(keys["thr"], 0.3)
    with c3:
        thr = float(st.slider(t("pat_thr"), -1.0, 1.0, step=0.05, key=keys["thr"], help=t("pat_thr_help")))
    for key in keys.values():
        save(key)
    st.html(copied_html(text, 0, [(start - 1, end)], t("pat_mark"), ""))
    units = bptt.units_on_span(H.T, start - 1, end - 1, thr)
    if not units:
        st.info(t("pat_none"))
        return
    st.caption(t("pat_units", n=len(units), units=", ".join(f"#{u}" for u in units[:40])))
    use_key = f"{PAGE}:pat_use"
    keep_valid(use_key, min(3, len(units)), list(range(1, len(units) + 1)))
    use = int(st.number_input(t("pat_use"), 1, len(units), step=1, key=use_key, help=t("pat_use_help")))
    save(use_key)
    units = units[:use]
    st.caption(t("pat_using", units=", ".join(f"#{u}" for u in units), thr=thr))
    if not choice.corpus_text:
        st.info(t("pat_no_corpus"))
        return
    limit = bptt.search_limit(choice.model)
    corpus = choice.known(choice.corpus_text[:limit])
    if limit < bptt.MAX_SEARCH_CHARS and len(choice.corpus_text) > limit:
        st.caption(t("pat_capped", h=f"{choice.model.num_hiddens:,}", n=f"{limit:,}"))
    matches = bptt.find_unit_pattern(_corpus_states(choice.key, corpus, choice), units, thr)
    if not matches:
        st.info(t("pat_nowhere", n=len(corpus)))
        return
    st.caption(t("pat_found", n=len(corpus), k=len(matches)))
    pad = 12
    parts = []
    for m in matches:
        a = max(0, m.start - pad)
        snippet = corpus[a : m.end + 1 + pad]
        parts.append(copied_html(snippet, 0, [(m.start - a, m.end + 1 - a)], t("pat_mark"), ""))
        place = escape_html(t("pat_place", a=m.start + 1, b=m.end + 1))
        parts.append(f'<div style="color:#777;font-size:0.8rem">{place}</div>')
    st.html("".join(parts))


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    choice = model_source.model_page_ui(PAGE, t("title"), t("intro"))
    if choice is None:
        return
    if choice.job is not None and not choice.job.done:
        follow = st.toggle(t("follow"), value=True, key=f"{PAGE}:follow", help=t("follow_help"))
        model_source.live_status_ui(choice, follow)
    text = _text_ui(choice)
    if text is None:
        return
    traces = _trace(choice.key, text, choice)
    h = traces["H"].shape[0]
    source, sort, top, unit = _controls_ui(choice, h, lambda src, srt: _order(traces[src], srt))
    values = traces[source]
    order = _order(values, sort)
    shown = order[:top]
    zrange, scale = _scale(source, values)
    fig = charts.hidden_heatmap(
        values[shown],
        list(text),
        shown.tolist(),
        title=t("heat_title", src=t(f"src_{source}"), n=len(shown), h=h, sort=t(f"sort_{sort}"), T=len(text)),
        y_title=t("unit_axis"),
        zrange=zrange,
        colorscale=scale,
        marked_unit=unit,
        hover=t("hover"),
    )
    st.plotly_chart(fig, width="stretch", key=f"{PAGE}:heatmap")
    st.caption(t("top_units", units=", ".join(f"#{u}" for u in order[:10])))

    st.subheader(t("unit_title", u=unit, src=t(f"src_{source}")))
    row = values[unit]
    colors = charts.value_colors(row.tolist(), zrange, scale)
    titles = [t("char_value", ch=ch, i=i + 1, v=float(v)) for i, (ch, v) in enumerate(zip(text, row))]
    st.html(activation_html(list(text), colors, titles))
    lo, hi = zrange
    st.caption(t("legend_gate") if scale == charts.GATE_SCALE else t("legend_signed", lo=round(lo, 3), hi=round(hi, 3)))
    st.caption(t("unit_stats", u=unit, mean=float(row.mean()), act=float(np.abs(row).mean()), var=float(row.var())))
    _explain_ui(choice)
    _pattern_ui(choice, text, traces["H"])


main()
