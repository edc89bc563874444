"""Memorise or generalise: one model on 10,000 characters and on all of Song ci, in lockstep, validation on both."""

from __future__ import annotations

import streamlit as st

from lab_ui import charts, jobs_ui, session, settings, training_page
from lab_ui.i18n import Translator, current_lang, run_label
from lm_core import lessons
from lm_core.errors import LabError, localized
from lm_core.serve.job import Job
from lm_core.serve.views import JobView

PAGE = "generalise"
FIELDS = (
    "model",
    "hidden",
    "embed",
    "num_layers",
    "dropout",
    "num_steps",
    "batch_size",
    "lr",
    "steps_per_epoch",
    "epochs",
    "seed",
)
DEFAULTS = settings.defaults_from(lessons.PRESET)

t = Translator(
    {
        "title": ("背诵还是创作", "Memorise or generalise"),
        "intro": (
            "同一个模型、同一组设置和种子，同步训练两次：一次只用 1 万个字（辛弃疾的词，书中那样小的语料），"
            "一次用全部宋词（148 万字）。两次每个周期都训练同样多的小批量，并且都在从没训练过的整首词上测验证困惑度。"
            "小语料上，训练困惑度一直下降，验证困惑度却掉头上升：模型在背诵（过拟合）。大语料上两者一起下降：模型在学会写词。",
            "The same model, settings and seed, trained twice in lockstep: once on 10,000 characters only (辛弃疾's "
            "ci, a corpus as small as the book's), once on all of Song ci (1.48 M characters). Both train the same "
            "number of minibatches per epoch, and both measure validation perplexity on whole ci they never train "
            "on. On the small corpus training perplexity keeps falling while validation turns up: the model "
            "memorises (overfitting). On the large one both fall together: it learns to write ci.",
        ),
        "preset": ("恢复本课的设置", "Lesson settings"),
        "preset_help": (
            "GRU，96 个隐藏单元，嵌入 64，批量 16 × 时间步 24，Adam 学习率 0.01，每个周期 100 个小批量，15 个周期："
            "在双核机器上每个周期（两个模型各 100 步）约 10 秒。",
            "GRU, 96 hidden units, embedding 64, batch 16 × num_steps 24, Adam lr 0.01, 100 minibatches per epoch, "
            "15 epochs: about 10 s per epoch (100 steps of each model) on a 2-core machine.",
        ),
        "corpora": (
            "语料：{small}，其中 {sv:.0%} 留作验证（整首词）；{large}，其中 {lv:.0%} 留作验证（约 {ln:,} 个字，比整个小语料还多）。",
            "Corpora: {small}, {sv:.0%} held out for validation (whole ci); {large}, {lv:.0%} held out (about "
            "{ln:,} characters, more than the whole small corpus).",
        ),
        "budget": (
            "每个周期两个模型各训练 {n} 个小批量（每批 {b} × {s} 个字）：小语料每个周期被读 {r:.1f} 遍，"
            "全部宋词 {p:.0f} 个周期才读完一遍。",
            "Each epoch trains each model on {n} minibatches ({b} × {s} characters each): the small corpus is read "
            "{r:.1f} times per epoch, all of Song ci once in {p:.0f} epochs.",
        ),
        "whole_pass_here": (
            "本课需要固定的小批量数：0（完整遍历）在这里按 {n} 计算，两个模型才公平。",
            "This lesson needs a fixed budget: 0 (a whole pass) counts as {n} here, so both models get the same.",
        ),
        "no_songci": ("内置宋词语料不可用：{msg}", "The bundled Song ci is not available: {msg}"),
        "start": ("开始训练（两个模型）", "Train both"),
        "no_job": (
            "按「开始训练」：两个模型同步训练，图中实线是训练困惑度，虚线是验证困惑度。",
            "Press Train: both models train in lockstep; solid lines are training perplexity, dashed lines validation.",
        ),
        "chart_title": (
            "训练（实线）与验证（虚线）困惑度，对数坐标",
            "Training (solid) and validation (dashed) perplexity, log scale",
        ),
        "train_of": ("{run} · 训练", "{run} · training"),
        "val_of": ("{run} · 验证", "{run} · validation"),
        "bigram": ("二元模型 · {run} {v:.0f}", "bigram · {run} {v:.0f}"),
        "verdict_title": ("现在的情况", "Where they stand"),
        "gap": ("验证 ÷ 训练", "validation ÷ training"),
        "gap_help": (
            "验证困惑度是训练困惑度的几倍：接近 1 说明模型在新词上和在见过的词上一样好；远大于 1 说明它在背诵。",
            "How many times the training perplexity the validation perplexity is: near 1, the model does as well "
            "on new ci as on those it saw; far above 1, it recites.",
        ),
        "best": ("最好的验证：第 {e} 个周期（{v:.1f}）", "Best validation: epoch {e} ({v:.1f})"),
        "rising": (
            "{run}：验证困惑度已经比第 {e} 个周期高，而训练困惑度还在下降：这就是过拟合。",
            "{run}: validation perplexity is now above its epoch-{e} best while training perplexity keeps falling: "
            "that is overfitting.",
        ),
        "then_generate": (
            "训练后到「生成」页选择这两个模型之一，并在「与另一个模型对比」中选另一个：并排看它们写的词和逐字照抄的比例。",
            "After training, open Generate, pick one of the two models and choose the other under “Compare with "
            "another model”: their lines side by side, with the share copied verbatim.",
        ),
    }
)


def _start(values: dict) -> None:
    """Both trainers from one config (the lesson's corpora and validation shares), in one lockstep job."""
    small, large = lessons.corpora()
    trainers = lessons.trainers(settings.to_config(values, base=lessons.PRESET), small, large)
    jobs_ui.start_job(PAGE, trainers, list(lessons.LABELS))


def _curves(view: JobView, labels: list[str]) -> list[charts.Curve]:
    """Training (solid) and validation (dashed) of each run, one colour per corpus."""
    curves = []
    for i, (run, label) in enumerate(zip(view.runs, labels, strict=True)):
        epochs = [h["epoch"] for h in run.history]
        curves.append(charts.Curve(t("train_of", run=label), epochs, [h["perplexity"] for h in run.history], color=i))
        val = [h["val_perplexity"] for h in run.history]
        curves.append(charts.Curve(t("val_of", run=label), epochs, val, dash="dash", color=i))
    return curves


def _verdict_ui(view: JobView, labels: list[str]) -> None:
    """Per run: the validation/training ratio now, its best validation epoch, and whether it is overfitting."""
    cols = st.columns(len(view.runs))
    for col, run, label in zip(cols, view.runs, labels, strict=True):
        hist = [h for h in run.history if h.get("val_perplexity") is not None]
        if not hist:
            continue
        last = hist[-1]
        best = min(hist, key=lambda h: h["val_perplexity"])
        with col:
            ratio = last["val_perplexity"] / last["perplexity"]
            shown = f"{ratio:.2f}" if ratio < 10 else f"{ratio:,.0f}"
            st.metric(f"{label} · {t('gap')}", shown, help=t("gap_help"))
            st.caption(t("best", e=best["epoch"], v=best["val_perplexity"]))
            falling = len(hist) >= 2 and hist[-1]["perplexity"] < hist[-2]["perplexity"]
            if best["epoch"] < last["epoch"] and falling:
                st.warning(t.md("rising", run=label, e=best["epoch"]))


def _draw(job: Job, view: JobView) -> None:
    labels = jobs_ui.run_labels(view)
    jobs_ui.progress_ui(view, labels)
    jobs_ui.controls_ui(PAGE, job, view)
    lines = []
    for i, label in enumerate(labels):
        b = job.baselines(i)
        if b is not None:
            lines.append((b.bigram, t("bigram", run=label, v=b.bigram)))
    fig = charts.perplexity_figure(
        _curves(view, labels), view.planned_epochs, t("chart_title"), t("epoch"), t("perplexity"), baselines=lines
    )
    st.plotly_chart(fig, width="stretch", key=f"{PAGE}:chart")
    st.subheader(t("verdict_title"))
    _verdict_ui(view, labels)
    if view.done:
        st.info(t("then_generate"))
    training_page.metrics_ui(view, labels)


def _about_ui(values: dict) -> str:
    """The two corpora and what the budget means for each; why not, when the bundled Song ci is missing."""
    try:
        small, large = lessons.corpora()
    except LabError as exc:
        return t.md("no_songci", msg=localized(exc, current_lang()))
    n_large_val = len(large) - large.split_point(lessons.LARGE_VAL)
    st.caption(
        t.md(
            "corpora",
            small=run_label("small"),
            sv=lessons.SMALL_VAL,
            large=run_label("large"),
            lv=lessons.LARGE_VAL,
            ln=n_large_val,
        )
    )
    steps = values["steps_per_epoch"] or lessons.PRESET.steps_per_epoch
    if not values["steps_per_epoch"]:
        st.caption(t("whole_pass_here", n=steps))
    chars = steps * values["batch_size"] * values["num_steps"]
    st.caption(
        t("budget", n=steps, b=values["batch_size"], s=values["num_steps"], r=chars / len(small), p=len(large) / chars)
    )
    return ""


def _plan(values: dict, choice: object) -> training_page.StartPlan:
    """What the lesson's corpora make of the budget, then Train: both models, unless Song ci is missing."""
    return training_page.StartPlan(lambda: _start(values), blocked=_about_ui(values))


FRAME = training_page.TrainingPage(
    PAGE,
    FIELDS,
    DEFAULTS,
    t,
    book_label_key="preset",
    book_help_key="preset_help",
    start_label_key="start",
    presets_menu=False,
    corpus_picker=False,
)


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    training_page.training_page_ui(FRAME, _plan, _draw, under_settings=training_page.setting_problem_ui)


main()
