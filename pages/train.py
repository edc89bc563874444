"""Train page: pick corpus, model and hyperparameters, press Train, watch it learn."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import streamlit as st

from lab_ui import corpus_ui, jobs_ui, model_source, persist, presets, session, settings, training_page
from lab_ui.highlight import copied_html
from lab_ui.i18n import Translator
from lab_ui.runs import epochs_table
from lab_ui.text import escape_markdown
from lm_core import checkpoint
from lm_core.checkpoint import Checkpoint
from lm_core.corpus import Corpus
from lm_core.generation import default_prefixes
from lm_core.jobs import Job, JobView
from lm_core.limits import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from lm_core.training import Trainer

PAGE = "train"
FIELDS = (
    "model",
    "sampling",
    "hidden",
    "num_steps",
    "batch_size",
    "lr",
    "optimizer",
    "clip_on",
    "clip",
    "epochs",
    "seed",
    "compare",
    "num_layers",
    "dropout",
    "embed",
    "steps_per_epoch",
    "val_fraction",
    "patience",
)

t = Translator(
    {
        "title": ("训练一个字符级循环神经网络", "Train a character-level RNN"),
        "intro": (
            "模型读入一个字符，预测下一个字符。困惑度 = exp(平均交叉熵)：最好为 1，"
            "随机猜测时等于词典大小（图中虚线）。每隔几个周期，下面会显示模型从前缀出发贪心写出的歌词。",
            "The model reads one character and predicts the next. Perplexity = exp(mean cross-entropy): 1 at best, "
            "the vocabulary size for a uniform guess (dotted line). Every few epochs the model writes greedy lines "
            "from the prefixes below, so you can see it learn.",
        ),
        "chart_title": ("训练困惑度（对数坐标）", "Training perplexity (log scale)"),
        "samples": ("模型写出的歌词（贪心，第 {e} 周期）", "What the model writes (greedy, epoch {e})"),
        "no_samples": ("第一个周期结束后出现。", "Appears after the first epoch."),
        "prefix_title": ("前缀", "prefix"),
        "book_preset_help": (
            "书中第一个实验：从零实现的 RNN，隐藏单元 256，时间步 35，批量 32，SGD 学习率 100，θ = 0.01，250 个周期。",
            "The chapter's first run: RNN from scratch, 256 hidden units, num_steps 35, batch 32, SGD lr 100, "
            "θ = 0.01, 250 epochs.",
        ),
        "clip_note_off": (
            "梯度裁剪已关闭：学习率大时训练可能发散。",
            "Clipping is off: with a large learning rate training may diverge.",
        ),
        "run_label": ("{m}", "{m}"),
        "download_ckpt": ("下载检查点：{m}", "Download checkpoint: {m}"),
        "download_csv": ("下载困惑度 CSV", "Download metrics CSV"),
        "download_slim": ("不含优化器状态（{mb:.1f} MB）", "Without optimiser state ({mb:.1f} MB)"),
        "download_too_big": (
            "这个检查点约 {mb:.0f} MB，超过 {limit} MB 的上传上限：无法再上传到本应用（可用命令行使用它）。",
            "This checkpoint is about {mb:.0f} MB, above the {limit} MB upload limit: it cannot be uploaded back "
            "to this app (the command line can use it).",
        ),
        "download_slim_fits": (
            "完整检查点约 {mb:.0f} MB，超过 {limit} MB 的上传上限；不含优化器状态的版本可以再上传（继续训练时优化器从头开始）。",
            "The full checkpoint is about {mb:.0f} MB, above the {limit} MB upload limit; the one without "
            "optimiser state can be uploaded back (continuing it starts a fresh optimiser).",
        ),
        "continue": ("继续训练 {n} 个周期", "Continue for {n} more epochs"),
        "continue_help": (
            "在本页已完成或已停止的模型上继续训练（保留权重、优化器状态和历史），周期数取自「迭代周期数」。",
            "Keep training this page's finished or stopped model (weights, optimiser state and history kept); "
            "the number of extra epochs comes from the Epochs slider.",
        ),
        "start_from": ("从检查点开始（可选）", "Start from a checkpoint (optional)"),
        "start_from_help": (
            "继续训练自带的或上传的模型：模型类型和隐藏单元数取自检查点，其余设置（学习率、周期数……）取自上面。"
            "语料必须与检查点的词典一致。",
            "Continue training a shipped or uploaded model: its type and hidden size come from the checkpoint, "
            "everything else (learning rate, epochs, ...) from the settings above. The corpus must have the "
            "checkpoint's vocabulary.",
        ),
        "from_new": ("新模型（随机初始权重）", "A new model (random initial weights)"),
        "from_upload": ("上传检查点 (.pt)", "Upload a checkpoint (.pt)"),
        "from_note": (
            "将继续训练：{d}。再训练的周期数取自「迭代周期数」。",
            "Will continue: {d}. The extra epochs come from the Epochs slider.",
        ),
        "no_job": ("设置好后按「开始训练」。", "Choose settings, then press Train."),
        "from_missing": (
            "「从检查点开始」选择了一个检查点，但它不可用：请上传一个可用的检查点，或选择「新模型」。在此之前无法开始训练。",
            "“Start from a checkpoint” names a checkpoint that cannot be used: upload a usable one or choose "
            "“A new model”. Until then Train is off.",
        ),
        "from_upload_first": ("请先上传检查点文件。", "Upload the checkpoint file first."),
        "opt_dropped": (
            "这个检查点的优化器状态格式有误，已忽略：继续训练时优化器从头开始。",
            "This checkpoint's optimiser state was malformed and is left out: training continues with a fresh "
            "optimiser.",
        ),
        "continue_corpus": ("继续时使用这次训练的语料：{name}", "Continues on this run's corpus: {name}"),
        "continue_other_corpus": (
            "继续时仍使用这次训练的语料「{name}」，而不是侧栏中现在选的「{now}」；要用新语料，请按「开始训练」。",
            "Continue keeps this run's corpus, {name}, not {now} now chosen in the sidebar; press Train to "
            "train on the new one.",
        ),
    }
)

FRAME = training_page.TrainingPage(PAGE, FIELDS, presets.PRESETS["book_random"], t, lesson_link=True)


def _labels(values: dict) -> list[str]:
    """Model kinds, not names: the job keeps them and each drawing translates them (jobs_ui.run_labels)."""
    names = [values["model"]]
    if values["compare"] != "none":
        names.append(values["compare"])
    return names


def _start_from_ui() -> tuple[Checkpoint | None, bool]:
    """Optionally start from a shipped or uploaded checkpoint instead of random weights.

    Returns the checkpoint (None: a new model) and whether the choice is usable:
    a checkpoint that was picked but is missing or refused must not quietly
    become a new random model, so the page turns Train off until it is fixed.
    """
    files = model_source.shipped_files()
    options = ["new", *[f.name for f in files], "upload"]
    labels = {"new": t("from_new"), "upload": t("from_upload")}
    persist.restore(f"{PAGE}:from")
    if st.session_state.get(f"{PAGE}:from") not in options:
        st.session_state[f"{PAGE}:from"] = "new"
    pick = st.selectbox(
        t("start_from"), options, key=f"{PAGE}:from", help=t("start_from_help"), format_func=lambda o: labels.get(o, o)
    )
    persist.save(f"{PAGE}:from")
    ckpt, error = None, None
    if pick == "upload":
        up = st.file_uploader(
            t("from_upload"),
            type=["pt"],
            key=f"{PAGE}:from_upload",
            help=t("upload_limit", mb=MAX_UPLOAD_MB),
            max_upload_size=MAX_UPLOAD_MB,
        )
        if up is not None:
            ckpt, error = model_source.parse_upload(up.getvalue(), up.name)
        else:
            st.info(t("from_upload_first"))
    elif pick != "new":
        ckpt, error = model_source.load_shipped(next(f for f in files if f.name == pick))
    if error:
        st.error(escape_markdown(error))
    if ckpt is not None:
        st.caption(t.md("from_note", d=model_source.describe(ckpt)))
        if ckpt.optimizer_dropped:
            st.caption(t("opt_dropped"))
    return ckpt, pick == "new" or ckpt is not None


def _resumed(ckpt: Checkpoint, corpus: Corpus, values: dict) -> Trainer:
    """A trainer that carries on from `ckpt`: its model, optimiser state and history, plus
    `values["epochs"]` more epochs with the other settings as they are now."""
    arch = ("model", "hidden", "num_layers", "dropout", "embed")  # the checkpoint's shape, not the widgets'
    cfg = settings.to_config({**values, **{k: getattr(ckpt.config, k) for k in arch}})
    cfg.epochs = len(ckpt.history) + values["epochs"]
    trainer = Trainer(corpus, cfg)
    checkpoint.restore_trainer(ckpt, trainer)
    return trainer


def _start(values: dict, choice: corpus_ui.CorpusChoice, base: Checkpoint | None = None) -> None:
    """Build trainers from the settings (or continue a checkpoint) and hand them to the job manager."""
    if base is not None:  # the checkpoint decides the model; the settings decide how to train it further
        trainers = [_resumed(base, choice.corpus, values)]
        labels = [base.config.model]
    else:
        trainers = [Trainer(choice.corpus, settings.to_config(values))]
        if values["compare"] != "none":
            trainers.append(Trainer(choice.corpus, settings.to_config({**values, "model": values["compare"]})))
        labels = _labels(values)
    epochs = trainers[0].config.epochs
    jobs_ui.start_job(
        PAGE, trainers, labels, prefixes=default_prefixes(choice.corpus), sample_every=max(1, epochs // 25)
    )


def _draw(job: Job, view: JobView) -> None:
    jobs_ui.run_header_ui(PAGE, job, view, t("chart_title"))
    labels = jobs_ui.run_labels(view)
    with st.container():  # samples appear after the first epoch: the elements below keep their places
        for run, label in zip(view.runs, labels, strict=True):
            if not run.samples:
                continue
            last = max(run.samples)
            st.markdown(f"**{escape_markdown(label)}** · " + t("samples", e=last))
            for prefix, text in run.samples[last].items():
                # HTML with every character escaped, not Markdown: a prefix such as "**" (an English corpus's
                # first characters) would leave bold markers unclosed and show stray asterisks.
                st.html(copied_html(text, len(prefix), [], "", t("prefix_title")))
    training_page.metrics_ui(view, labels)
    with st.container():
        if view.epoch > 0:
            _downloads(job, view, labels)


def _downloads(job: Job, view: JobView, labels: list[str]) -> None:
    """Checkpoint and CSV of the current run; built only when clicked."""
    cols = st.columns(len(view.runs) + 1)
    for i, run in enumerate(view.runs):
        with cols[i]:
            ckpt = job.checkpoint(i)
            name = f"{ckpt.config.model}-epoch{len(run.history)}"
            st.download_button(
                t("download_ckpt", m=labels[i]),
                data=lambda i=i: checkpoint.to_bytes(job.checkpoint(i)),
                file_name=f"{name}.pt",
                mime="application/octet-stream",
                on_click="ignore",
                key=f"{PAGE}:dl:{i}",
                icon=":material/download:",
            )
            _upload_limit_note(ckpt, i, name)
    with cols[-1]:
        st.download_button(
            t("download_csv"),
            data=lambda: epochs_table(job.snapshot(), labels).to_csv(index=False).encode("utf-8"),
            file_name="perplexity.csv",
            mime="text/csv",
            on_click="ignore",
            key=f"{PAGE}:dl:csv",
            icon=":material/table:",
        )


def _slim_bytes(ckpt: Checkpoint) -> bytes:
    return checkpoint.to_bytes(dataclasses.replace(ckpt, optimizer_state=None))


def _upload_limit_note(ckpt: Checkpoint, i: int, name: str) -> None:
    """A checkpoint the app made must load back into it: say when it is over the upload limit.

    When only the optimiser state (Adam's two moments) makes it too big, offer
    the file without it, which the app (and Continue) accept.
    """
    full = checkpoint.estimated_bytes(ckpt)
    if full <= MAX_UPLOAD_BYTES:
        return
    slim = checkpoint.estimated_bytes(ckpt, with_optimizer=False)
    if ckpt.optimizer_state and slim <= MAX_UPLOAD_BYTES:
        st.caption(t("download_slim_fits", mb=full / 2**20, limit=MAX_UPLOAD_MB))
        st.download_button(
            t("download_slim", mb=slim / 2**20),
            data=lambda: _slim_bytes(ckpt),
            file_name=f"{name}-slim.pt",
            mime="application/octet-stream",
            on_click="ignore",
            key=f"{PAGE}:dl_slim:{i}",
            icon=":material/download:",
        )
    else:
        st.caption(t("download_too_big", mb=full / 2**20, limit=MAX_UPLOAD_MB))


def _continue(job: Job, values: dict) -> None:
    """Train this page's finished or stopped run further: same models, optimiser states and histories."""
    trainers = [_resumed(job.checkpoint(i), job.corpus(i), values) for i in range(len(job.labels))]
    jobs_ui.start_job(PAGE, trainers, list(job.labels), prefixes=job.prefixes, sample_every=job.sample_every)


def _continue_corpus_note(job: Job, choice: corpus_ui.CorpusChoice) -> None:
    """Say which corpus Continue trains on, loudly when the sidebar now shows another one."""
    name = corpus_ui.corpus_display_name(job.trainers[0].corpus.name)
    now = choice.corpus
    if now is not None and now.text != job.trainers[0].corpus.text:
        st.warning(t("continue_other_corpus", name=name, now=corpus_ui.corpus_display_name(now.name)))
    else:
        st.caption(t("continue_corpus", name=name))


def _continue_ui(values: dict, choice: corpus_ui.CorpusChoice) -> Callable[[], None] | None:
    """Continue beside Train: on only when this page's run is over; returns the continuation when it was pressed."""
    job = jobs_ui.page_job(PAGE)
    more = job is not None and job.done and job.epochs_done(0) > 0
    go_on = st.button(
        t("continue", n=values["epochs"]), key=f"{PAGE}:continue", disabled=not more, help=t("continue_help")
    )
    if more:
        _continue_corpus_note(job, choice)
    return (lambda: _continue(job, values)) if go_on and job is not None else None


def _plan(values: dict, choice: corpus_ui.CorpusChoice) -> training_page.StartPlan:
    """The start-from picker, then what Train (a new model or the picked checkpoint) and Continue do."""
    with st.expander(t("start_from"), expanded=st.session_state.get(f"{PAGE}:from", "new") != "new"):
        base, base_ok = _start_from_ui()
    return training_page.StartPlan(
        start=lambda: _start(values, choice, base),
        blocked="" if base_ok else t("from_missing"),
        beside=lambda: _continue_ui(values, choice),
        replace_note=True,
    )


def _settings_notes(values: dict) -> None:
    """What is risky or invalid in the settings, said as soon as it is chosen, not only when Train is pressed."""
    if not values["clip_on"]:
        st.caption(t("clip_note_off"))
    problem = settings.config_problem(values)
    if problem:  # e.g. dropout with 1 layer
        st.warning(t.md("bad_setting", msg=problem))


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    training_page.training_page_ui(FRAME, _plan, _draw, under_settings=_settings_notes)


main()
