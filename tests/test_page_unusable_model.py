"""A run whose weights a page cannot use (its checkpoint does not load) is named in one sentence, never shown as a
traceback or a server path, and the model pages go on working with the visitor's other runs."""

from __future__ import annotations

import apptest_helpers_models as helpers
import pytest
from streamlit.testing.v1 import AppTest

from lab_ui import jobs_ui
from lm_core.errors import Cause, CheckpointError
from lm_core.serve.job import Job

pytestmark = pytest.mark.usefixtures("clean_streamlit")  # fresh caches, no thread left behind
PAGES = {"generate": "generate", "hidden_states": "hidden", "gradients": "gradients"}


def _with_a_broken_and_a_good_run(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The Train page's run of this browser cannot be loaded (as a checkpoint over a bound or damaged would); an
    older run of the same browser, in the store, is fine."""
    good = helpers.trained_job("tester", label="good")
    broken = helpers.trained_job("tester", label="broken")
    kind = type(helpers.session.manager().get(broken, "tester"))  # the job class of the backend in use
    real = kind.checkpoint

    def checkpoint(self: Job, run: int = 0):
        if self.id == broken:
            raise CheckpointError("error.checkpoint.damaged", name="the checkpoint", cause=Cause(ValueError("bad")))
        return real(self, run)

    monkeypatch.setattr(kind, "checkpoint", checkpoint)
    return broken, good


def _widget_keys(at: AppTest) -> set[str]:
    return {w.key for kind in ("button", "selectbox", "slider", "text_input", "number_input") for w in at.get(kind)}


def _texts(at: AppTest) -> str:
    return helpers.texts(at) + " ".join(e.value for e in at.error) + " ".join(e.value for e in at.exception)


@pytest.mark.parametrize("page", list(PAGES))
def test_a_run_that_cannot_be_loaded_is_one_sentence_and_other_runs_still_work(
    page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, good = _with_a_broken_and_a_good_run(monkeypatch)

    def prepare(at: AppTest) -> None:
        helpers.act_as(at, "tester")
        at.session_state[jobs_ui.job_key("train")] = broken

    at = AppTest.from_file(str(helpers.APP), default_timeout=helpers.TIMEOUT)
    prepare(at)
    at.run()
    at.radio(key="_lang_widget").set_value("en")
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "broken" in errors[0] and "cannot be used" in errors[0], errors
    text = _texts(at)
    assert "Traceback" not in text and str(helpers.REPO) not in text and "CheckpointError" not in text
    stopped_at = _widget_keys(at)  # the page stops after its picker
    picker = next(s for s in at.selectbox if s.key == f"{PAGES[page]}:model_source")
    picker.set_value(f"stored:{good}-0").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key=f"{PAGES[page]}:model_source").value == f"stored:{good}-0"
    assert len(_widget_keys(at) - stopped_at) >= 2  # ... and goes on with the good run: its own controls


def test_the_train_page_names_a_run_whose_weights_cannot_be_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    broken, _ = _with_a_broken_and_a_good_run(monkeypatch)

    def prepare(at: AppTest) -> None:
        helpers.act_as(at, "tester")
        at.session_state[jobs_ui.job_key("train")] = broken

    at = helpers.open_page("train", prepare=prepare)  # asserts no exception
    text = _texts(at)
    assert "The checkpoint of broken cannot be offered: the checkpoint is damaged" in text, text
    assert "Traceback" not in text and str(helpers.REPO) not in text
    assert helpers.figure(at, "train:chart")  # its curve is still drawn
