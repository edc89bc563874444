"""`lm_core.bounded_cache` and the corpora the server keeps with it: bounded in entries and in bytes, once per
content whichever session sent it."""

from __future__ import annotations

import pytest
from testkit import flood_text

from lm_core.bounded_cache import BoundedCache


def test_it_keeps_at_most_its_entries_and_bytes_dropping_the_least_recently_used() -> None:
    cache: BoundedCache[str] = BoundedCache(max_entries=3, max_bytes=100)
    for key in "abc":
        assert cache.put(key, key * 10, 10)
    assert cache.get("a") == "a" * 10  # now the most recently used
    cache.put("d", "d", 10)  # a fourth entry: "b", the least recently used, goes
    assert cache.get("b") is None and len(cache) == 3 and cache.bytes == 30
    cache.put("e", "e", 80)  # too many bytes with the others: the oldest go until it fits
    assert cache.bytes == 100 and cache.get("e") == "e" and cache.get("c") is None and cache.get("a") == "a" * 10
    assert not cache.put("huge", "x", 101)  # never kept: larger than the whole cache
    assert cache.get("huge") is None and cache.bytes <= 100


def test_get_or_make_makes_once_per_key() -> None:
    cache: BoundedCache[list[int]] = BoundedCache(max_entries=4, max_bytes=1_000)
    made: list[int] = []
    first = cache.get_or_make("k", lambda: made.append(1) or [1], len)
    again = cache.get_or_make("k", lambda: made.append(2) or [2], len)
    assert first is again and made == [1]


def test_the_same_pasted_text_is_one_corpus_for_every_session_and_corpora_stay_within_their_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two visitors pasting the same text share one corpus; many different large texts never hold more than the
    cache's bytes (each kept corpus counted at its size), and Streamlit's cache clearing does not touch them."""
    import streamlit as st

    from lab_ui import corpus_ui

    limit = 10 * 2**20  # two or three of the texts below
    monkeypatch.setattr(corpus_ui, "_CORPORA", BoundedCache(16, limit))
    text = flood_text(0, 1.0).encode()
    one = corpus_ui._load_bytes(text, "pasted", None)
    st.cache_resource.clear()
    other = corpus_ui._load_bytes(bytes(text), "pasted", None)  # another session's copy of the same text
    assert one.corpus is not None and other.corpus is one.corpus
    for session in range(1, 6):  # five more texts of a megabyte: more than the cache may hold
        assert corpus_ui._load_bytes(flood_text(session, 1.0).encode(), "pasted", None).corpus is not None
    kept = corpus_ui._CORPORA
    assert 0 < kept.bytes <= limit and len(kept) < 6


def test_an_entry_nobody_asked_for_within_max_idle_goes() -> None:
    """After a class leaves, what only its sessions used is dropped (by the cache's sweeper, here called directly)."""
    import time

    cache: BoundedCache[str] = BoundedCache(max_entries=4, max_bytes=100, max_idle=60.0)
    cache.put("old", "o", 10)
    cache.put("used", "u", 10)
    now = time.monotonic()
    assert cache.sweep(now + 30) == 0 and len(cache) == 2  # neither idle long enough
    cache.get("used")  # someone asks: its clock starts again
    assert cache.sweep(time.monotonic() + 61) == 2  # both idle past the bound by then
    cache.put("new", "n", 10)
    assert cache.sweep(time.monotonic() + 30) == 0
    assert cache.get("old") is None and cache.get("new") == "n" and cache.bytes == 10
    forever: BoundedCache[str] = BoundedCache(max_entries=4, max_bytes=100)  # no max_idle: kept by the bounds alone
    forever.put("k", "v", 1)
    assert forever.sweep(time.monotonic() + 10**6) == 0 and forever.get("k") == "v"
