"""Real-browser test of the Gradients through time page: type a text, step through the forward pass.

Same server and Chromium as `test_browser.py` (its fixtures are reused); the
shipped checkpoints (scratch RNN and GRU on Song ci) are the models.
"""

from __future__ import annotations

import pytest
from test_browser import _main, _shot, _wait_ready, browser, expect, page, server

FIXTURES = (browser, page, server)  # imported fixtures, named here so linters see them used
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _step_line(pg, pattern: str) -> str:
    """Wait until the step caption matches `pattern` (a JS regex) and return the page's step line."""
    pg.wait_for_function("p => new RegExp(p).test(document.body.innerText)", arg=pattern, timeout=30_000)
    return pg.evaluate("p => document.body.innerText.match(new RegExp(p + '[^\\n]*'))[0]", pattern)


H_ROW_JS = (
    "() => { const d = Array.from(document.querySelectorAll('.js-plotly-plot'))"
    ".find(p => (p.data || []).some(t => t.type === 'heatmap' && (t.y || []).includes('Hₜ')));"
    " if (!d || !d.calcdata) return null; const z = d.calcdata[0][0].z; return Array.from(z[z.length - 1]); }"
)


def _h_row(pg) -> list[float]:
    """The H_t row of the step strip (the last heatmap row), as Plotly computed it in the page."""
    pg.wait_for_function(H_ROW_JS, timeout=30_000)
    return pg.evaluate(H_ROW_JS)


def _wait_h_row_differs(pg, old: list[float]) -> None:
    """Until the strip shows another H_t (elements redraw one by one after a click)."""
    pg.wait_for_function(
        f"old => {{ const row = ({H_ROW_JS})(); return row && JSON.stringify(row) !== JSON.stringify(old); }}",
        arg=old,
        timeout=30_000,
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_type_a_text_and_step_through_the_forward_pass(page, server: str, lang: str) -> None:
    page.goto(f"{server}/gradients?lang={lang}")
    _wait_ready(page, timeout=60_000)
    main = _main(page)
    box = main.locator("textarea").first
    # The default text (the corpus's start) arrives with the first full script run.
    page.wait_for_function(
        "() => (document.querySelector('textarea') || {value: ''}).value.length > 20", timeout=60_000
    )
    default = box.input_value()
    assert len(default) > 20
    typed = default[:24]  # characters the model knows, typed key by key
    box.fill("")
    box.press_sequentially(typed, delay=10)
    box.press("Control+Enter")
    _wait_ready(page, timeout=60_000)
    first = _step_line(page, f"(Step 1 of {len(typed)}|第 1/{len(typed)} 步)")
    assert typed[0] in first
    h1 = _h_row(page)
    next_name, prev_name = ("Next", "Previous") if lang == "en" else ("下一步", "上一步")
    main.get_by_role("button", name=next_name, exact=True).click()
    _wait_ready(page)
    main.get_by_role("button", name=next_name, exact=True).click()
    _wait_ready(page)
    third = _step_line(page, f"(Step 3 of {len(typed)}|第 3/{len(typed)} 步)")
    assert typed[2] in third
    _wait_h_row_differs(page, h1)  # the strip shows another step's H_t
    main.get_by_role("button", name=prev_name, exact=True).click()
    _wait_ready(page)
    assert typed[1] in _step_line(page, f"(Step 2 of {len(typed)}|第 2/{len(typed)} 步)")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    _shot(page, f"gradients_{lang}")
