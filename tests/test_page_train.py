"""The Train page with AppTest: controls, a real short run, continuing, presets, lesson links, bad input."""

from __future__ import annotations

import pytest
from apptest_helpers import (
    REPO,
    TIMEOUT,
    _clean_runtime,
    all_text,
    plotly_specs,
    set_settings,
    setting_values,
    setting_widget,
    shown,
    shows_options,
    start_tiny_job,
    use_tiny_settings,
    wait_for_job,
)
from streamlit.testing.v1 import AppTest

from lab_ui import corpus_ui, jobs_ui, presets, session, settings
from lab_ui.jobs_ui import job_key
from lab_ui.settings import widget_key
from lm_core.corpus import MAX_FILE_BYTES
from lm_core.limits import MAX_LAYERS, MAX_VOCAB
from lm_core.serve.job import Job
from lm_core.training import TrainConfig

PAGE = "train"


def _start(at: AppTest) -> None:
    at.button(key="train:start").click().run()
    assert not at.exception, at.exception


def test_renders_with_every_control(at: AppTest) -> None:
    assert not at.exception
    for name in ("hidden", "num_steps", "batch_size", "lr", "clip", "epochs"):
        assert any(w.key == settings.widget_key(PAGE, name) for w in (*at.slider, *at.select_slider)), name
    book = presets.PRESETS["book_random"]  # the page's defaults
    expected = {  # each picker's default and its options
        settings.widget_key(PAGE, "model"): (book["model"], settings.FIELDS["model"].options),
        settings.widget_key(PAGE, "compare"): (book["compare"], settings.FIELDS["compare"].options),
        "train:preset": ("book_random", [*presets.PRESETS, presets.CUSTOM_PRESET]),
        "corpus:source": (corpus_ui.SOURCES[0], corpus_ui.SOURCES),
    }
    for key, (value, options) in expected.items():
        box = at.selectbox(key=key)
        assert box.value == value, key
        assert shows_options(box, options), (key, box.options)
        assert not box.disabled, key
    assert at.button(key="train:start").disabled is False
    assert at.button(key="train:continue").disabled is True  # nothing to continue yet


def test_short_run_draws_history_and_samples(at: AppTest) -> None:
    job = start_tiny_job(at, PAGE, model="rnn")
    at.run()
    assert not at.exception
    assert [len(r.history) for r in session.manager().view(job).runs] == [2]
    traces = [t for spec in plotly_specs(at) for t in spec["data"] if t.get("mode", "").startswith("lines")]
    assert traces and len(traces[0]["x"]) == 2
    assert any("分开" in h.value for h in at.html)  # greedy lines, as escaped HTML
    assert any(b.key == "train:dl:0" for b in at.get("download_button"))


def test_continue_trains_the_same_model_further(at: AppTest) -> None:
    first = start_tiny_job(at, PAGE, model="scratch-rnn")
    at.run()
    weights_before = first.checkpoint(0).model_state["W_hh"].clone()
    at.button(key="train:continue").click().run()
    second = wait_for_job(at, PAGE)
    assert second.id != first.id
    history = second.checkpoint(0).history
    assert [h.epoch for h in history] == [1, 2, 3, 4]
    assert history[:2] == first.checkpoint(0).history  # the old epochs are kept, not retrained
    assert not second.checkpoint(0).model_state["W_hh"].equal(weights_before)


def test_compare_trains_two_models_in_lockstep(at: AppTest) -> None:
    job = start_tiny_job(at, PAGE, model="scratch-rnn", compare="scratch-gru")
    at.run()
    view = session.manager().view(job)
    assert [r.config["model"] for r in view.runs] == ["scratch-rnn", "scratch-gru"]
    assert [len(r.history) for r in view.runs] == [2, 2]
    names = {t.get("name") for spec in plotly_specs(at) for t in spec["data"]}
    assert [r.label for r in view.runs] == ["scratch-rnn", "scratch-gru"]  # language-free keys in the job
    assert {"RNN（从零实现，书中）", "GRU（从零实现，书中）"} <= names  # translated when drawn (this page is in 中文)


def test_preset_applies_its_settings(at: AppTest) -> None:
    at.selectbox(key="train:preset").set_value("no_clip").run()
    at.button(key="train:apply").click().run()
    assert at.toggle(key=settings.widget_key(PAGE, "clip_on")).value is False
    at.selectbox(key="train:preset").set_value("quick_demo").run()
    at.button(key="train:apply").click().run()
    assert at.selectbox(key=settings.widget_key(PAGE, "model")).value == "gru"
    assert at.toggle(key=settings.widget_key(PAGE, "clip_on")).value is True
    at.button(key="train:book").click().run()
    assert at.selectbox(key=settings.widget_key(PAGE, "model")).value == "scratch-rnn"
    assert at.select_slider(key=settings.widget_key(PAGE, "lr")).value == 100.0


def test_lesson_link_opens_with_its_settings_and_warns_about_bad_ones() -> None:
    with _clean_runtime():
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        at.query_params.update({"model": "lstm", "hidden": "64", "seed": "7", "lr": "0.01", "steps": "oops"})
        at.run()
        assert not at.exception
        assert at.selectbox(key=settings.widget_key(PAGE, "model")).value == "lstm"
        assert at.select_slider(key=settings.widget_key(PAGE, "hidden")).value == 64
        assert at.number_input(key=settings.widget_key(PAGE, "seed")).value == 7
        assert at.slider(key=settings.widget_key(PAGE, "num_steps")).value == 35  # bad value reset to the default ...
        assert "steps=oops" in all_text(at)  # ... and the user is told


def test_diverging_run_is_reported_not_raised(at: AppTest) -> None:
    use_tiny_settings(at, PAGE, model="scratch-rnn", lr=1000.0)
    at.toggle(key=settings.widget_key(PAGE, "clip_on")).set_value(False).run()
    _start(at)
    job = wait_for_job(at, PAGE)
    at.run()
    assert not at.exception
    assert session.manager().view(job).runs[0].status == "diverged"
    assert "diverg" in all_text(at).lower() or "发散" in all_text(at)


def test_one_hidden_unit_trains(at: AppTest) -> None:
    job = start_tiny_job(at, PAGE, model="scratch-rnn", hidden=1, epochs=1)
    assert session.manager().view(job).status == "finished"


def test_num_steps_longer_than_corpus_says_what_to_do(at: AppTest) -> None:
    at.number_input(key="corpus:max_chars").set_value(100).run()
    at.slider(key=settings.widget_key(PAGE, "num_steps")).set_value(200).run()
    _start(at)
    assert not at.exception
    text = all_text(at)
    assert "too short" in text or "太短" in text
    assert jobs_ui.job_key(PAGE) not in at.session_state


def test_start_from_an_upload_not_yet_given_turns_train_off_and_says_why(at: AppTest) -> None:
    at.selectbox(key="train:from").set_value("upload").run()
    assert not at.exception
    assert at.button(key="train:start").disabled  # not quietly a new random model instead
    assert "请先上传检查点文件。" in [i.value for i in at.info]
    assert any("在此之前无法开始训练" in w.value for w in at.warning)
    at.selectbox(key="train:from").set_value("new").run()
    assert not at.button(key="train:start").disabled
    assert not any("在此之前无法开始训练" in w.value for w in at.warning)


def test_pasted_text_too_short_or_empty_is_explained(at: AppTest) -> None:
    at.selectbox(key="corpus:source").set_value("paste").run()
    assert not at.exception
    assert at.button(key="train:start").disabled is True  # nothing pasted yet
    at.text_area(key="corpus:paste").set_value("短").run()
    _start(at)
    text = all_text(at)
    assert "too short" in text or "太短" in text


def test_two_sessions_never_see_each_others_jobs() -> None:
    with _clean_runtime():
        a = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
        b = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT).run()
        for app in (a, b):
            use_tiny_settings(app, PAGE, model="rnn", epochs=2)
            _start(app)
        job_a, job_b = wait_for_job(a, PAGE), wait_for_job(b, PAGE)
        assert job_a.id != job_b.id and job_a.owner != job_b.owner
        assert session.manager().get(job_a.id, b.session_state["owner"]) is None
        assert job_a.checkpoint(0) is not job_b.checkpoint(0)
        # A third browser opening a link that carries a's job id gets a notice, not a's job.
        c = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        c.query_params["job"] = job_a.id
        c.run()
        assert not c.exception
        assert jobs_ui.job_key(PAGE) not in c.session_state
        assert "not available" in all_text(c) or "不可用" in all_text(c)


def test_stopped_run_keeps_its_model(at: AppTest) -> None:
    use_tiny_settings(at, PAGE, model="scratch-rnn", epochs=500)
    _start(at)
    job = session.manager().get(at.session_state[jobs_ui.job_key(PAGE)], at.session_state["owner"])
    job.step_epoch()  # run exactly to the end of an epoch, then pause
    for _ in range(600):
        if job.epochs_done(0) >= 1 and job.control.paused:
            break
        job.thread.join(0.1)
    at.button(key="train:stop").click().run()
    job.thread.join(30)
    at.run()
    assert not at.exception
    view = session.manager().view(job)
    assert view.status == "stopped"
    assert len(job.checkpoint(0).history) >= 1
    assert any(b.key == "train:dl:0" for b in at.get("download_button"))


def test_start_from_a_shipped_checkpoint_continues_it(at: AppTest) -> None:
    at.selectbox(key="train:from").set_value("songci-scratch-rnn.pt").run()
    assert not at.exception
    at.slider(key=settings.widget_key(PAGE, "epochs")).set_value(1).run()
    _start(at)
    job = wait_for_job(at, PAGE)
    ckpt = job.checkpoint(0)
    assert ckpt.config.model == "scratch-rnn" and ckpt.config.hidden == 256  # from the checkpoint
    assert [h.epoch for h in ckpt.history][-2:] == [250, 251]  # its 250 epochs, then one more


def test_checkpoint_from_another_vocabulary_is_refused_with_a_message(at: AppTest) -> None:
    at.selectbox(key="corpus:subset").set_value("su").run()  # a different vocabulary
    at.selectbox(key="train:from").set_value("songci-gru.pt").run()
    _start(at)
    assert not at.exception
    assert "vocabulary" in all_text(at) or "词典" in all_text(at)
    assert jobs_ui.job_key(PAGE) not in at.session_state


def test_train_while_running_asks_before_replacing_and_stop_message_is_chinese(at: AppTest) -> None:
    """Train during a live run asks first; 'keep' keeps it, 'replace' starts a new one; Stop reads in 中文."""
    use_tiny_settings(at, PAGE, model="rnn", epochs=100_000)
    _start(at)
    first = session.manager().get(at.session_state[jobs_ui.job_key(PAGE)], at.session_state["owner"])
    assert first is not None and not first.done
    first.pause()  # alive (paused counts) for as long as the test needs, however fast the machine
    _start(at)  # pressed again while it lives
    assert at.session_state[jobs_ui.job_key(PAGE)] == first.id and not first.done  # nothing replaced yet
    assert any("要替换吗" in w.value for w in at.warning), [w.value for w in at.warning]
    at.button(key="train:replace_no").click().run()
    assert at.session_state[jobs_ui.job_key(PAGE)] == first.id and not first.done
    assert not any("要替换吗" in w.value for w in at.warning)
    _start(at)
    assert any("要替换吗" in w.value for w in at.warning)
    at.button(key="train:replace_yes").click().run()
    second_id = at.session_state[jobs_ui.job_key(PAGE)]
    assert second_id != first.id
    first.thread.join(60)
    assert first.done
    second = session.manager().get(second_id, at.session_state["owner"])
    at.run()
    at.button(key="train:stop").click().run()
    second.thread.join(60)
    at.run()
    text = all_text(at)
    assert "已在第" in text and "个周期后停止" in text, text
    assert "Stopped after" not in text


def test_continue_names_its_corpus_and_warns_when_the_sidebar_shows_another(at: AppTest) -> None:
    start_tiny_job(at, PAGE, model="rnn")
    at.run()
    assert any("继续时使用这次训练的语料：宋词" in c.value for c in at.caption), [c.value for c in at.caption]
    at.selectbox(key="corpus:source").set_value("paste").run()
    at.text_area(key="corpus:paste").set_value("春眠不觉晓，处处闻啼鸟。" * 300).run()
    warnings = [w.value for w in at.warning]
    assert any("仍使用这次训练的语料「宋词" in w and "粘贴的文本" in w for w in warnings), warnings


@pytest.mark.parametrize("subset", ["su", "苏轼"])  # the id, or the author's name a link held before the ids
def test_a_lesson_link_picks_the_song_ci_subset_by_id_or_old_name(subset: str) -> None:
    with _clean_runtime():
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        at.query_params.update({"corpus": "songci", "subset": subset})
        at.switch_page("pages/train.py").run()  # a deep link: the link's parameters reach the first run
        assert not at.exception
        picker = at.selectbox(key="corpus:subset")
        assert picker.value == "su" and "苏轼" in picker.options  # shown by its author, stored by its id
        assert at.query_params["subset"] in ("su", ["su"])  # written back as the id


# -- deeper models, validation and early stopping on the Train page ------------------------------------------------
# Layers, dropout, embedding, minibatches per epoch, validation, patience:
# widgets with the engine's defaults, values from a lesson link, bad combinations said before Train is pressed
# (and refused, without a traceback, when it is), and a real short run that uses every one of them.


NEW = ("num_layers", "dropout", "embed", "steps_per_epoch", "val_fraction", "patience")


def test_the_new_settings_are_widgets_with_the_engines_defaults(at: AppTest) -> None:
    assert not at.exception
    engine = TrainConfig()
    assert setting_values(at, PAGE, NEW) == {name: getattr(engine, name) for name in NEW}
    layers = setting_widget(at, PAGE, "num_layers")
    assert layers.max == MAX_LAYERS == 3  # the limit, where the user meets it
    assert "1-3" in layers.help or "1–3" in layers.help


def test_a_lesson_link_sets_them_and_a_bad_value_is_reset_and_named() -> None:
    with _clean_runtime():
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        at.query_params.update(
            {"model": "lstm", "layers": "2", "dropout": "0.3", "embedding": "64", "epoch_steps": "50", "val": "0.12"}
        )
        at.query_params["patience"] = "999"
        at.run()
        assert not at.exception
        got = setting_values(at, PAGE, NEW)
        assert got == {
            "num_layers": 2,
            "dropout": 0.3,
            "embed": 64,
            "steps_per_epoch": 50,
            "val_fraction": 0.12,
            "patience": 0,
        }
        assert "patience=999" in all_text(at)
        assert at.query_params["layers"] in ("2", ["2"]) and at.query_params["val"] in (
            "0.12",
            ["0.12"],
        )  # written back


def test_dropout_with_one_layer_is_explained_before_and_refused_at_train(at: AppTest) -> None:
    use_tiny_settings(at, PAGE, model="gru", dropout=0.3)
    assert "丢弃" in all_text(at) and "2 或 3 层" in all_text(at)  # said under the settings at once
    at.button(key="train:start").click().run()
    assert not at.exception
    assert job_key(PAGE) not in at.session_state or at.session_state[job_key(PAGE)] is None  # nothing started
    assert any("丢弃" in e.value for e in at.error)
    set_settings(at, PAGE, {"num_layers": 2})
    assert "2 或 3 层" not in all_text(at)


@pytest.mark.parametrize(
    ("share", "said"),
    [(0.1, "验证集只有"), (0.02, "验证集比例内放不下一整篇文本")],  # fewer than 32 × 36 characters; no whole ci
)
def test_a_validation_split_too_small_is_explained_before_and_at_train(at: AppTest, share: float, said: str) -> None:
    use_tiny_settings(at, PAGE, model="gru", val_fraction=share, batch_size=32, num_steps=35)
    assert any(said in w.value for w in at.warning)  # before Train is pressed
    at.button(key="train:start").click().run()
    assert not at.exception
    assert any(said in e.value for e in at.error)


def test_a_run_uses_every_new_setting(at: AppTest) -> None:
    use_tiny_settings(
        at, PAGE, model="gru", num_layers=2, dropout=0.2, embed=16, steps_per_epoch=10, val_fraction=0.2, patience=5
    )
    assert "丢弃" not in "".join(w.value for w in at.warning)
    at.button(key="train:start").click().run()
    assert not at.exception
    job = wait_for_job(at, PAGE)
    cfg = job.config(0)
    assert (cfg.num_layers, cfg.dropout, cfg.embed, cfg.steps_per_epoch, cfg.val_fraction, cfg.patience) == (
        2,
        0.2,
        16,
        10,
        0.2,
        5,
    )
    view = session.manager().view(job)
    assert [h["steps"] for h in view.runs[0].history] == [10, 10]
    assert all(h["val_perplexity"] is not None for h in view.runs[0].history)
    at.run()
    assert "epoch" in all_text(at) or "周期" in all_text(at)
    # patience on and the run used all its epochs: the page names the epoch whose weights are kept
    best = view.runs[0].history[-1]["best_epoch"]
    assert job.checkpoint(0).best_epoch == best
    assert f"第 {best} 个周期的权重" in all_text(at)


# -- bad input: a clear message, and the run already trained stays -------------------------------------------------
# Each a clear message in both languages, never a traceback, and a run already trained is not lost. (The engine's
# side — old checkpoints, dropout with 1 layer, a validation split under one minibatch — is in test_models.py and
# test_training.py.)


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


def test_a_pasted_text_leaves_the_box_and_is_kept_once_by_the_server(at: AppTest) -> None:
    """Left in the box, a pasted text travels with every rerun the tab sends and stays in its session; the server
    keeps it once (by hash) and the session only its hash and length, and training can start from it."""
    text = "春眠不觉晓，处处闻啼鸟。" * 300
    at.selectbox(key="corpus:source").set_value("paste").run()
    at.text_area(key="corpus:paste").set_value(text).run()
    assert not at.exception
    assert at.text_area(key="corpus:paste").value == ""
    digest, chars, refusal = at.session_state["corpus:pasted"]
    assert chars == len(text) and refusal is None
    assert corpus_ui._RECEIVED.get(digest) == text.encode()
    assert not at.button(key="train:start").disabled
    assert any(f"{len(text):,}" in c.value for c in at.caption), [c.value for c in at.caption]


# -- the chapter's exercises: ReLU instead of tanh, not detaching the state, and the run's memory ---------------------


def test_relu_and_not_detaching_are_settings_that_reach_the_run(at: AppTest) -> None:
    """Both exercises are widgets with the book's defaults (tanh, detached); set, they are the run's config, and
    without detaching the page says what the run will need against what one run may use."""
    assert setting_values(at, PAGE, ("nonlinearity", "detach")) == {"nonlinearity": "tanh", "detach": True}
    use_tiny_settings(at, PAGE, model="rnn", nonlinearity="relu", sampling="adjacent", detach=False)
    assert any("预计需要约" in c.value for c in at.caption)
    at.button(key="train:start").click().run()
    assert not at.exception, at.exception
    job = wait_for_job(at, PAGE)
    (run,) = session.manager().view(job).runs
    assert (run.config["nonlinearity"], run.config["detach"]) == ("relu", False)
    assert [len(r.history) for r in session.manager().view(job).runs] == [2]


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"model": "gru", "nonlinearity": "relu"}, "ReLU 只能替换普通 RNN"),
        ({"sampling": "random", "detach": False}, "不分离隐藏状态需要相邻采样"),
    ],
)
def test_an_exercise_setting_the_model_cannot_take_is_explained_before_and_at_train(
    at: AppTest, values: dict, said: str
) -> None:
    use_tiny_settings(at, PAGE, **values)
    assert said in all_text(at)  # under the settings, at once
    at.button(key="train:start").click().run()
    assert not at.exception
    assert job_key(PAGE) not in at.session_state or at.session_state[job_key(PAGE)] is None
    assert any(said in shown(e.value) for e in at.error)


def test_a_run_over_the_memory_budget_is_refused_before_and_at_train_naming_what_to_lower(
    at: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget just above the tiny run's estimate: the tiny run trains; a larger one is refused under the
    settings and at Train with the engine's sentence (which names the setting to lower and what fits), and the
    trained run stays."""
    from lm_core import memory
    from lm_core.errors import localized

    job = start_tiny_job(at, PAGE, model="gru")
    corpus = job.corpus(0)
    tiny = memory.estimate_run_memory(job.config(0), corpus.vocab_size, len(corpus)).total
    monkeypatch.setenv(memory.ENV, str(tiny + 2**20))
    set_settings(at, PAGE, {"hidden": 512, "batch_size": 64})
    with pytest.raises(memory.RunMemoryError) as refused:
        memory.check_run_memory(
            settings.to_config(setting_values(at, PAGE, list(settings.FIELDS))), corpus.vocab_size, len(corpus)
        )
    said = localized(refused.value, "zh")
    assert "最多" in said  # the largest value that fits
    assert any(said in shown(w.value) for w in at.warning)  # before Train
    at.button(key="train:start").click().run()
    assert not at.exception
    assert any(said in shown(e.value) for e in at.error)
    assert at.session_state[job_key(PAGE)] == job.id  # nothing replaced it
    assert job.done and job.checkpoint(0).history


def test_a_runs_own_link_after_a_restart_says_it_was_interrupted_and_resumes_it() -> None:
    """After a restart the run's Train link (`?job=`) says where the run stopped and offers Resume, as My runs
    does, instead of a Train page that shows nothing of it."""
    import apptest_helpers_models as models
    import streamlit as st

    with _clean_runtime():
        job_id = models.trained_job("tester", epochs=1)
        store = session.manager().store
        store.set_status(f"{job_id}-0", "interrupted", "Interrupted at epoch 1 (the server stopped).", planned=3)
        session.shutdown_manager()  # the server goes away; the store keeps the run
        st.cache_resource.clear()
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
        models.act_as(at, "tester")
        at.query_params.update({"job": job_id, "lang": "en"})
        at.run()
        assert not at.exception, at.exception
        assert any("This run was interrupted at epoch 1 of 3" in w.value for w in at.warning), all_text(at)
        resume = [b for b in at.button if b.key.startswith(f"{PAGE}:stored_resume")]
        assert len(resume) == 1, [b.key for b in at.button]
        resume[0].click().run()
        assert not at.exception, at.exception
        job = session.manager().get(job_id, "tester")
        assert job is not None and job.thread is not None and at.session_state[job_key(PAGE)] == job_id
        job.thread.join(TIMEOUT)
        store = session.manager().store  # the restarted server's
        assert store.run(f"{job_id}-0", "tester").epoch == 3
        assert [h["epoch"] for h in store.history(f"{job_id}-0")] == [1, 2, 3]


def test_every_setting_is_sent_with_its_value_on_every_run() -> None:
    """A browser can lose the values it holds while the page around the widgets is redrawn (a class Join redraws
    the sidebar): then only a value the server sends is drawn, and a slider it does not send comes back at its
    minimum (hidden 1, num_steps 1, detach off: Train refused). So every run sends every setting's value."""
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.query_params["lang"] = "en"
    at.run()
    at.run()  # a rerun, as after any click: the values are already in the session
    assert not at.exception, at.exception
    widgets = [at.get(kind) for kind in ("slider", "select_slider", "toggle", "number_input", "selectbox", "radio")]
    settings_keys = {widget_key("train", name) for name in settings.FIELDS} | set(corpus_ui.WIDGET_KEYS)
    sent = {w.key: w.proto.set_value for group in widgets for w in group if w.key in settings_keys}
    assert widget_key("train", "hidden") in sent and "corpus:max_chars" in sent, sorted(sent)
    assert all(sent.values()), sorted(key for key, value in sent.items() if not value)


# -- the "do not detach" exercise in lockstep: the same run detached and not -------------------------------------------


def test_not_detached_comparison_trains_both_runs_in_lockstep_and_shows_each_runs_numbers(at: AppTest) -> None:
    """compare = "the same model, not detached": one job, two runs whose configs differ only in `detach`, and under
    the chart each run's seconds per epoch, gradient norm and peak-memory estimate, from its own history."""
    from lm_core import memory

    job = start_tiny_job(at, PAGE, model="scratch-rnn", sampling="adjacent", compare=settings.NOT_DETACHED)
    at.run()
    assert not at.exception, at.exception
    view = session.manager().view(job)
    first, second = (run.config for run in view.runs)
    assert {k for k in first if first[k] != second[k]} == {"detach"}
    assert (first["detach"], second["detach"]) == (True, False)
    assert [r.label for r in view.runs] == ["detach", "no_detach"]
    assert [len(r.history) for r in view.runs] == [2, 2]
    names = {t.get("name") for spec in plotly_specs(at) for t in spec["data"]}
    assert {"分离隐藏状态", "不分离隐藏状态"} <= names
    by_label: dict[str, list[str]] = {}
    for m in at.metric:
        by_label.setdefault(m.label, []).append(m.value)
    corpus = job.corpus(0)
    assert by_label["每周期秒数"] == [
        f"{sum(h['seconds'] for h in r.history) / len(r.history):.2f} 秒" for r in view.runs
    ]
    assert by_label["梯度范数"] == [f"{r.history[-1]['grad_norm_mean']:.3g}" for r in view.runs]
    estimates = [memory.estimate_run_memory(job.config(i), corpus.vocab_size, len(corpus)).total for i in (0, 1)]
    assert by_label["峰值内存（估计）"] == [memory.size_text(e) for e in estimates]
    assert estimates[1] > estimates[0]  # the not-detached run keeps the epoch's graphs


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"sampling": "random"}, "不分离隐藏状态需要相邻采样"),
        ({"sampling": "adjacent", "detach": False}, "请为第一个模型打开“分离隐藏状态”"),
    ],
)
def test_not_detached_comparison_needs_adjacent_sampling_and_a_detached_first_run(
    at: AppTest, values: dict, said: str
) -> None:
    use_tiny_settings(at, PAGE, compare=settings.NOT_DETACHED, **values)
    assert said in all_text(at)  # under the settings, at once
    at.button(key="train:start").click().run()
    assert not at.exception
    assert at.session_state.get(job_key(PAGE)) is None
    assert any(said in shown(e.value) for e in at.error)


def test_a_not_detached_comparison_too_big_together_is_refused_before_any_model_is_built(
    at: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget each run fits alone but the pair does not (one worker holds both): refused under the settings and at
    Train with the engine's sentence, which names minibatches per epoch and the largest value that fits; no model is
    built and no job starts."""
    from lm_core import memory, training
    from lm_core.errors import localized
    from lm_core.songci import songci_corpus

    use_tiny_settings(at, PAGE, model="scratch-rnn", sampling="adjacent", compare=settings.NOT_DETACHED)
    configs = settings.run_configs(setting_values(at, PAGE, settings.PAGE_FIELDS[PAGE]))
    corpus = songci_corpus(at.selectbox(key="corpus:subset").value, at.number_input(key="corpus:max_chars").value)
    built: list[object] = []
    real_build = training.build_config_model
    monkeypatch.setattr(training, "build_config_model", lambda *a, **k: built.append(a) or real_build(*a, **k))
    alone = max(memory.estimate_run_memory(c, corpus.vocab_size, len(corpus)).total for c in configs)
    together = memory.job_total([memory.estimate_run_memory(c, corpus.vocab_size, len(corpus)) for c in configs])
    assert alone < together
    budget = (alone + together) // 2
    monkeypatch.setenv(memory.ENV, str(budget))
    with pytest.raises(memory.RunMemoryError) as refused:
        memory.check_runs_memory(configs, corpus.vocab_size, len(corpus))
    said = localized(refused.value, "zh")
    assert "每个周期的小批量数设为不超过" in said  # the setting to lower, and the largest value that fits
    at.run()
    assert any(said in shown(w.value) for w in at.warning)  # before Train
    at.button(key="train:start").click().run()
    assert not at.exception
    assert any(said in shown(e.value) for e in at.error)
    assert built == []  # refused before either model was built
    assert at.session_state.get(job_key(PAGE)) is None
