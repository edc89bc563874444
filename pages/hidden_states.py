"""Hidden states page: what the network carries from one character to the next, unit by unit."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from lab_ui import charts, model_cache, model_source, session
from lab_ui.highlight import activation_html, copied_html
from lab_ui.i18n import N_, t
from lab_ui.model_source import ModelChoice
from lab_ui.persist import follow_default, keep_valid, restore, save
from lab_ui.text import escape_html
from lm_core.analysis import bptt
from lm_core.limits import MAX_HIDDEN_TEXT

PAGE = "hidden"
SORTS = ("variance", "activity", "index")  # variance first: units that change along the text tell the most
DEFAULT_TOP = 32
# What the heatmap shows: H, or a gate of a GRU (Z, R) or an LSTM (I, F, O, and its cell C).
SOURCE_LABELS = {
    "H": N_("hidden.src_H"),
    "Z": N_("hidden.src_Z"),
    "R": N_("hidden.src_R"),
    "I": N_("hidden.src_I"),
    "F": N_("hidden.src_F"),
    "O": N_("hidden.src_O"),
    "C": N_("hidden.src_C"),
}
SORT_LABELS = {
    "variance": N_("hidden.sort_variance"),
    "activity": N_("hidden.sort_activity"),
    "index": N_("hidden.sort_index"),
}


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
            t("hidden.text"),
            key=key,
            max_chars=MAX_HIDDEN_TEXT,
            height=80,
            help=t("hidden.text_help", n=MAX_HIDDEN_TEXT),
        )
    with button_col:
        st.button(t("hidden.reset_text"), key=f"{PAGE}:reset", on_click=_reset_text, args=(default,), width="stretch")
    save(key)
    if not text:
        st.info(t("hidden.type_text"))
        return None
    return model_source.known_text_ui(choice, text, offer_default=True)


def _controls_ui(choice: ModelChoice, h: int, order_for) -> tuple[str, str, int, int]:
    """Source (H or a gate), order, number of rows and the unit that colours the text."""
    sources = ["H", *choice.gate_names]
    keys = {name: f"{PAGE}:{name}" for name in ("source", "sort", "top", "unit")}
    keep_valid(keys["source"], "H", sources)
    keep_valid(keys["sort"], "variance", list(SORTS))
    # Labels are bound now, not looked up lazily: AppTest calls format_func outside the script run.
    source_labels = {s: t(SOURCE_LABELS[s]) for s in sources}
    sort_labels = {s: t(SORT_LABELS[s]) for s in SORTS}
    source = "H"
    if len(sources) > 1:
        source = st.radio(
            t("hidden.source"),
            sources,
            key=keys["source"],
            help=t("hidden.source_help"),
            horizontal=True,
            format_func=source_labels.get,
        )
    cols = st.columns(3)
    with cols[0]:
        sort = st.selectbox(
            t("hidden.sort"), SORTS, key=keys["sort"], help=t("hidden.sort_help"), format_func=sort_labels.get
        )
    order = order_for(source, sort)
    keep_valid(keys["top"], min(h, DEFAULT_TOP), list(range(1, h + 1)))
    keep_valid(keys["unit"], int(order[0]), list(range(h)))
    with cols[1]:
        top = st.slider(t("hidden.top"), 1, h, key=keys["top"], help=t("hidden.top_help")) if h > 1 else 1
    with cols[2]:
        unit = int(st.number_input(t("hidden.unit"), 0, h - 1, step=1, key=keys["unit"], help=t("hidden.unit_help")))
    for key in keys.values():
        save(key)
    return source, sort, top, unit


def _explain_ui(choice: ModelChoice) -> None:
    with st.expander(t("hidden.explain")):
        st.markdown(t("hidden.explain_h"))
        gates = choice.gate_names
        if "Z" in gates:
            st.markdown(t("hidden.explain_gru"))
            st.latex(GRU_LATEX)
        elif "F" in gates:
            st.markdown(t("hidden.explain_lstm"))
            st.latex(LSTM_LATEX)
        else:
            st.markdown(t("hidden.explain_rnn"))
            st.latex(RNN_LATEX)


def _pattern_ui(choice: ModelChoice, text: str, H: np.ndarray) -> None:
    """LSTMVis-style search: units that switch on over a span, and where in the corpus they fire together."""
    st.subheader(t("hidden.pat_title"))
    st.caption(t("hidden.pat_intro"))
    n = len(text)
    keys = {name: f"{PAGE}:pat_{name}" for name in ("start", "end", "thr")}
    keep_valid(keys["start"], max(1, n - 1), list(range(1, n + 1)))
    c1, c2, c3 = st.columns(3)
    with c1:
        start = int(st.number_input(t("hidden.pat_start"), 1, n, step=1, key=keys["start"]))
    keep_valid(keys["end"], n, list(range(start, n + 1)))
    with c2:
        end = int(st.number_input(t("hidden.pat_end"), start, n, step=1, key=keys["end"]))
    restore(keys["thr"], 0.3)
    with c3:
        thr = float(
            st.slider(t("hidden.pat_thr"), -1.0, 1.0, step=0.05, key=keys["thr"], help=t("hidden.pat_thr_help"))
        )
    for key in keys.values():
        save(key)
    st.html(copied_html(text, 0, [(start - 1, end)], t("hidden.pat_mark"), ""))
    units = bptt.units_on_span(H.T, start - 1, end - 1, thr)
    if not units:
        st.info(t("hidden.pat_none"))
        return
    st.caption(t("hidden.pat_units", n=len(units), units=", ".join(f"#{u}" for u in units[:40])))
    use_key = f"{PAGE}:pat_use"
    keep_valid(use_key, min(3, len(units)), list(range(1, len(units) + 1)))
    use = int(st.number_input(t("hidden.pat_use"), 1, len(units), step=1, key=use_key, help=t("hidden.pat_use_help")))
    save(use_key)
    units = units[:use]
    st.caption(t("hidden.pat_using", units=", ".join(f"#{u}" for u in units), thr=thr))
    if not choice.corpus_text:
        st.info(t("hidden.pat_no_corpus"))
        return
    limit = bptt.search_limit(choice.model)
    corpus = model_cache.search_corpus(choice.model, choice.char_to_idx, choice.corpus_text)
    if limit < bptt.MAX_SEARCH_CHARS and len(choice.corpus_text) > limit:
        st.caption(t("hidden.pat_capped", h=f"{choice.model.num_hiddens:,}", n=f"{limit:,}"))
    with st.spinner(t("hidden.pat_searching", n=len(corpus))):  # the page above is drawn meanwhile
        states = model_cache.search_states(choice.key, corpus, choice.model, choice.char_to_idx)
    matches = bptt.find_unit_pattern(states, units, thr)
    if not matches:
        st.info(t("hidden.pat_nowhere", n=len(corpus)))
        return
    st.caption(t("hidden.pat_found", n=len(corpus), k=len(matches)))
    pad = 12
    parts = []
    for m in matches:
        a = max(0, m.start - pad)
        snippet = corpus[a : m.end + 1 + pad]
        parts.append(copied_html(snippet, 0, [(m.start - a, m.end + 1 - a)], t("hidden.pat_mark"), ""))
        place = escape_html(t("hidden.pat_place", a=m.start + 1, b=m.end + 1))
        parts.append(f'<div style="color:#777;font-size:0.8rem">{place}</div>')
    st.html("".join(parts))


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    choice = model_source.model_page_ui(PAGE, t("hidden.title"), t("hidden.intro"))
    if choice is None:
        return
    if choice.job is not None and not choice.job.done:
        follow = st.toggle(t("hidden.follow"), value=True, key=f"{PAGE}:follow", help=t("hidden.follow_help"))
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
        title=t(
            "hidden.heat_title", src=t(SOURCE_LABELS[source]), n=len(shown), h=h, sort=t(SORT_LABELS[sort]), T=len(text)
        ),
        y_title=t("hidden.unit_axis"),
        zrange=zrange,
        colorscale=scale,
        marked_unit=unit,
        hover=t("hidden.hover"),
    )
    st.plotly_chart(fig, width="stretch", key=f"{PAGE}:heatmap")
    st.caption(t("hidden.top_units", units=", ".join(f"#{u}" for u in order[:10])))

    st.subheader(t("hidden.unit_title", u=unit, src=t(SOURCE_LABELS[source])))
    row = values[unit]
    colors = charts.value_colors(row.tolist(), zrange, scale)
    titles = [t("hidden.char_value", ch=ch, i=i + 1, v=float(v)) for i, (ch, v) in enumerate(zip(text, row))]
    st.html(activation_html(list(text), colors, titles))
    lo, hi = zrange
    st.caption(
        t("hidden.legend_gate")
        if scale == charts.GATE_SCALE
        else t("hidden.legend_signed", lo=round(lo, 3), hi=round(hi, 3))
    )
    st.caption(
        t("hidden.unit_stats", u=unit, mean=float(row.mean()), act=float(np.abs(row).mean()), var=float(row.var()))
    )
    _explain_ui(choice)
    _pattern_ui(choice, text, traces["H"])


main()
