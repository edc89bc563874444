"""Issue 11's bad input on the pages: each a clear message in both languages, never a traceback, and a run already
trained is not lost. (The engine's side — old checkpoints, dropout with 1 layer, a validation split under one
minibatch — is in test_deep_models.py, test_epochs_and_validation.py and test_page_train_deep.py.)"""

from __future__ import annotations

from apptest_helpers import all_text, start_tiny_job
from streamlit.testing.v1 import AppTest

from lab_ui import session
from lab_ui.jobs_ui import job_key
from lab_ui.settings import widget_key
from lm_core.corpus import MAX_FILE_BYTES
from lm_core.limits import MAX_VOCAB
from lm_core.serve.job import Job

PAGE = "train"


def _trained_job(at: AppTest) -> Job:
    return start_tiny_job(at, PAGE, model="gru", epochs=1)


def _still_there(at: AppTest, job: Job) -> None:
    at.run()
    assert not at.exception
    assert at.session_state[job_key(PAGE)] == job.id
    assert len(session.manager().view(job).runs[0].history) == 1  # the trained run is kept and still shown
    assert any(b.key == f"{PAGE}:dl:0" for b in at.get("download_button"))


def test_an_upload_over_the_size_limit_is_refused_and_the_trained_run_stays(at: AppTest) -> None:
    job = _trained_job(at)
    at.selectbox(key="corpus:source").set_value("upload").run()
    big = "春".encode() * (MAX_FILE_BYTES // 3 + 1)
    at.file_uploader(key="corpus:upload").set_value(("all.txt", big, "text/plain")).run()
    assert not at.exception
    text = all_text(at)
    assert "all.txt" in text and "上限为" in text and "节选" in text  # the limit and what to do, in 中文
    assert at.button(key=f"{PAGE}:start").disabled
    _still_there(at, job)


def test_a_vocabulary_over_the_limit_names_the_limit_and_the_trained_run_stays(at: AppTest) -> None:
    job = _trained_job(at)
    at.selectbox(key="corpus:source").set_value("paste").run()
    at.number_input(key="corpus:max_chars").set_value(0).run()  # all of it
    many = "".join(chr(0x4E00 + i) for i in range(MAX_VOCAB + 1))
    at.text_area(key="corpus:paste").set_value(many * 2).run()
    assert not at.exception
    assert f"{MAX_VOCAB:,}" in all_text(at)
    assert at.button(key=f"{PAGE}:start").disabled
    _still_there(at, job)


def test_dropout_with_one_layer_leaves_the_trained_run_alone(at: AppTest) -> None:
    job = _trained_job(at)
    next(w for w in at.select_slider if w.key == widget_key(PAGE, "dropout")).set_value(0.3).run()
    at.button(key=f"{PAGE}:start").click().run()
    assert not at.exception
    assert any("丢弃" in e.value for e in at.error)
    _still_there(at, job)
