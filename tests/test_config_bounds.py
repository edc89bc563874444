"""TrainConfig's table of bounds: each one accepts its edge and refuses just outside, with its own message."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import pytest

from lm_core import limits, messages
from lm_core.errors import ConfigError, localized
from lm_core.training import BOUNDS, CHOICES, Bound, TrainConfig

# Patience needs a validation share, so the base config has one; every bound's edge is then valid on its own.
BASE = TrainConfig(val_fraction=0.25)


def _next(bound: Bound, value: float, direction: float) -> float:
    """The nearest value of the field's type beyond `value` towards `direction` (±inf)."""
    if isinstance(getattr(BASE, bound.field), int) and not isinstance(value, float):
        return value + (1 if direction > 0 else -1)
    return math.nextafter(float(value), direction)


def _messages(bound: Bound) -> list[str]:
    """The bound's sentence in every language of the catalogues."""
    return [messages.text(bound.key, lang, **bound.params) for lang in messages.LANGS]


def _assert_refused(bound: Bound, value: float) -> None:
    with pytest.raises(ConfigError) as info:
        replace(BASE, **{bound.field: value}).validate()
    assert [localized(info.value, lang) for lang in messages.LANGS] == _messages(bound)
    assert str(info.value) == messages.text(bound.key, "en", **bound.params)


@pytest.mark.parametrize("bound", BOUNDS, ids=lambda b: b.field)
def test_each_bound_accepts_its_edge_and_refuses_just_outside(bound: Bound) -> None:
    """Closed ends: the edge validates, one step beyond raises the bound's message; open ends the other way round."""
    BASE.validate()
    low_inside = _next(bound, bound.low, math.inf) if bound.low_open else bound.low
    low_outside = bound.low if bound.low_open else _next(bound, bound.low, -math.inf)
    replace(BASE, **{bound.field: low_inside}).validate()
    _assert_refused(bound, low_outside)
    if math.isinf(bound.high):
        replace(BASE, **{bound.field: 1e300}).validate()
        _assert_refused(bound, math.inf)
    else:
        high_inside = _next(bound, bound.high, -math.inf) if bound.high_open else bound.high
        high_outside = bound.high if bound.high_open else _next(bound, bound.high, math.inf)
        replace(BASE, **{bound.field: high_inside}).validate()
        _assert_refused(bound, high_outside)
    if isinstance(getattr(BASE, bound.field), float):
        _assert_refused(bound, math.nan)
    assert bound.accepts(None) == bound.optional


def _spellings(bound: Bound, value: float) -> set[str]:
    """How a message may write `value`: 1000 or 1,000 for a count, 10,000 or 0.5 for a rate."""
    if isinstance(getattr(BASE, bound.field), int):
        return {str(int(value)), f"{int(value):,}"}
    return {f"{value:,g}"}


@pytest.mark.parametrize("bound", BOUNDS, ids=lambda b: b.field)
def test_each_message_names_the_bounds_it_enforces(bound: Bound) -> None:
    """The sentence and the numbers change together: both ends (the last valid whole number of an open one) appear."""
    ends = [bound.low]
    if not math.isinf(bound.high):
        last_int = bound.high_open and isinstance(getattr(BASE, bound.field), int)
        ends.append(bound.high - 1 if last_int else bound.high)
    for end in ends:
        for text in _messages(bound):
            assert any(spelling in text for spelling in _spellings(bound, end)), (end, text)


def test_bounds_cover_distinct_fields_and_hidden_uses_the_limit() -> None:
    """One bound per setting, each naming a real field; hidden units stop at limits.MAX_HIDDEN, as the message says."""
    names = [b.field for b in BOUNDS]
    assert len(names) == len(set(names))
    assert set(names) <= {f.name for f in fields(TrainConfig)}
    hidden = next(b for b in BOUNDS if b.field == "hidden")
    assert hidden.high == limits.MAX_HIDDEN
    assert all(f"{limits.MAX_HIDDEN:,}" in text for text in _messages(hidden))
    assert [b.field for b in BOUNDS if b.optional] == ["clip"]


def test_a_long_int_is_out_of_range_not_a_crash() -> None:
    """An int too long for a float is refused with the bound's message (no OverflowError reaches the user)."""
    for name in ("hidden", "lr", "clip"):
        bound = next(b for b in BOUNDS if b.field == name)
        _assert_refused(bound, 10**400)


def test_unknown_choices_name_the_value_in_both_languages() -> None:
    """The table of choices fills in the value given, exactly as the sentences read before they became a table."""
    assert [name for name, *_ in CHOICES] == ["model", "sampling", "optimizer", "nonlinearity"]
    with pytest.raises(ConfigError) as info:
        replace(BASE, nonlinearity="gelu").validate()
    assert str(info.value) == "Unknown nonlinearity 'gelu': choose one of tanh, relu."
    assert localized(info.value, "zh") == "未知的激活函数 'gelu'：请从 tanh、relu 中选择。"
    assert localized(info.value, "zh-Hant") == "未知的活化函數 'gelu'：請從 tanh、relu 中選擇。"
    with pytest.raises(ConfigError) as info:
        replace(BASE, sampling="sideways").validate()
    assert str(info.value) == "Unknown sampling mode 'sideways': use random or adjacent."
    assert localized(info.value, "zh") == "未知的采样方式 'sideways'：请使用 random 或 adjacent。"
    assert localized(info.value, "zh-Hant") == "未知的取樣方式 'sideways'：請使用 random 或 adjacent。"
    with pytest.raises(ConfigError) as info:
        replace(BASE, optimizer="rmsprop").validate()
    assert str(info.value) == "Unknown optimiser 'rmsprop': use sgd or adam."
    with pytest.raises(ConfigError) as info:
        replace(BASE, model="transformer").validate()
    assert str(info.value).startswith("Unknown model 'transformer': choose one of scratch-rnn, ")
    assert str(info.value).endswith(".") and "{" not in str(info.value) and "{" not in localized(info.value, "zh")
    assert localized(info.value, "zh").endswith("、rnn、gru、lstm 中选择。")  # the list joined the Chinese way
