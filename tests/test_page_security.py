"""A hostile visitor through the pages (AppTest): what crafted URLs and files can reach."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apptest_helpers import (
    REPO,
    TIMEOUT,
    _clean_runtime,
    all_text,
    shown,
    start_tiny_job,
    use_tiny_settings,
    wait_for_job,
)
from apptest_helpers_models import html_text, train_tiny
from streamlit.testing.v1 import AppTest

from lab_ui import corpus_ui, model_source, session
from lab_ui.settings import widget_key
from lm_core import messages
from lm_core.checkpoint import from_trainer, to_bytes
from lm_core.limits import MAX_UPLOAD_MB

PAGE = "train"  # the `at` fixture (conftest.py) opens this page


def _sidebar_text(at: AppTest) -> str:
    return "\n".join(str(el.value) for el in (*at.sidebar.error, *at.sidebar.warning, *at.sidebar.info))


# -- no visitor names a server path ------------------------------------------------------------------


def test_book_source_has_no_path_box_and_never_shows_a_server_file(
    at: AppTest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Even an operator's misconfigured path that is not the book is neither read out nor named."""
    monkeypatch.setattr(corpus_ui, "OPERATOR_BOOK_PATH", "/etc/passwd")
    monkeypatch.setattr(corpus_ui, "DATA_DIR", tmp_path)
    at.selectbox(key="corpus:source").set_value("book").run()
    assert not at.exception
    assert not at.sidebar.text_input, "a visitor must not be able to type a server path"
    shown = all_text(at) + _sidebar_text(at) + "\n".join(str(x.value) for x in at.text)
    assert "root:" not in shown and "/etc/passwd" not in shown
    assert "jaychou_lyrics" in all_text(at).replace("\\", "")  # says what to upload instead (escaped)


def test_book_source_uses_the_operators_file_when_it_is_the_book(
    at: AppTest, monkeypatch: pytest.MonkeyPatch, book_zip: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(corpus_ui, "OPERATOR_BOOK_PATH", str(book_zip))
    monkeypatch.setattr(corpus_ui, "DATA_DIR", tmp_path)
    at.selectbox(key="corpus:source").set_value("book").run()
    assert not at.exception
    assert messages.text("corpus.recognised_book", "zh") in all_text(at)
    assert str(book_zip.parent) not in all_text(at)


# -- URL values are parsed strictly and named as text --------------------------------------------

EVIL = "**x** [SESSION EXPIRED — log in again](http://evil) ![i](http://evil/i.png)"


def _fresh(page: str, params: dict[str, str]) -> Iterator[AppTest]:
    with _clean_runtime():
        # The page as a deep link opens it (Chinese, the default: see `apptest_helpers.app_page`).
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        at.query_params.update(params)
        yield at.switch_page(f"pages/{page}.py").run()


def _no_live_markdown(value: str) -> None:
    """Markdown source in which the evil string can only appear escaped: no link, image or bold survives."""
    assert "](http" not in value and "![" not in value and "**x**" not in value, value


@pytest.mark.parametrize("page", ["train", "sampling", "clipping"])
def test_superscript_digits_in_chars_are_named_not_a_traceback(page: str) -> None:
    for at in _fresh(page, {"chars": "²"}):
        assert not at.exception, at.exception
        shown_text = "\n".join(shown(w.value) for w in at.sidebar.warning)
        assert "chars=²" in shown_text
        assert at.number_input(key="corpus:max_chars").value == 10_000


def test_out_of_range_hidden_is_named_not_moved_to_the_slider_end() -> None:
    for at in _fresh("train", {"hidden": "1e20"}):
        assert not at.exception
        assert "hidden=1e20" in all_text(at)
        assert at.select_slider(key=widget_key(PAGE, "hidden")).value == 256


def test_link_in_a_url_value_is_shown_as_text() -> None:
    for at in _fresh("train", {"steps": EVIL, "corpus": EVIL}):
        assert not at.exception
        warnings = [w.value for w in (*at.warning, *at.sidebar.warning)]
        assert any(EVIL in shown(w) for w in warnings), warnings
        for w in warnings:
            _no_live_markdown(w)


# -- crafted checkpoints on Generate and Hidden states -------------------------------------------


def _checkpoint_bytes(**changes: object) -> bytes:
    trainer = train_tiny("gru", epochs=1, hidden=8)
    ckpt = from_trainer(trainer)
    for key, value in changes.items():
        setattr(ckpt, key, value)
    return to_bytes(ckpt)


@pytest.mark.parametrize(
    ("page", "key"), [("generate", "generate:ckpt_upload"), ("hidden_states", "hidden:ckpt_upload")]
)
def test_non_finite_checkpoint_is_refused_by_name_on_the_model_pages(page: str, key: str) -> None:
    trainer = train_tiny("gru", epochs=1, hidden=8)
    ckpt = from_trainer(trainer)
    ckpt.model_state["dense.bias"][:] = float("nan")
    for at in _fresh(page, {}):
        at.selectbox(key=f"{key.split(':')[0]}:model_source").set_value("upload").run()
        at.file_uploader(key=key).set_value(("nan.pt", to_bytes(ckpt), "application/octet-stream")).run()
        assert not at.exception, at.exception
        assert any("不是有限数" in e.value for e in at.error), [e.value for e in at.error]
        assert not at.get("plotly_chart")


def test_checkpoint_and_file_names_are_shown_as_text_on_generate() -> None:
    data = _checkpoint_bytes(corpus_name=EVIL, note=EVIL)
    for at in _fresh("generate", {}):
        at.selectbox(key="generate:model_source").set_value("upload").run()
        at.file_uploader(key="generate:ckpt_upload").set_value((EVIL + ".pt", data, "application/x")).run()
        assert not at.exception, at.exception
        captions = [c.value for c in at.caption]
        # the corpus name is there (its last path part: a name never shows folders) ...
        assert any(model_source.display_corpus_name(EVIL) in shown(c) for c in captions), captions
        for value in (*captions, *(m.value for m in at.markdown), *(e.value for e in at.error)):
            _no_live_markdown(value)  # ... but only as text


def test_refused_file_name_is_shown_as_text() -> None:
    for at in _fresh("generate", {}):
        at.selectbox(key="generate:model_source").set_value("upload").run()
        at.file_uploader(key="generate:ckpt_upload").set_value((EVIL + ".pt", b"not a model", "text/plain")).run()
        assert not at.exception
        errors = [e.value for e in at.error]
        assert any(EVIL in shown(e) for e in errors), errors
        for e in errors:
            _no_live_markdown(e)


# -- a refused start checkpoint never trains a random model -----------------------------------------


def test_train_is_off_while_the_chosen_start_checkpoint_is_missing_or_refused(at: AppTest) -> None:
    assert at.button(key="train:start").disabled is False
    at.selectbox(key="train:from").set_value("upload").run()
    assert at.button(key="train:start").disabled is True  # nothing uploaded yet
    at.file_uploader(key="train:from_upload").set_value(("bad.pt", b"junk", "application/x")).run()
    assert not at.exception
    assert at.button(key="train:start").disabled is True
    assert any("Train is off" in w.value or "无法开始训练" in w.value for w in at.warning)
    at.selectbox(key="train:from").set_value("new").run()
    assert at.button(key="train:start").disabled is False


# -- one upload limit, stated where the user uploads ---------------------------------------------------


def test_every_uploader_states_the_servers_limit(at: AppTest) -> None:
    at.selectbox(key="train:from").set_value("upload").run()
    at.selectbox(key="corpus:source").set_value("upload").run()
    uploaders = at.get("file_uploader")
    assert len(uploaders) == 2
    for up in uploaders:
        assert up.proto.max_upload_size_mb == MAX_UPLOAD_MB, up.proto
        assert f"{MAX_UPLOAD_MB} MB" in up.proto.help


# -- sibling issue: generated text is shown as text, even when it is made of Markdown markers --------------


def test_greedy_lines_of_an_english_corpus_with_asterisks_are_shown_literally(at: AppTest) -> None:
    """A corpus starting with "**" makes "**" a prefix: its lines must show exactly what the model wrote."""
    text = "**Verse** one [link](http://evil) and *more* lines\n" * 60
    at.selectbox(key="corpus:source").set_value("paste").run()
    at.text_area(key="corpus:paste").set_value(text).run()
    job = start_tiny_job(at, "train", model="rnn")
    at.run()
    assert not at.exception
    samples = session.manager().view(job).runs[0].samples
    lines = samples[max(samples)]  # the page shows the latest epoch's lines
    assert "**" in lines  # the prefix really is the Markdown marker
    bodies = [h.value for h in at.html]
    for written in lines.values():
        assert any(html_text(b) == written for b in bodies), (written, bodies)
    assert not any("<a " in b or "<img" in b for b in bodies)


# -- a refused upload is remembered, not redone on every rerun -----------------------------------------


def test_refused_corpus_upload_is_not_read_again_on_rerun(at: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = corpus_ui.read_corpus_bytes

    def counting(data: bytes, name: str, *args: object) -> str:
        calls.append(name)
        return real(data, name, *args)

    monkeypatch.setattr(corpus_ui, "read_corpus_bytes", counting)
    at.selectbox(key="corpus:source").set_value("upload").run()
    at.file_uploader(key="corpus:upload").set_value(("photo.zip", b"PK\x03\x04 broken", "application/zip")).run()
    assert not at.exception and calls == ["photo.zip"]
    at.slider(key=widget_key(PAGE, "epochs")).set_value(3).run()  # any widget click reruns the script
    at.run()
    assert calls == ["photo.zip"], "a refused upload was read again on a rerun"
    assert "photo.zip" in all_text(at)


# -- the download says when a checkpoint will not fit through the upload limit ---------------------------


def test_download_offers_a_file_that_fits_the_upload_limit(at: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    from lm_core import checkpoint, limits

    use_tiny_settings(at, "train", model="gru", lr=0.01)
    at.radio(key=widget_key(PAGE, "optimizer")).set_value("adam").run()
    at.button(key="train:start").click().run()
    job = wait_for_job(at, "train")
    ckpt = job.checkpoint(0)
    full, slim = checkpoint.estimated_bytes(ckpt), checkpoint.estimated_bytes(ckpt, with_optimizer=False)
    at.run()
    assert not any(b.key == "train:dl_slim:0" for b in at.get("download_button"))  # fits: nothing to say
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", (full + slim) // 2)  # as if Adam's state pushed it over
    at.run()
    assert not at.exception
    assert any(b.key == "train:dl_slim:0" for b in at.get("download_button")), (full, slim, all_text(at)[-600:])
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", slim // 2)  # even the weights alone are too big
    at.run()
    assert not any(b.key == "train:dl_slim:0" for b in at.get("download_button"))
    assert "无法再上传到本应用" in all_text(at)  # "... cannot be uploaded back to this app"
