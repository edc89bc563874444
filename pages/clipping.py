"""Gradient clipping: the same model trained with and without clipping in lockstep, and its gradient norms."""

from __future__ import annotations

import statistics

import streamlit as st

from lab_ui import charts, corpus_ui, jobs_ui, presets, session, settings, training_page
from lab_ui.i18n import Translator
from lab_ui.runs import curves_from_view
from lm_core.sampling import minibatches_per_epoch
from lm_core.serve.job import Job
from lm_core.serve.views import JobView, RunView
from lm_core.training import Trainer

PAGE = "clipping"
# No clip_on toggle: the page always trains one run clipped at θ and one not clipped.
FIELDS = ("model", "sampling", "hidden", "num_steps", "batch_size", "lr", "optimizer", "clip", "epochs", "seed")
DEFAULTS = {**presets.PRESETS["book_random"], "epochs": 30}  # the book's run, short enough to watch
MAX_POINTS = 4000  # per trace in the gradient-norm chart

t = Translator(
    {
        "title": ("梯度裁剪", "Gradient clipping"),
        "intro": (
            "同一个模型、同一个种子（因此初始权重相同）训练两次，同步进行：一次把梯度裁剪到 θ，一次不裁剪。"
            "上图是两者的困惑度，下图是每一步裁剪之前的梯度范数。",
            "The same model from the same seed (so the same initial weights), trained twice in lockstep: once with "
            "the gradient clipped at θ, once without. The first chart shows both perplexities, the second the "
            "gradient norm of every step before clipping.",
        ),
        "chart_title": (
            "训练困惑度：裁剪 vs 不裁剪（对数坐标）",
            "Training perplexity: clipped vs not clipped (log scale)",
        ),
        "norm_title": (
            "每一步的梯度范数 ‖g‖（裁剪之前，对数坐标）",
            "Gradient norm ‖g‖ per step, before clipping (log scale)",
        ),
        "norm_x": ("训练步（共 {n} 步 / 周期）", "step ({n} per epoch)"),
        "norm_y": ("梯度范数", "gradient norm"),
        "theta_line": ("θ = {theta}：高于此线的步会被裁剪", "θ = {theta}: steps above this line get clipped"),
        "norm_note": (
            "为了让图保持流畅，正在训练的模型只画到最近一个完成的周期；超过 {n} 步时，每一段只保留最大值，尖峰不会消失。",
            "While a model trains, its trace is drawn up to its last finished epoch; past {n} steps each stretch "
            "keeps only its largest value, so spikes never disappear.",
        ),
        "share_clipped": ("被裁剪", "clipped"),
        "share_above": ("‖g‖ > θ（未裁剪）", "‖g‖ > θ, not clipped"),
        "share_value": ("{p:.0f}% 的步", "{p:.0f}% of steps"),
        "share_help": ("在已记录的 {n} 步中。", "Out of the {n} steps recorded."),
        "share_above_help": (
            "范数大于 θ 的步（在已记录的 {n} 步中）：这次训练不裁剪，它们原样用于更新。",
            "Steps whose norm was above θ, out of the {n} recorded: this run does not clip, so they were used as "
            "they were.",
        ),
        "median_norm": ("‖g‖ 中位数", "median ‖g‖"),
        "median_help": ("裁剪之前的梯度范数。", "Gradient norm before clipping."),
        "book_preset_30": ("恢复书中设置（30 个周期）", "Book settings (30 epochs)"),
        "book_preset_help": (
            "书中的从零实现 RNN：隐藏单元 256，时间步 35，批量 32，SGD 学习率 100，θ = 0.01；为了快，只训练 30 个周期。",
            "The chapter's RNN from scratch: 256 hidden units, num_steps 35, batch 32, SGD lr 100, θ = 0.01; "
            "30 epochs so it is quick.",
        ),
        "no_job": (
            "设置好后按「开始训练」：会同时训练两个模型，一个裁剪梯度，一个不裁剪。",
            "Choose settings, then press Train: two models are trained side by side, one clipped, one not.",
        ),
        "explain_header": ("裁剪做了什么", "What clipping does"),
        "explain": (
            "把所有参数的梯度拼成一个长向量 **g**。如果它的长度 ‖g‖ 大于 θ，就把整个向量乘以 θ/‖g‖："
            "方向不变，长度变成 θ；否则保持不变。\n\n"
            "书中 θ = 0.01、SGD 学习率 100：几乎每一步 ‖g‖ 都大于 0.01，所以几乎每一步都被裁剪，"
            "每次更新移动权重的长度约为 学习率 × θ = 1。在这里裁剪的作用相当于固定步长的归一化梯度下降。\n\n"
            "不裁剪时，同样的学习率 100 乘上一个范数可达几十到上千的梯度（沿 35 个时间步反向传播时会出现尖峰）："
            "权重一下子跳得很远，tanh 饱和，几步之内损失就变得极大或成为 NaN。"
            "应用会捕获这种情况，把模型回退到上一个完成的周期，并把这次训练标为发散（图中的 ✕），而不是崩溃。",
            "Clipping treats the gradients of all parameters as one long vector **g**. If its length ‖g‖ is above "
            "θ, the whole vector is multiplied by θ/‖g‖: the direction stays, the length becomes θ. Otherwise it is "
            "left alone.\n\n"
            "With the book's θ = 0.01 and SGD lr 100, ‖g‖ is above 0.01 at nearly every step, so nearly every step "
            "is clipped and each update moves the weights by a vector of norm lr × θ ≈ 1: here clipping works like "
            "normalised gradient descent with a fixed step length.\n\n"
            "Without clipping, the same lr 100 multiplies gradients whose norm reaches tens to thousands (spikes "
            "from backpropagating through 35 time steps): the weights jump far, tanh saturates, and within a few "
            "steps the loss becomes enormous or NaN. The app catches that, rolls the model back to its last finished "
            "epoch and marks the run as diverged (the ✕ in the charts) instead of crashing.",
        ),
    }
)

FRAME = training_page.TrainingPage(PAGE, FIELDS, DEFAULTS, t, book_label_key="book_preset_30", presets_menu=False)


def _start(values: dict, choice: corpus_ui.CorpusChoice) -> None:
    """Two trainers from one config and one seed: clipped at θ, and clip=None."""
    trainers = [Trainer(choice.corpus, settings.to_config({**values, "clip_on": on})) for on in (True, False)]
    jobs_ui.start_job(PAGE, trainers, ["clip", "noclip"])  # keys; _draw names them in the current language


def _steps_per_epoch(job: Job, run: RunView) -> int:
    cfg = run.config
    n_chars = job.train_chars(0)  # fixed when the job was built
    return minibatches_per_epoch(n_chars, cfg["batch_size"], cfg["num_steps"], cfg["sampling"])


def _norm_traces(view: JobView, labels: list[str]) -> list[charts.NormTrace]:
    """Each run's norms; a run still training only up to its last finished epoch.

    Cutting at epoch boundaries keeps the figure identical between two polls in
    the same epoch, so Streamlit does not re-mount it twice a second.
    """
    traces = []
    for run, label in zip(view.runs, labels, strict=True):
        norms = run.step_norms
        if run.status in ("running", "paused", "queued"):
            norms = norms[: sum(h["steps"] for h in run.history)]
        traces.append(charts.NormTrace(label, norms, diverged=run.status == "diverged"))
    return traces


def _share_ui(view: JobView, labels: list[str], theta: float) -> None:
    """Per run: share of steps clipped (or, unclipped, above θ) and the median norm before clipping."""
    for col, run, label in zip(st.columns(len(view.runs)), view.runs, labels, strict=True):
        n = len(run.step_norms)
        if not n:
            continue
        with col:
            st.markdown(f"**{label}**")
            left, right = st.columns(2)
            if run.config["clip"] is not None:
                share = 100 * sum(run.step_clipped) / n
                left.metric(t("share_clipped"), t("share_value", p=share), help=t("share_help", n=n))
            else:
                share = 100 * sum(v > theta for v in run.step_norms) / n
                left.metric(t("share_above"), t("share_value", p=share), help=t("share_above_help", n=n))
            right.metric(t("median_norm"), f"{statistics.median(run.step_norms):.3g}", help=t("median_help"))


def _draw(job: Job, view: JobView) -> None:
    theta = view.runs[0].config["clip"]
    labels = jobs_ui.run_labels(view)  # in the current language, whatever it was at start
    curves = curves_from_view(view, labels=labels)
    jobs_ui.run_header_ui(PAGE, job, view, t("chart_title"), curves)
    per_epoch = _steps_per_epoch(job, view.runs[0])
    norm_fig = charts.grad_norm_figure(
        _norm_traces(view, labels),
        theta,
        t("norm_title"),
        t("norm_x", n=per_epoch),
        t("norm_y"),
        theta_label=t("theta_line", theta=f"{theta:g}"),
        planned_steps=per_epoch * view.planned_epochs,
        max_points=MAX_POINTS,
    )
    st.plotly_chart(norm_fig, width="stretch", key=f"{PAGE}:norms")
    st.caption(t("norm_note", n=MAX_POINTS))
    _share_ui(view, labels, theta)
    training_page.metrics_ui(view, labels)


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    training_page.training_page_ui(FRAME, training_page.plain_start(_start), _draw)
    with st.expander(t("explain_header"), expanded=True):
        st.markdown(t("explain"))


main()
