"""My runs: this browser's stored runs, never another's; open, resume an interrupted run, delete, overlay."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

import apptest_helpers_models as helpers
import pytest
from streamlit.testing.v1 import AppTest
from testkit import tiny_text

from lm_core.corpus import Corpus
from lm_core.serve.store import short_ids
from lm_core.training import Trainer

pytestmark = pytest.mark.usefixtures("clean_streamlit")  # fresh caches, no thread left behind
TIMEOUT = 60


def _as(owner: str):
    def prepare(at: AppTest) -> None:
        helpers.act_as(at, owner)

    return prepare


def _widget(widgets, key: str):
    """The one widget of the page whose key is `key` or starts with `key:` (a key may name its run)."""
    found = [w for w in widgets if w.key == key or w.key.startswith(f"{key}:")]
    assert len(found) == 1, [w.key for w in found]
    return found[0]


def test_no_runs_yet_says_where_to_start() -> None:
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    assert "No runs yet" in helpers.texts(at)


def test_lists_only_this_browsers_runs_with_their_curve() -> None:
    helpers.trained_job("tester", label="mine")
    helpers.trained_job("someone-else", label="theirs")
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    table = at.dataframe[0].value
    assert list(table["Run"]) == ["mine"]
    assert table["Status"][0] == "Finished" and table["Epochs"][0] == "1 / 1"
    assert "theirs" not in helpers.texts(at) and all(
        "theirs" not in o for o in at.selectbox(key="my_runs:open").options
    )
    curve = helpers.figure(at, "my_runs:chart")["data"][0]
    assert len(helpers.decode(curve["y"])) == 1


def test_an_interrupted_run_resumes_on_its_page_to_its_planned_epochs() -> None:
    job_id = helpers.trained_job("tester", epochs=1)
    store = helpers.session.manager().store
    store.set_status(f"{job_id}-0", "interrupted", "Interrupted at epoch 1 (the server stopped).", planned=3)
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    assert "Interrupted" in at.dataframe[0].value["Status"][0]
    _widget(at.button, "my_runs:resume").click().run()
    job = helpers.session.manager().get(job_id, "tester")
    assert job is not None and job.thread is not None
    job.thread.join(TIMEOUT)
    record = store.run(f"{job_id}-0", "tester")
    assert record.status == "finished" and record.epoch == 3
    assert [h["epoch"] for h in store.history(record.id)] == [1, 2, 3]


def test_delete_removes_the_run_and_its_checkpoint() -> None:
    job_id = helpers.trained_job("tester")
    store = helpers.session.manager().store
    assert store.checkpoint_path(f"{job_id}-0").is_file()
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    _widget(at.button, "my_runs:delete").click().run()
    assert [r.id for r in store.runs("tester")] == [f"{job_id}-0"]  # Delete asks first
    assert any("Delete “GRU”" in w.value for w in at.warning), [w.value for w in at.warning]
    _widget(at.button, "my_runs:delete_yes").click().run()
    assert store.runs("tester") == [] and not store.checkpoint_path(f"{job_id}-0").exists()
    assert "No runs yet" in helpers.texts(at)


def test_delete_can_be_cancelled() -> None:
    job_id = helpers.trained_job("tester")
    store = helpers.session.manager().store
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    _widget(at.button, "my_runs:delete").click().run()
    _widget(at.button, "my_runs:delete_no").click().run()
    helpers.assert_ok(at)
    assert not [b for b in at.button if b.key.startswith("my_runs:delete_yes")] and not at.warning
    assert [r.id for r in store.runs("tester")] == [f"{job_id}-0"]
    assert store.checkpoint_path(f"{job_id}-0").is_file()


def test_a_clipped_run_is_named_with_its_theta() -> None:
    helpers.trained_job("tester", label="clip")  # the tiny config clips at θ = 1
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    assert list(at.dataframe[0].value["Run"]) == ["clipped at θ = 1"]
    assert at.selectbox(key="my_runs:open").options[0].startswith("clipped at θ = 1 · ")
    zh = helpers.open_page("my_runs", prepare=_as("tester"), lang="zh")
    assert list(zh.dataframe[0].value["训练"]) == ["裁剪（θ = 1）"]


def test_a_diverged_run_has_no_none_for_best_perplexity() -> None:
    job_id = helpers.trained_job("tester", label="noclip")
    kept = helpers.trained_job("tester", label="GRU")
    store = helpers.session.manager().store
    store.set_status(f"{job_id}-0", "diverged", "Diverged in epoch 1.", planned=1)
    with closing(sqlite3.connect(store.folder / "runs.sqlite")) as db, db:
        db.execute("UPDATE runs SET best_perplexity = NULL WHERE owner = 'tester'")
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    table = at.dataframe[0].value
    best = dict(zip(table["ID"], table["Best perplexity"], strict=True))
    tags = short_ids(store.runs("tester"))
    assert best[f"#{tags[f'{job_id}-0']}"] == "diverged" and best[f"#{tags[f'{kept}-0']}"] == "—", best


def test_runs_of_one_name_say_their_corpus_and_date() -> None:
    _twins()
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    options = at.selectbox(key="my_runs:open").options
    assert all(f" · {helpers.CORPUS_NAME} · " in o for o in options), options
    assert all(re.search(r" · \d{4}-\d\d-\d\d \d\d:\d\d · ", o) for o in options), options


def test_two_runs_overlay_on_one_chart() -> None:
    helpers.trained_job("tester", label="first")
    helpers.trained_job("tester", epochs=2, label="second")
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    options = at.multiselect(key="my_runs:pair").options
    at.multiselect(key="my_runs:pair").set_value(options[:2]).run()
    helpers.assert_ok(at)
    assert len(helpers.figure(at, "my_runs:overlay")["data"]) >= 2


def test_a_stored_run_is_offered_on_generate_after_a_restart() -> None:
    job_id = helpers.trained_job("tester", epochs=2, label="stored one")
    helpers.session.shutdown_manager()  # the server goes away; the store keeps the run
    helpers.st.cache_resource.clear()
    at = helpers.open_page("generate", prepare=_as("tester"))
    picker = next(s for s in at.selectbox if s.key == "generate:model_source")
    option = f"stored:{job_id}-0"
    assert any(o.startswith(f"My runs: stored one · epoch 2 · {helpers.CORPUS_NAME} · ") for o in picker.options)
    picker.set_value(option).run()
    helpers.assert_ok(at)
    assert "epoch 2" in helpers.texts(at) or "2 epochs" in helpers.texts(at)


def test_a_stopped_run_is_described_in_chinese_with_its_model_name() -> None:
    """The store keeps lm_core's English message; the page says how the run ended in the UI's language."""
    job_id = helpers.trained_job("tester", epochs=1, label="gru")
    store = helpers.session.manager().store
    store.set_status(f"{job_id}-0", "stopped", "Stopped during epoch 2; kept the model after epoch 1.", planned=3)
    at = helpers.open_page("my_runs", lang="zh", prepare=_as("tester"))
    text = helpers.texts(at)
    assert "已在第 1/3 个周期后停止" in text, text
    assert "Stopped during" not in text
    assert at.dataframe[0].value.iloc[0, 0] == "torch.nn.GRU"  # the run's name, not the key "gru"


def test_the_corpus_column_shows_stored_ids_as_names_in_the_pages_language() -> None:
    """Runs store a corpus id (`songci:all`, `pasted text`); the table words it, in Chinese here."""
    for name in ("songci:all", "pasted text"):
        corpus = Corpus.from_text(tiny_text(helpers.LINES, n_lines=90, seed=3), name=name, max_chars=None)
        trainer = Trainer(corpus, helpers.tiny_config("gru", epochs=1))
        helpers.session.manager().submit("tester", [trainer], [name], kind="train").thread.join(TIMEOUT)
    at = helpers.open_page("my_runs", prepare=_as("tester"), lang="zh")
    assert sorted(at.dataframe[0].value["语料"]) == ["宋词 · 全部作者", "粘贴的文本"]


def _twins() -> tuple[str, str]:
    """Two runs with the same settings and label, made the same minute: only their ids tell them apart."""
    first = helpers.trained_job("tester", label="GRU")
    second = helpers.trained_job("tester", label="GRU")
    store = helpers.session.manager().store
    made = store.run(f"{first}-0", "tester").created // 60 * 60 + 1  # one minute, even if the clock turned
    with closing(sqlite3.connect(store.folder / "runs.sqlite")) as db, db:
        db.execute("UPDATE runs SET created = ? + (id = ?) WHERE owner = 'tester'", (made, f"{second}-0"))
    return first, second


def test_twin_runs_have_distinct_names_and_delete_removes_the_one_shown() -> None:
    first, second = _twins()
    store = helpers.session.manager().store
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    picker = at.selectbox(key="my_runs:open")
    assert len(set(picker.options)) == 2, picker.options  # the browser tells runs apart by their names
    picker.set_value(f"{second}-0").run()
    assert at.selectbox(key="my_runs:open").value == f"{second}-0"
    _widget(at.button, "my_runs:delete").click().run()
    _widget(at.button, "my_runs:delete_yes").click().run()
    helpers.assert_ok(at)
    assert [r.id for r in store.runs("tester")] == [f"{first}-0"]
    assert store.checkpoint_path(f"{first}-0").is_file() and not store.checkpoint_path(f"{second}-0").exists()


def test_continue_on_a_twin_run_continues_the_one_shown() -> None:
    first, second = _twins()
    store = helpers.session.manager().store
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    at.selectbox(key="my_runs:open").set_value(f"{second}-0").run()  # the newest, shown first
    _widget(at.number_input, "my_runs:extra").set_value(2).run()
    _widget(at.button, "my_runs:continue").click().run()
    job = helpers.session.manager().get(second, "tester")
    assert job is not None and job.thread is not None
    job.thread.join(TIMEOUT)
    assert store.run(f"{second}-0", "tester").epoch == 3
    assert store.run(f"{first}-0", "tester").epoch == 1


def test_continue_without_the_checkpoint_file_says_so_in_one_sentence() -> None:
    job_id = helpers.trained_job("tester", epochs=1, label="lost")
    store = helpers.session.manager().store
    store.checkpoint_path(f"{job_id}-0").unlink()
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    _widget(at.button, "my_runs:continue").click().run()
    helpers.assert_ok(at)
    assert [e.value for e in at.error] == [
        "The saved checkpoint of “lost” is missing from the data folder, so it cannot be continued; "
        "its stored curve is kept."
    ]
    assert helpers.session.manager().get(job_id, "tester").done  # nothing started again
    assert [h["epoch"] for h in store.history(f"{job_id}-0")] == [1]
    assert store.run(f"{job_id}-0", "tester").epoch == 1


def test_runs_the_store_did_not_take_are_announced_on_every_page() -> None:
    """The data folder stops taking new data while the server runs: a run trained then is not on My runs after a
    restart, so every page says so, and goes on saying it after writes that still work."""
    helpers.trained_job("tester", label="saved")
    store = helpers.session.manager().store
    store.db.conn.set_authorizer(lambda action, *_: sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_INSERT else 0)
    helpers.trained_job("tester", label="unsaved")
    for page in ("my_runs", "train"):
        at = helpers.open_page(page, prepare=_as("tester"))
        warnings = [w.value for w in at.sidebar.warning]
        assert any("Runs could not all be saved" in w for w in warnings), (page, warnings)


def test_resume_opens_the_runs_page_with_the_runs_own_settings() -> None:
    """The page a resumed run goes back to shows that run's settings, not the defaults or what was set before: the
    settings box, Continue and the page's lesson link then describe the run that is training."""
    from lab_ui import settings
    from lm_core.training import TrainConfig

    job_id = helpers.trained_job("tester", epochs=1)
    store = helpers.session.manager().store
    store.set_status(f"{job_id}-0", "interrupted", "Interrupted at epoch 1 (the server stopped).", planned=3)
    expected = settings.defaults_from(TrainConfig.from_dict(store.run(f"{job_id}-0", "tester").config))
    at = helpers.open_page("my_runs", prepare=_as("tester"))
    _widget(at.button, "my_runs:resume").click().run()
    helpers.assert_ok(at)
    job = helpers.session.manager().get(job_id, "tester")
    assert job is not None and job.thread is not None
    job.thread.join(TIMEOUT)
    names = [name for name in settings.PAGE_FIELDS["train"] if name != "compare"]
    shown = {name: at.session_state[settings.widget_key("train", name)] for name in names}
    assert shown == {name: expected[name] for name in names}
    assert (
        shown["hidden"] != settings.defaults_from(TrainConfig())["hidden"]
        or shown["lr"] != settings.defaults_from(TrainConfig())["lr"]
    ), "the tiny run must differ from the page's defaults, or this test shows nothing"
