"""The engine's one answer to "which characters does the model not know", and how they are named."""

from __future__ import annotations

from lm_core.vocab import SHOWN_CHARS, format_chars, unknown_chars


def test_unknown_chars_are_deduplicated_in_order_of_appearance() -> None:
    assert unknown_chars("雪春雨雪x风雨", {"春": 0, "风": 1}) == ["雪", "雨", "x"]
    assert unknown_chars("春风", {"春", "风"}) == []
    assert unknown_chars("", set()) == []


def test_format_chars_shows_white_space_as_repr() -> None:
    assert format_chars(["雪", " ", "\n"]) == "雪 ' ' '\\n'"


def test_format_chars_names_at_most_twenty_then_counts_the_rest_in_the_language() -> None:
    chars = [chr(0x4E00 + i) for i in range(SHOWN_CHARS + 3)]
    assert SHOWN_CHARS == 20
    en = format_chars(chars)
    assert en.endswith(" (and 3 more)") and en.count(" ") == SHOWN_CHARS - 1 + 3
    assert chars[19] in en and chars[20] not in en
    assert format_chars(chars, "zh").endswith("（另有 3 个）")
    assert format_chars(chars, "fr") == en
    assert format_chars(chars[:SHOWN_CHARS]) == " ".join(chars[:SHOWN_CHARS])
    assert format_chars(chars, limit=2) == f"{chars[0]} {chars[1]} (and 21 more)"
