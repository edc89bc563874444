"""The charts (lab_ui.charts): the perplexity chart draws the n-gram baselines of the validation split as dotted
lines."""

from __future__ import annotations

from lab_ui import charts


def test_baselines_become_dotted_lines_with_labels() -> None:
    curve = charts.Curve("a", [1, 2], [500.0, 300.0])
    fig = charts.perplexity_figure([curve], 5, "t", "x", "y", 5182, "uniform", baselines=[(605.0, "unigram 605")])
    lines = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert sorted(round(s.y0) for s in lines) == [605, 5182]
    assert any(a.text == "unigram 605" for a in fig.layout.annotations)
    plain = charts.perplexity_figure([curve], 5, "t", "x", "y", 5182, "uniform")
    assert len([s for s in plain.layout.shapes if s.line.dash == "dot"]) == 1
