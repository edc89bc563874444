"""The experiment board's figures, built from plain numbers (testable without a browser).

A run far worse than guessing every character uniformly (a learning rate that blew up) would squash every other
curve into one line at the bottom of a log axis, so the perplexity charts stop at `CEILING_FACTOR` times the
vocabulary size: a line leaves the chart there, and a point above it sits on the edge as a triangle whose hover
gives its real value. The dotted line at the vocabulary size is the uniform guess.

Every run of a board is drawn in the colour of its value: ordered values (a learning rate, hidden units) on a
sequential scale, so "larger" reads as "further along it"; choices (sampling, the model) in distinct colours.
A value's runs share one legend entry. Points of one value are spread a little sideways, so several runs of
one value show as a spread, and a short bar marks their median. Each point trace carries `meta` ("finished" or
"training"), a language-free tag for tests. Names typed by visitors reach the figures only escaped.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.colors as pc
import plotly.graph_objects as go

from .charts import PALETTE, _log_axis_label, horizontal_line, log_ticks
from .text import escape_html

_MARGIN = {"l": 70, "r": 20, "t": 60, "b": 50}
FINISHED, TRAINING = "finished", "training"  # the `meta` tags of the point traces
CEILING_FACTOR = 10.0  # perplexity axes stop at this many times the vocabulary size
TEXT_SIZE, TITLE_SIZE = 15, 19  # pixels: ticks, axis titles and legend; chart titles
LEGEND_GAP = 72  # pixels from the plot's bottom edge to the legend's top: below the tick labels and the axis title


@dataclass(frozen=True)
class Baseline:
    """The uniform guess: perplexity equal to the vocabulary size, drawn dotted and labelled."""

    vocab_size: int
    label: str

    @property
    def ceiling(self) -> float:
        return CEILING_FACTOR * self.vocab_size


# Ordered values: Plasma (perceptually even, readable with the common colour-vision deficiencies) from its dark blue
# to its orange only: its last quarter, pale yellow, all but vanishes on a white page when projected.
SEQUENTIAL, SEQUENTIAL_END = "Plasma", 0.75
CATEGORICAL = (*PALETTE, "#e377c2", "#17becf")  # the lab's palette, and two more for a board of eight values
NEUTRAL = "#555"  # legend markers that stand for every value (finished, training, median)


def value_colors(n: int, ordered: bool) -> list[str]:
    """One colour per value: a sequential scale for ordered values (dark to bright), else distinct colours."""
    if not ordered:
        return [CATEGORICAL[i % len(CATEGORICAL)] for i in range(n)]
    if n == 1:
        return [pc.sample_colorscale(SEQUENTIAL, [0.3])[0]]
    return pc.sample_colorscale(SEQUENTIAL, [SEQUENTIAL_END * i / (n - 1) for i in range(n)])


@dataclass(frozen=True)
class BoardLine:
    """One run's curve: its value, who trained it (plain text), perplexity by epoch, where it diverged."""

    value_index: int
    who: str
    epochs: Sequence[int]
    values: Sequence[float]
    diverged_at: int | None = None


@dataclass(frozen=True)
class ValuePoint:
    """One run as a point above its value; `done`: it finished (else it is still training, drawn hollow)."""

    value_index: int
    y: float
    who: str
    done: bool
    diverged: bool = False


def curves_figure(
    lines: Sequence[BoardLine],
    value_labels: Sequence[str],
    colors: Sequence[str],
    planned_epochs: int,
    title: str,
    x_title: str,
    y_title: str,
    baseline: Baseline | None = None,
    height: int = 460,
) -> go.Figure:
    """Every run's perplexity (log y) by epoch, coloured by its value; one legend entry per value."""
    fig = go.Figure()
    ys: list[float] = []
    shown: set[int] = set()
    for line in sorted(lines, key=lambda ln: ln.value_index):
        color = colors[line.value_index % len(colors)]
        label = value_labels[line.value_index]
        finite = [v for v in line.values if v is not None and math.isfinite(v)]
        ys.extend(finite)
        fig.add_trace(
            go.Scatter(
                x=list(line.epochs),
                y=list(line.values),
                mode="lines+markers" if len(line.epochs) < 40 else "lines",
                name=label,
                legendgroup=str(line.value_index),
                showlegend=line.value_index not in shown,
                line={"color": color, "width": 3},
                marker={"size": 5},
                opacity=0.85,
                hovertemplate=f"{escape_html(line.who)} · {escape_html(label)}<br>%{{x}}: %{{y:.2f}}<extra></extra>",
            )
        )
        shown.add(line.value_index)
        if line.diverged_at is not None:
            fig.add_trace(
                go.Scatter(
                    x=[line.diverged_at],
                    y=[finite[-1] if finite else 1.0],
                    mode="markers",
                    marker={"symbol": "x", "size": 12, "color": color},
                    legendgroup=str(line.value_index),
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
    _layout(fig, title, x_title, y_title, height)
    fig.update_xaxes(range=[0.5, max(planned_epochs, 1) + 0.5], dtick=1 if planned_epochs <= 12 else None)
    _log_y(fig, ys, baseline)
    return fig


def by_value_figure(
    points: Sequence[ValuePoint],
    value_labels: Sequence[str],
    colors: Sequence[str],
    title: str,
    x_title: str,
    y_title: str,
    log_y: bool,
    finished_name: str,
    training_name: str,
    median_name: str,
    baseline: Baseline | None = None,
    height: int = 380,
) -> go.Figure:
    """One point per run above its value (finished filled, training hollow), a bar at each value's median.

    With a `baseline` (a perplexity chart) a point above its ceiling sits on the edge as a triangle.
    """
    fig = go.Figure()
    spread = _spread(points)
    top = baseline.ceiling if baseline is not None else math.inf
    for done, name, tag in ((True, finished_name, FINISHED), (False, training_name, TRAINING)):
        mine = [(i, p) for i, p in enumerate(points) if p.done == done and math.isfinite(p.y)]
        fig.add_trace(  # the legend's entry, grey: a point's colour is its value's, not "finished" or "training"
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=name,
                legendgroup=tag,
                marker={
                    "size": 13,
                    "color": NEUTRAL if done else "rgba(0,0,0,0)",
                    "line": {"width": 2, "color": NEUTRAL},
                },
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[p.value_index + spread[i] for i, p in mine],
                y=[min(p.y, top) for _, p in mine],
                mode="markers",
                name=name,
                meta=tag,
                legendgroup=tag,
                showlegend=False,
                marker={
                    "size": 13,
                    "color": [colors[p.value_index % len(colors)] for _, p in mine] if done else "rgba(0,0,0,0)",
                    "line": {"width": 2, "color": [colors[p.value_index % len(colors)] for _, p in mine]},
                    "symbol": [_symbol(p, top) for _, p in mine],
                },
                customdata=[p.y for _, p in mine],
                text=[escape_html(p.who) for _, p in mine],
                hovertemplate="%{text}: %{customdata:.4g}<extra></extra>",
            )
        )
    medians_x: list[float | None] = []
    medians_y: list[float | None] = []
    for index in range(len(value_labels)):
        ys = [p.y for p in points if p.value_index == index and p.done and math.isfinite(p.y)]
        if ys:
            m = statistics.median(ys)
            medians_x += [index - 0.3, index + 0.3, None]
            medians_y += [m, m, None]
    fig.add_trace(
        go.Scatter(
            x=medians_x,
            y=medians_y,
            mode="lines",
            name=median_name,
            line={"color": NEUTRAL, "width": 3},
            hoverinfo="skip",
        )
    )
    _layout(fig, title, x_title, y_title, height)
    fig.update_xaxes(
        tickvals=list(range(len(value_labels))),
        ticktext=list(value_labels),
        range=[-0.6, len(value_labels) - 0.4],
    )
    if log_y:
        _log_y(fig, [p.y for p in points], baseline)
    else:
        fig.update_yaxes(rangemode="tozero")
    return fig


def _symbol(point: ValuePoint, top: float) -> str:
    if point.y > top:
        return "triangle-up"  # off the chart: drawn on its edge
    return "x" if point.diverged else "circle"


def _spread(points: Sequence[ValuePoint]) -> list[float]:
    """Sideways offsets so a value's runs sit next to each other (deterministic: the same board, the same picture)."""
    count: dict[int, int] = {}
    for p in points:
        count[p.value_index] = count.get(p.value_index, 0) + 1
    seen: dict[int, int] = {}
    out = []
    for p in points:
        k, n = seen.get(p.value_index, 0), count[p.value_index]
        seen[p.value_index] = k + 1
        out.append(0.0 if n == 1 else -0.25 + 0.5 * k / (n - 1))
    return out


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, height: int) -> None:
    fig.update_layout(  # sizes for a projector: read from the back of a classroom
        title={"text": title, "font": {"size": TITLE_SIZE}},
        font={"size": TEXT_SIZE},
        height=height,
        margin=_MARGIN,
        # Below the axis title whatever the chart's height (a fraction of the plot: -0.22 sat on a short one's title).
        legend={
            "orientation": "h",
            "y": -LEGEND_GAP / (height - _MARGIN["t"] - _MARGIN["b"]),
            "yanchor": "top",  # Plotly's "auto" hangs a legend below the plot by its bottom edge, into the axis title
            "font": {"size": TEXT_SIZE},
        },
        uirevision="keep",
    )
    # Streamlit's chart theme sets its own small tick and axis-title fonts: these are said per axis to win.
    axis = {"tickfont": {"size": TEXT_SIZE}, "title_font": {"size": TEXT_SIZE}}
    fig.update_xaxes(title_text=x_title, **axis)
    fig.update_yaxes(title_text=y_title, **axis)


def _log_y(fig: go.Figure, values: Sequence[float], baseline: Baseline | None) -> None:
    """A log perplexity axis over `values` (and the baseline), stopped at the baseline's ceiling.

    Ticks at 1, 2, 5 per decade over at most three decades, else at powers of ten only (a long 1-2-5 ladder
    overprints itself).
    """
    ys = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if baseline is not None:
        ys = [min(v, baseline.ceiling) for v in ys] + [float(baseline.vocab_size)]
        horizontal_line(fig, baseline.vocab_size, {"dash": "dot", "color": "#888"})
        _log_axis_label(fig, baseline.vocab_size, escape_html(baseline.label), "bottom")
    lo, hi = (max(1.0, min(ys)) / 1.2, max(ys) * 1.3) if ys else (1.0, 1000.0)
    if hi <= lo:
        hi = lo * 2
    if math.log10(hi / lo) <= 3:
        ticks = log_ticks(lo, hi)
    else:
        ticks = [10.0**e for e in range(math.ceil(math.log10(lo)), math.floor(math.log10(hi)) + 1)]
    fig.update_yaxes(
        type="log", range=[math.log10(lo), math.log10(hi)], tickvals=ticks, ticktext=[f"{v:g}" for v in ticks]
    )
