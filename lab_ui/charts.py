"""Plotly figures, built from plain numbers so they are testable without a browser.

A figure built twice from the same numbers is identical, so Streamlit does not
re-mount it on a poll with no new epoch; axes are fixed to the planned epochs so
they do not jump while a run grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lm_core import messages
from lm_core.messages import N_
from lm_core.sampling import RowSpan

from .text import escape_html, visible_char

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclass
class Curve:
    label: str
    epochs: list[int]
    values: list[float]
    diverged_at: int | None = None  # epoch at which the run diverged, drawn as a marker
    dash: str = "solid"
    color: int | None = None  # palette index; None: the curve's position (training and validation of a run share one)


# Room for the title above and the axis titles left and below, in pixels; shared by the line and bar charts.
_MARGIN = {"l": 50, "r": 20, "t": 50, "b": 40}


def _line_layout(fig: go.Figure, title: str, x_title: str, y_title: str, height: int) -> None:
    """The layout every line chart shares: legend below, room for titles, zoom kept across updates."""
    fig.update_layout(
        title=title,
        height=height,
        margin=_MARGIN,
        legend={"orientation": "h", "y": -0.18},
        xaxis_title=x_title,
        yaxis_title=y_title,
        uirevision="keep",
    )


def perplexity_figure(
    curves: Sequence[Curve],
    planned_epochs: int,
    title: str,
    x_title: str,
    y_title: str,
    vocab_size: int | None = None,
    baseline_label: str = "",
    height: int = 380,
    baselines: Sequence[tuple[float, str]] = (),
) -> go.Figure:
    """Perplexity (log y) vs epoch; optional dotted lines at the vocabulary size (uniform guess) and at
    `baselines` — (perplexity, label) pairs such as the unigram and bigram models of the same validation split,
    so a curve below them shows the model learned more than counting."""
    fig = go.Figure()
    ys: list[float] = []
    for i, c in enumerate(curves):
        color = PALETTE[(i if c.color is None else c.color) % len(PALETTE)]
        vals = [v for v in c.values if v is not None and math.isfinite(v)]
        ys.extend(vals)
        mode = "lines+markers" if len(c.epochs) < 60 else "lines"
        line = {"color": color, "dash": c.dash}
        fig.add_trace(_run_line(c.epochs, c.values, c.label, mode, line, "%{x}: %{y:.2f}", marker={"size": 5}))
        if c.diverged_at is not None:
            y = vals[-1] if vals else (vocab_size or 1000)
            # A run that diverged in epoch 1 has no line to carry its legend entry: the ✕ carries it.
            fig.add_trace(_diverged_cross(c.diverged_at, y, c.label, color, showlegend=not vals))
    if vocab_size:
        ys.append(vocab_size)
        horizontal_line(fig, vocab_size, {"dash": "dot", "color": "#888"})
        if baseline_label:
            _log_axis_label(fig, vocab_size, baseline_label, "bottom")
    for value, label in baselines:
        if math.isfinite(value) and value > 0:
            ys.append(value)
            horizontal_line(fig, value, {"dash": "dot", "color": "#aaa"})
            _log_axis_label(fig, value, label, "bottom")
    lo = min(ys) if ys else 1.0
    hi = max(ys) if ys else 1000.0
    lo = max(1.0, lo) / 1.3
    _line_layout(fig, title, x_title, y_title, height)
    # Whole epochs only: with few planned epochs Plotly would otherwise tick at 0.5, 1.5, ...
    fig.update_xaxes(range=[0.5, max(planned_epochs, 1) + 0.5], dtick=1 if planned_epochs <= 12 else None)
    ticks = log_ticks(lo, hi * 1.3)
    fig.update_yaxes(
        type="log", range=[math.log10(lo), math.log10(hi * 1.3)], tickvals=ticks, ticktext=[f"{v:g}" for v in ticks]
    )
    return fig


def horizontal_line(fig: go.Figure, y: float, line: dict[str, str]) -> None:
    """A line across the whole plot at `y`: the shape `fig.add_hline` makes, made directly.

    Why not `add_hline`: it works out which axes the line spans through Plotly's
    path parser, about 4 ms of pure Python per line against 0.4 ms here. A perplexity
    chart draws up to three such lines; when a class presses Train at once, 40 first
    draws hold the interpreter together and the server stopped answering for 2 s.
    """
    fig.add_shape(type="line", xref="x domain", x0=0, x1=1, yref="y", y0=y, y1=y, line=line)


def _run_line(
    x: Sequence[float], y: Sequence[float], label: str, mode: str, line: dict[str, object], hover: str, **extra: object
) -> go.Scatter:
    """One run's (or model's) line, named in the legend and, beside `hover` (a point's text), in its tooltip."""
    return go.Scatter(
        x=x, y=y, mode=mode, name=label, line=line, hovertemplate=f"{hover}<extra>{label}</extra>", **extra
    )


def _diverged_cross(x: float, y: float, label: str, color: str, showlegend: bool) -> go.Scatter:
    """The ✕ where a run diverged, in the run's colour, at its last finite value."""
    return go.Scatter(
        x=[x],
        y=[y],
        mode="markers+text",
        name=f"{label} ✕",
        marker={"symbol": "x", "size": 14, "color": color},
        text=["✕"],
        textposition="top center",
        showlegend=showlegend,
        hoverinfo="skip",
    )


def _positive_or_nan(values: Sequence[float]) -> list[float]:
    """Values for a log axis: zero, negative and infinite ones become gaps (NaN) instead of breaking the scale."""
    return [v if math.isfinite(v) and v > 0 else float("nan") for v in values]


def _log_y(fig: go.Figure, lo: float, hi: float, below: float = 0.3, above: float = 0.3, **extra: object) -> None:
    """A log y-axis from `lo` to `hi` with `below`/`above` decades of room, ticked at powers of ten only:
    Plotly's default log ticks (…, 2, 5, 0.1, 2, 5, …) read ambiguously."""
    fig.update_yaxes(type="log", range=[math.log10(lo) - below, math.log10(hi) + above], dtick=1, **extra)


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values between `lo` and `hi`, so a log axis reads 200, 300, 500 (not a bare 2, 5).

    1-2-5 per decade when the axis spans several; denser (1-2-3-4-5-7) when it spans two decades or
    less, so curves that settle between two 1-2-5 ticks (say 250 to 500) still have a labelled value beside them.
    """
    if not (lo > 0 and hi > lo):
        return []
    decades = math.log10(hi) - math.log10(lo)
    if decades > 2:
        mantissas: tuple[float, ...] = (1, 2, 5)
    elif decades > 0.7:
        mantissas = (1, 2, 3, 4, 5, 7)
    else:
        mantissas = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8)
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for mantissa in mantissas:
            value = mantissa * 10.0**exponent
            if lo <= value <= hi:
                ticks.append(round(value, 12))
    return ticks


# -- Hidden states and generation (pages/hidden_states.py, pages/generate.py) ------------------------------

SIGNED_SCALE = "RdBu"  # diverging: red below zero, white at zero, blue above (tanh-bounded H)
GATE_SCALE = "Blues"  # sequential: a gate is a sigmoid in [0, 1]


def value_colors(values: Sequence[float], zrange: tuple[float, float], colorscale: str) -> list[str]:
    """The colour the heatmap gives each value, so coloured text matches the chart exactly."""
    lo, hi = zrange
    span = (hi - lo) or 1.0
    fractions = [min(1.0, max(0.0, (float(v) - lo) / span)) if math.isfinite(v) else 0.5 for v in values]
    return pc.sample_colorscale(colorscale, fractions) if fractions else []


def is_dark(color: str) -> bool:
    """Whether black text would be hard to read on `color` ("rgb(r, g, b)"), by relative luminance."""
    r, g, b = (float(x) for x in color[color.index("(") + 1 : color.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128


def hidden_heatmap(
    values: np.ndarray,
    chars: Sequence[str],
    unit_ids: Sequence[int],
    title: str,
    x_title: str = "",
    y_title: str = "",
    zrange: tuple[float, float] = (-1.0, 1.0),
    colorscale: str = SIGNED_SCALE,
    marked_unit: int | None = None,
    hover: str = "{ch} · #{unit}: {v}",
) -> go.Figure:
    """Units (rows, in the order given) × characters (columns) of one recorded quantity.

    `values` is (len(unit_ids), len(chars)). Columns are numbered, not named,
    because a category axis would merge repeated characters; the characters
    are the tick labels (spaces made visible). A signed range is centred on 0.
    `hover` is a template with {ch}, {unit} and {v} (already translated).
    """
    values = np.asarray(values, dtype=np.float32)
    n_units, n_chars = values.shape
    shown = [escape_html(visible_char(c)) for c in chars]  # Plotly renders its own HTML subset
    labels = [("▶ " if u == marked_unit else "") + f"#{u}" for u in unit_ids]
    template = hover.format(ch="%{customdata}", unit="%{y}", v="%{z:.3f}") + "<extra></extra>"
    lo, hi = zrange
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=np.arange(n_chars),
            y=labels,
            customdata=[shown] * n_units,
            zmin=lo,
            zmax=hi,
            zmid=0.0 if lo < 0 < hi else None,
            colorscale=colorscale,
            colorbar={"thickness": 12, "len": 0.9},
            hovertemplate=template,
            xgap=1 if n_chars <= 80 else 0,
            ygap=1 if n_units <= 64 else 0,
        )
    )
    step = max(1, math.ceil(n_chars / 100))  # every character while they fit, then every `step`-th
    fig.update_xaxes(
        title=x_title,
        tickmode="array",
        tickvals=list(range(0, n_chars, step)),
        ticktext=shown[::step],
        tickangle=0,
        side="top",
        range=[-0.5, n_chars - 0.5],
        showgrid=False,
    )
    fig.update_yaxes(
        title=y_title,
        type="category",
        autorange="reversed",
        showgrid=False,
        tickfont={"size": 10 if n_units > 40 else 12},
    )
    fig.update_layout(
        title={"text": title, "y": 0.995, "yanchor": "top"},
        height=int(min(1100, max(260, 110 + 14 * n_units))),
        margin={"l": 70, "r": 20, "t": 90, "b": 20},
        font={"family": "sans-serif"},
    )
    return fig


def prob_bars(
    candidates: Sequence[tuple[str, float]],
    title: str,
    chosen: str | None = None,
    x_title: str = "",
    y_title: str = "",
    height: int = 320,
) -> go.Figure:
    """Next-character probabilities, most likely first; the character actually written is highlighted."""
    chars = [escape_html(visible_char(c)) for c, _ in candidates]  # Plotly renders its own HTML subset
    probs = [float(p) for _, p in candidates]
    colors = [PALETTE[4] if c == chosen else PALETTE[0] for c, _ in candidates]  # orange: the one written
    fig = go.Figure(
        go.Bar(
            x=chars,
            y=probs,
            marker={"color": colors},
            text=[f"{p:.0%}" if p >= 0.005 else "" for p in probs],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    top = max(probs, default=1.0)
    fig.update_xaxes(title=x_title, type="category", tickfont={"size": 16})
    fig.update_yaxes(title=y_title, range=[0, min(1.0, top * 1.2) or 1.0], tickformat=".0%")
    fig.update_layout(title=title, height=height, margin=_MARGIN, showlegend=False)
    return fig


# -- Minibatches and gradient norms (pages/sampling.py, pages/clipping.py) ---------------------------------

MINIBATCH_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#bab0ac")
STATE_COLOR = "#333"
TRACK_COLOR = "#d9d9d9"


# The catalogue keys of the minibatch picture's words, by `MinibatchText` field.
_MINIBATCH_KEYS = {
    "where": N_("sampling.mb_where"),
    "order": N_("sampling.mb_order"),
    "x_corpus": N_("sampling.mb_x_corpus"),
    "x_order": N_("sampling.mb_x_order"),
    "y_row": N_("sampling.mb_y_row"),
    "minibatch": N_("sampling.mb_minibatch"),
    "track": N_("sampling.mb_track"),
    "carried": N_("sampling.mb_carried"),
    "reset": N_("sampling.mb_reset"),
    "carried_word": N_("sampling.mb_carried_word"),
    "reset_word": N_("sampling.mb_reset_word"),
    "hover": N_("sampling.mb_hover"),
}


@dataclass(frozen=True)
class MinibatchText:
    """The words of the minibatch picture in one language.

    `minibatch` takes `{i}`; `hover` takes `{i}`, `{r}`, `{a}`, `{b}` (first and
    last input position) and `{state}`.
    """

    where: str
    order: str
    x_corpus: str
    x_order: str
    y_row: str
    minibatch: str
    track: str
    carried: str
    reset: str
    carried_word: str
    reset_word: str
    hover: str

    @classmethod
    def in_language(cls, lang: str) -> MinibatchText:
        return cls(**{name: messages.text(key, lang) for name, key in _MINIBATCH_KEYS.items()})


def shown_rows(n_rows: int, max_rows: int) -> list[int]:
    """Which rows to draw: all of them, or `max_rows` spread evenly from the first to the last.

    Spreading them (not just the first few) keeps the adjacent picture's staircase
    across the whole corpus visible when B = 32.
    """
    if n_rows <= max_rows:
        return list(range(n_rows))
    if max_rows <= 1:
        return [0]
    return sorted({round(i * (n_rows - 1) / (max_rows - 1)) for i in range(max_rows)})


def minibatch_figure(
    spans: Sequence[RowSpan],
    n_chars: int,
    title: str,
    text: MinibatchText | None = None,
    max_rows: int = 8,
    row_len: int | None = None,
) -> go.Figure:
    """Which corpus positions each row of the first minibatches reads, and what happens to the state.

    Left panel: x = corpus position, one line per row, a bar per minibatch in its
    colour; with `row_len` (adjacent sampling) a grey track shows each row's whole
    slice. Right panel: the same rows in training order, minibatch by minibatch,
    with an arrow where the state is carried from one minibatch to the next and a
    bar where it starts from zeros. Of B rows at most `max_rows` are drawn (see
    `shown_rows`) so B = 32 stays readable. Minibatches and rows are labelled 1-based.
    """
    text = text or MinibatchText.in_language(messages.SOURCE_LANG)
    grid = _MinibatchGrid.of(spans, max_rows)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        column_widths=[0.7, 0.3],
        horizontal_spacing=0.03,
        subplot_titles=(text.where, text.order),
    )
    if row_len:
        _add_row_tracks(fig, grid, row_len, text.track)
    for i in range(grid.k):
        _add_minibatch(fig, grid, i, text, squares=not row_len)
    _add_carried_arrows(fig, grid, text.carried)
    _add_resets(fig, grid, text.reset)
    _minibatch_layout(fig, grid, n_chars, title, text)
    return fig


# Where a trace of the minibatch picture goes: the corpus (left) or the training order (right).
_LEFT = {"row": 1, "col": 1}
_RIGHT = {"row": 1, "col": 2}
_HOVER_TEXT = "%{text}<extra></extra>"


@dataclass(frozen=True)
class _MinibatchGrid:
    """The cells of the minibatch picture: the rows drawn, where each sits, and the span filling each cell."""

    rows: list[int]  # corpus-row indices drawn, top to bottom
    y_of: dict[int, int]  # drawing position of each shown row
    shown: list[RowSpan]  # the spans of those rows
    k: int  # minibatches shown
    by_cell: dict[tuple[int, int], RowSpan]  # (minibatch, row) -> its span

    @classmethod
    def of(cls, spans: Sequence[RowSpan], max_rows: int) -> _MinibatchGrid:
        n_rows = max((s.row for s in spans), default=-1) + 1
        rows = shown_rows(n_rows, max_rows)
        y_of = {r: i for i, r in enumerate(rows)}
        shown = [s for s in spans if s.row in y_of]
        k = max((s.minibatch for s in shown), default=-1) + 1
        return cls(rows, y_of, shown, k, {(s.minibatch, s.row): s for s in shown})

    def cells(self, minibatch: int) -> list[RowSpan]:
        """The shown rows' spans in one minibatch, top to bottom."""
        return [self.by_cell[(minibatch, r)] for r in self.rows if (minibatch, r) in self.by_cell]


def _segments(pieces: Sequence[tuple[float, float, float]]) -> tuple[list[float | None], list[float | None]]:
    """x and y of horizontal segments (x0, x1, y) drawn as one trace: Plotly breaks a line at None."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for x0, x1, y in pieces:
        xs += [x0, x1, None]
        ys += [y, y, None]
    return xs, ys


def _add_row_tracks(fig: go.Figure, grid: _MinibatchGrid, row_len: int, name: str) -> None:
    """Left panel, under the bars: each row's whole slice of the corpus (adjacent sampling)."""
    xs, ys = _segments([(r * row_len, (r + 1) * row_len - 1, grid.y_of[r]) for r in grid.rows])
    trace = go.Scatter(x=xs, y=ys, mode="lines", name=name, line={"color": TRACK_COLOR, "width": 12}, hoverinfo="skip")
    fig.add_trace(trace, **_LEFT)


def _span_hover(span: RowSpan, minibatch: int, text: MinibatchText) -> str:
    return text.hover.format(
        i=minibatch + 1,
        r=span.row + 1,
        a=span.start,
        b=span.start + span.length - 1,
        state=text.carried_word if span.state == "carried" else text.reset_word,
    )


def _add_minibatch(fig: go.Figure, grid: _MinibatchGrid, i: int, text: MinibatchText, squares: bool) -> None:
    """Minibatch `i` in its colour: a bar per row on the corpus (left), a numbered cell per row in order (right).

    `squares` also marks each bar's middle on the left: scattered windows (random sampling)
    are only a few pixels wide and would otherwise vanish on a long corpus.
    """
    color = MINIBATCH_COLORS[i % len(MINIBATCH_COLORS)]
    cells = grid.cells(i)
    hovers = [_span_hover(s, i, text) for s in cells]
    name = text.minibatch.format(i=i + 1)
    rows_y = [grid.y_of[s.row] for s in cells]
    xs, ys = _segments([(s.start, s.start + s.length - 1, grid.y_of[s.row]) for s in cells])
    hs: list[str | None] = []
    for h in hovers:
        hs += [h, h, None]
    bars = go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        name=name,
        legendgroup=name,
        line={"color": color, "width": 12},
        text=hs,
        hovertemplate=_HOVER_TEXT,
    )
    fig.add_trace(bars, **_LEFT)
    if squares:
        middles = [s.start + s.length / 2 for s in cells]
        fig.add_trace(_squares(middles, rows_y, name, color, 9, text=hovers, hovertemplate=_HOVER_TEXT), **_LEFT)
    order = _squares(
        [i + 1] * len(cells),
        rows_y,
        name,
        color,
        24,
        mode="markers+text",
        text=[str(s.start) for s in cells],
        textfont={"size": 9, "color": "white"},
        textposition="middle center",
        customdata=hovers,
        hovertemplate="%{customdata}<extra></extra>",
    )
    fig.add_trace(order, **_RIGHT)


def _squares(
    x: list[float], y: list[int], name: str, color: str, size: int, mode: str = "markers", **extra: object
) -> go.Scatter:
    """Square markers of minibatch `name`: they toggle with its legend entry but add none of their own."""
    return go.Scatter(
        x=x,
        y=y,
        mode=mode,
        name=name,
        legendgroup=name,
        showlegend=False,
        marker={"symbol": "square", "size": size, "color": color},
        **extra,
    )


def _add_carried_arrows(fig: go.Figure, grid: _MinibatchGrid, name: str) -> None:
    """Right panel: an arrow from a row's cell to the next minibatch's where that one carries the state on."""
    carried = [s for s in grid.shown if s.state == "carried" and (s.minibatch - 1, s.row) in grid.by_cell]
    if not carried:
        return
    # Span s of minibatch m (cell m + 1) carries from cell m: the arrow runs between the two cells.
    xs, ys = _segments([(s.minibatch + 0.25, s.minibatch + 0.75, grid.y_of[s.row]) for s in carried])
    arrows = go.Scatter(
        x=xs,
        y=ys,
        mode="lines+markers",
        name=name,
        legendgroup="carried",
        line={"color": STATE_COLOR, "width": 2},
        marker={"symbol": "triangle-right", "size": [0, 9, 0] * len(carried), "color": STATE_COLOR},
        hoverinfo="skip",
    )
    fig.add_trace(arrows, **_RIGHT)


def _add_resets(fig: go.Figure, grid: _MinibatchGrid, name: str) -> None:
    """Right panel: a bar just before each cell whose state starts from zeros."""
    resets = [s for s in grid.shown if s.state == "reset"]
    if not resets:
        return
    bars = go.Scatter(
        x=[s.minibatch + 1 - 0.36 for s in resets],
        y=[grid.y_of[s.row] for s in resets],
        mode="markers",
        name=name,
        legendgroup="reset",
        marker={"symbol": "line-ns-open", "size": 16, "color": STATE_COLOR, "line": {"width": 3, "color": STATE_COLOR}},
        hoverinfo="skip",
    )
    fig.add_trace(bars, **_RIGHT)


def _minibatch_layout(fig: go.Figure, grid: _MinibatchGrid, n_chars: int, title: str, text: MinibatchText) -> None:
    """Axes (corpus positions left, minibatch numbers right, first row on top) and a height that fits the rows."""
    fig.update_xaxes(range=[0, max(n_chars, 1)], title=text.x_corpus, **_LEFT)
    fig.update_xaxes(
        range=[0.4, max(grid.k, 1) + 0.6],
        tickvals=list(range(1, grid.k + 1)),
        title=text.x_order,
        showgrid=False,
        zeroline=False,
        **_RIGHT,
    )
    n = len(grid.rows)
    fig.update_yaxes(
        range=[n - 0.4, -0.6],  # first row on top
        tickvals=list(range(n)),
        ticktext=[str(r + 1) for r in grid.rows],
        showgrid=False,
        zeroline=False,
    )
    fig.update_yaxes(title=text.y_row, **_LEFT)
    plot_h = 40 + 30 * n  # pixels for the rows themselves
    fig.update_layout(
        title=title,
        height=plot_h + 70 + 110,
        margin={"l": 50, "r": 20, "t": 70, "b": 110},
        legend={"orientation": "h", "yanchor": "top", "y": -62 / plot_h, "x": 0},
        uirevision="keep",
    )


def _log_axis_label(fig: go.Figure, y: float, text: str, yanchor: str) -> None:
    """A label at the right end of a horizontal line on a log y-axis.

    `add_hline(annotation_text=...)` places its label at y itself, but on a log
    axis Plotly reads an annotation's y as log10(y): the label would land far
    off the chart. So the label is added here with y already in log units.
    """
    fig.add_annotation(
        x=1, xref="x domain", xanchor="right", y=math.log10(y), yref="y", yanchor=yanchor, text=text, showarrow=False
    )


@dataclass
class NormTrace:
    """One run's gradient norms before clipping, one per step in training order."""

    label: str
    norms: Sequence[float]
    diverged: bool = False  # the run stopped after its last norm: drawn with a ✕
    diverged_text: str = ""  # said at the step where it diverged (e.g. "not clipped diverged at step 4")


SHORT_TRACE = 60  # points up to which a norm trace is drawn with markers too


def downsample_max(values: Sequence[float], max_points: int = 4000) -> tuple[list[int], list[float]]:
    """1-based step numbers and values, at most `max_points` of them.

    Each bucket of consecutive steps keeps its largest value at its own step, so
    a single spike, the thing a reader looks for, never disappears.
    """
    n = len(values)
    if n <= max_points:
        return list(range(1, n + 1)), [float(v) for v in values]
    size = math.ceil(n / max_points)
    xs, ys = [], []
    for lo in range(0, n, size):
        bucket = values[lo : lo + size]
        j = max(range(len(bucket)), key=lambda idx: bucket[idx])
        xs.append(lo + j + 1)
        ys.append(float(bucket[j]))
    return xs, ys


def grad_norm_figure(
    traces: Sequence[NormTrace],
    theta: float | None,
    title: str,
    x_title: str,
    y_title: str,
    theta_label: str = "",
    planned_steps: int | None = None,
    max_points: int = 4000,
    height: int = 360,
) -> go.Figure:
    """Gradient norm before clipping per step (log y), with a dashed line at θ.

    Steps above the line are the ones clipping rescales. Long traces are
    downsampled (`downsample_max`); a diverged run ends in a ✕. The x-axis is
    fixed to `planned_steps` when known so it does not jump while runs grow.
    """
    fig = go.Figure()
    ys_all: list[float] = [theta] if theta else []
    diverged: list[tuple[int, str, str]] = []  # (step, text, colour) of each diverged run
    for i, tr in enumerate(traces):
        color = PALETTE[i % len(PALETTE)]
        xs, ys = downsample_max(_positive_or_nan(tr.norms), max_points)
        ys_all.extend(v for v in ys if math.isfinite(v))
        # A run that diverged within a few steps has a line of one or two points: markers make it visible.
        mode = "lines+markers" if len(xs) <= SHORT_TRACE else "lines"
        line = {"color": color, "width": 1.2}
        fig.add_trace(_run_line(xs, ys, tr.label, mode, line, "%{x}: %{y:.3g}", marker={"size": 6}))
        if tr.diverged:
            last = next((v for v in reversed(ys) if math.isfinite(v)), theta or 1.0)
            fig.add_trace(_diverged_cross(len(tr.norms) + 1, last, tr.label, color, showlegend=False))
            diverged.append((len(tr.norms) + 1, tr.diverged_text, color))
    if theta:
        horizontal_line(fig, theta, {"dash": "dash", "color": "#444"})
        if theta_label:
            _log_axis_label(fig, theta, theta_label, "top")
    lo = min(ys_all) if ys_all else 1e-3
    hi = max(ys_all) if ys_all else 1.0
    _line_layout(fig, title, x_title, y_title, height)
    if planned_steps:
        fig.update_xaxes(range=[0, planned_steps + 1])
    _log_y(fig, lo, hi)
    for step, text, color in diverged:  # after the θ line, so shapes[0] stays θ
        fig.add_shape(
            type="line", x0=step, x1=step, xref="x", y0=0, y1=1, yref="y domain", line={"dash": "dot", "color": color}
        )
        if text:  # right of the line, below the ✕: a divergence in the first steps sits at the left edge
            fig.add_annotation(
                x=step, xref="x", xanchor="left", xshift=8, y=0.8, yref="y domain", yanchor="middle", text=text,
                showarrow=False, font={"color": color}, bgcolor="rgba(255,255,255,0.85)",
            )  # fmt: skip
    return fig


# -- Gradients through time (pages/gradients.py) -----------------------------------------------------------

INFLUENCE_SCALE = "Blues"  # 0 = no influence on the prediction, 1 = the most influential earlier character
SURPRISE_SCALE = "Reds"  # bits of surprise: white = expected, dark red = a surprise


@dataclass
class DistanceLine:
    label: str
    values: list[float]  # mean ‖∂ℓ_t/∂H_{t−k}‖ for k = 0, 1, …


def distance_figure(
    lines: Sequence[DistanceLine], title: str, x_title: str, y_title: str, height: int = 360
) -> go.Figure:
    """Gradient norm against distance k (log y, powers of ten), one line per model."""
    fig = go.Figure()
    ys: list[float] = []
    for i, line in enumerate(lines):
        finite = _positive_or_nan(line.values)
        ys.extend(v for v in finite if math.isfinite(v))
        style = {"color": PALETTE[i % len(PALETTE)], "width": 2}
        hover = "k = %{x}: %{y:.3g}"
        fig.add_trace(
            _run_line(list(range(len(finite))), finite, line.label, "lines+markers", style, hover, marker={"size": 4})
        )
    lo, hi = (min(ys), max(ys)) if ys else (1e-3, 1.0)
    _line_layout(fig, title, x_title, y_title, height)
    fig.update_layout(uirevision=None)  # a new ρ must rescale the axis
    _log_y(fig, lo, hi, exponentformat="power")
    return fig


def clip_figure(
    norm: float, theta: float, factor: float, labels: tuple[str, str], title: str, theta_label: str, height: int = 300
) -> go.Figure:
    """The minibatch's gradient norm before and after clipping (log y), with θ dashed."""
    after = norm * factor
    values = _positive_or_nan([norm, after])
    colors = [PALETTE[1] if norm > theta else PALETTE[0], PALETTE[2]]
    fig = go.Figure(
        go.Bar(
            x=list(labels),
            y=values,
            marker={"color": colors},
            text=[f"{v:.3g}" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:.3g}<extra></extra>",
        )
    )
    finite = [v for v in (*values, theta) if math.isfinite(v) and v > 0]
    lo, hi = min(finite), max(finite)
    horizontal_line(fig, theta, {"dash": "dash", "color": "#444"})
    if theta_label:
        _log_axis_label(fig, theta, theta_label, "top")
    _log_y(fig, lo, hi, below=0.5, above=0.6, exponentformat="power")
    fig.update_layout(title=title, height=height, margin=_MARGIN, showlegend=False)
    return fig


def step_strip(rows: Sequence[tuple[str, Sequence[float]]], title: str, x_title: str, hover: str) -> go.Figure:
    """The terms of one forward step (rows) over the first units (columns), on one signed scale.

    `hover` is a template with {row}, {unit} and {v}.
    """
    z = np.asarray([list(values) for _, values in rows], dtype=np.float64)
    top = float(np.nanmax(np.abs(z))) if z.size and np.isfinite(z).any() else 1.0
    top = top if top > 1e-9 else 1.0
    names = [name for name, _ in rows]
    template = hover.format(row="%{y}", unit="%{x}", v="%{z:.4f}") + "<extra></extra>"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(z.shape[1])),
            y=names,
            zmin=-top,
            zmax=top,
            zmid=0.0,
            colorscale=SIGNED_SCALE,
            colorbar={"thickness": 12, "len": 0.9},
            hovertemplate=template,
            xgap=1,
            ygap=2,
        )
    )
    fig.update_xaxes(title=x_title, dtick=4, showgrid=False)
    fig.update_yaxes(type="category", autorange="reversed", showgrid=False)
    fig.update_layout(
        title=title,
        height=120 + 34 * len(rows),
        margin={"l": 160, "r": 20, "t": 50, "b": 40},
        font={"family": "sans-serif"},
    )
    return fig
