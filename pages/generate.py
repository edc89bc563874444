"""Generate page: write lyrics from a prefix, compare decoding strategies, see the odds and what was copied."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import streamlit as st

from lab_ui import charts, model_source, session
from lab_ui.highlight import copied_html
from lab_ui.i18n import Translator, current_lang
from lab_ui.model_source import ModelChoice
from lab_ui.persist import follow_default, restore, save
from lab_ui.text import escape_html, escape_markdown
from lm_core.errors import LabError, localized
from lm_core.generation import Generation, copied_spans, generate

PAGE = "generate"
MIN_COPY = 8  # a stretch this long found verbatim in the corpus counts as copied
N_CANDIDATES = 10
TEMPERATURES = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0)
TOP_K = ("off", *range(1, 51))
COMPARE_TEMPERATURES = (0.5, 1.0, 1.5)
KEYS = {name: f"{PAGE}:{name}" for name in ("prefix", "length", "strategy", "temperature", "top_k", "seed")}

t = Translator(
    {
        "title": ("从前缀生成歌词", "Generate lyrics from a prefix"),
        "intro": (
            "和书中一样：隐藏状态从零开始，先逐字读入前缀，然后每一步从模型给出的下一个字的概率中选一个字，再把它读回去。"
            "贪心 = 每次选概率最大的字；采样 = 按概率随机抽取，温度越低越保守，top-k 只在最可能的 k 个字中抽。",
            "As in the book: the state starts at zero, the prefix is read one character at a time, then at each "
            "step one next character is chosen from the model's probabilities and fed back. Greedy = always the "
            "most likely character; sample = draw by probability, where a lower temperature is more cautious and "
            "top-k draws only among the k most likely characters.",
        ),
        "prefix": ("前缀", "Prefix"),
        "prefix_help": (
            "模型从这些字接着写。书中用「分开」和「不分开」。",
            "The model continues from these characters. The book uses 分开 and 不分开.",
        ),
        "length": ("生成多少个字", "Characters to generate"),
        "length_help": ("书中生成 50 个字。", "The book generates 50."),
        "strategy": ("选字方式", "Decoding"),
        "strategy_help": (
            "贪心：书中的做法，每次取概率最大的字（同一前缀总得到同一结果）。采样：按概率抽取。",
            "Greedy: the book's way, always the most likely character (same prefix, same text). Sample: draw by "
            "probability.",
        ),
        "greedy": ("贪心", "greedy"),
        "sample": ("采样", "sample"),
        "temperature": ("温度", "Temperature"),
        "temperature_help": (
            "采样前把 logits 除以温度：< 1 更保守（接近贪心），> 1 更随意。",
            "Logits are divided by it before sampling: below 1 is more cautious (closer to greedy), above 1 wilder.",
        ),
        "top_k": ("top-k", "top-k"),
        "top_k_help": (
            "只在概率最大的 k 个字中抽取；off = 所有字都可能被抽到。",
            "Draw only among the k most likely characters; off = any character can be drawn.",
        ),
        "off": ("关闭", "off"),
        "seed": ("随机种子", "Seed"),
        "seed_help": ("同一种子、同一设置 = 同一段文字。", "Same seed and settings, same text."),
        "run": ("生成", "Generate"),
        "reseed": ("换个种子再生成", "New seed & generate"),
        "strip": (
            "删除不认识的字（{bad}），改用前缀「{p}」",
            "Remove the unknown characters ({bad}) and use the prefix “{p}”",
        ),
        "use_default": ("改用「{p}」", "Use “{p}” instead"),
        "press": ("按「生成」开始。", "Press Generate."),
        "failed": ("无法生成：{msg}", "Could not generate: {msg}"),
        "lyrics": ("生成的歌词", "The lyrics"),
        "made_with": (
            "{model} · {how} · {n} 个字 · 种子 {seed}",
            "{model} · {how} · {n} characters · seed {seed}",
        ),
        "how_greedy": ("贪心", "greedy"),
        "how_sample": ("采样，温度 {T:g}", "sample, temperature {T:g}"),
        "how_topk": ("，top-k {k}", ", top-k {k}"),
        "stale": ("设置已改变：按「生成」更新。", "Settings changed: press Generate to update."),
        "copied_title": ("训练语料中逐字出现过", "found verbatim in the training corpus"),
        "prefix_title": ("前缀", "prefix"),
        "meter": ("逐字照抄", "Copied verbatim"),
        "meter_help": (
            "生成的字中，属于训练语料里出现过的连续 {n} 个字以上片段的比例（黄色标出）。",
            "Share of generated characters inside stretches of {n}+ characters found verbatim in the training "
            "corpus (marked in yellow).",
        ),
        "meter_caption": (
            "黄色：与训练语料中连续 {n} 个字以上完全相同的片段。比例高说明模型在背诵，而不是创作。",
            "Yellow: stretches of {n}+ characters that appear verbatim in the training corpus. A high share means "
            "the model recites rather than composes.",
        ),
        "meter_off": ("不可用", "n/a"),
        "compare": ("同一前缀，不同选字方式", "Same prefix, different decoding"),
        "compare_caption": (
            "同一个模型、同一前缀、同一种子。贪心每次都一样；温度越高，文字越随意。",
            "Same model, prefix and seed. Greedy never changes; the higher the temperature, the wilder the text.",
        ),
        "v_greedy": ("贪心（书中）", "Greedy (the book)"),
        "v_temp": ("采样 · 温度 {T:g}", "Sample · temperature {T:g}"),
        "v_yours": ("你的设置 · 温度 {T:g}{k}", "Your settings · temperature {T:g}{k}"),
        "v_copied": ("照抄 {p:.0%}", "copied {p:.0%}"),
        "probs": ("下一个字的概率", "Next-character probabilities"),
        "probs_caption": (
            "模型在每一步给出的前 {n} 个候选字；橙色是实际写出的字。{how}",
            "The model's top {n} candidates at each step; orange is the character actually written. {how}",
        ),
        "probs_greedy": ("贪心时这就是模型的原始分布。", "With greedy decoding this is the model's raw distribution."),
        "probs_sample": (
            "采样时这是经过温度和 top-k 调整后、真正用来抽取的分布。",
            "When sampling, this is the distribution actually drawn from, after temperature and top-k.",
        ),
        "step": ("查看第几步", "Step to inspect"),
        "step_help": ("生成的第几个字。", "Which generated character."),
        "step_title": ("第 {i} 步：{ctx} → ?", "Step {i}: {ctx} → ?"),
        "prob_axis": ("概率", "probability"),
        "versus": ("两个模型，同一前缀", "Two models, one prefix"),
        "versus_caption": (
            "同一前缀、同一选字方式和种子。黄色是各自从自己的训练语料中逐字照抄的片段（连续 {n} 个字以上）。",
            "Same prefix, decoding and seed. Yellow marks what each copied verbatim from its own training text "
            "({n}+ characters in a row).",
        ),
        "versus_prefix": (
            "另一个模型不认识这个前缀：{msg}",
            "The other model cannot read this prefix: {msg}",
        ),
    }
)


@dataclass
class Written:
    """One generated text with its copied stretches (plain data: safe to keep in the session)."""

    label_key: str  # translated when drawn, so a language switch relabels old results
    label_args: dict
    generation: Generation
    spans: list[tuple[int, int]] | None  # None: the corpus text is unavailable

    def copied_share(self) -> float | None:
        if self.spans is None:
            return None
        n = len(self.generation.generated)
        return sum(e - b for b, e in self.spans) / n if n else 0.0


@dataclass
class Result:
    """What the last Generate press produced, and from which model and settings."""

    model_option: str
    model_label: str
    settings: dict
    main: Written
    variants: list[Written] = field(default_factory=list)


def _how(settings: dict) -> str:
    if settings["strategy"] == "greedy":
        return t("how_greedy")
    k = settings["top_k"]
    return t("how_sample", T=settings["temperature"]) + (t("how_topk", k=k) if k != "off" else "")


def _write(
    choice: ModelChoice,
    prefix: str,
    length: int,
    strategy: str,
    temperature: float,
    top_k: int | None,
    seed: int,
    label_key: str,
    **label_args: object,
) -> Written:
    gen = generate(choice.model, choice.vocab, prefix, length, strategy, temperature, top_k, seed, N_CANDIDATES)
    spans = copied_spans(gen.text, choice.corpus_text, MIN_COPY, start=len(prefix)) if choice.corpus_text else None
    return Written(label_key, label_args, gen, spans)


def _run(choice: ModelChoice, settings: dict) -> Result:
    """The user's text plus the same prefix decoded greedily and at a few temperatures."""
    prefix, length, seed = settings["prefix"], settings["length"], settings["seed"]
    k = None if settings["top_k"] == "off" else int(settings["top_k"])
    temp = settings["temperature"]
    main = _write(choice, prefix, length, settings["strategy"], temp, k, seed, "lyrics")
    variants = [_write(choice, prefix, length, "greedy", 1.0, None, seed, "v_greedy")]
    for T in COMPARE_TEMPERATURES:
        variants.append(_write(choice, prefix, length, "sample", T, None, seed, "v_temp", T=T))
    if k is not None or temp not in COMPARE_TEMPERATURES:
        variants.append(_write(choice, prefix, length, "sample", temp, k, seed, "v_yours", T=temp, k=k))
    return Result(choice.option, choice.label, settings, main, variants)


def _request() -> None:
    """A callback, not the button's return value: the request survives a rerun before the page body runs."""
    st.session_state[f"{PAGE}:pending"] = True


def _new_seed() -> None:
    st.session_state[KEYS["seed"]] = random.randrange(100_000)
    _request()


def _set_prefix(value: str) -> None:
    st.session_state[KEYS["prefix"]] = value


def _settings_ui(choice: ModelChoice) -> dict:
    """Prefix, length, decoding and seed; kept in non-widget keys so a page switch does not reset them."""
    default = model_source.default_prefix(choice)
    follow_default(KEYS["prefix"], default)  # another vocabulary may lack 分开; a typed prefix stays
    for name, value in (("length", 50), ("strategy", "greedy"), ("temperature", 1.0), ("top_k", "off"), ("seed", 0)):
        restore(KEYS[name], value)
    # Labels are bound now, not looked up lazily: AppTest calls format_func outside the script run.
    strategy_labels = {s: t(s) for s in ("greedy", "sample")}
    top_k_labels = {k: t("off") if k == "off" else str(k) for k in TOP_K}
    left, right = st.columns([3, 2])
    with left:
        prefix = st.text_input(t("prefix"), key=KEYS["prefix"], max_chars=100, help=t("prefix_help"))
        length = st.slider(t("length"), 10, 200, key=KEYS["length"], help=t("length_help"))
        seed = int(st.number_input(t("seed"), 0, 2**31 - 1, step=1, key=KEYS["seed"], help=t("seed_help")))
    with right:
        strategy = st.radio(
            t("strategy"),
            ("greedy", "sample"),
            key=KEYS["strategy"],
            horizontal=True,
            format_func=strategy_labels.get,
            help=t("strategy_help"),
        )
        sampling = strategy == "sample"
        temperature = st.select_slider(
            t("temperature"), TEMPERATURES, key=KEYS["temperature"], help=t("temperature_help"), disabled=not sampling
        )
        top_k = st.select_slider(
            t("top_k"),
            TOP_K,
            key=KEYS["top_k"],
            help=t("top_k_help"),
            disabled=not sampling,
            format_func=top_k_labels.get,
        )
    for key in KEYS.values():
        save(key)
    return {
        "prefix": prefix,
        "length": int(length),
        "strategy": strategy,
        "temperature": float(temperature),
        "top_k": top_k,
        "seed": seed,
    }


def _prefix_problem_ui(choice: ModelChoice, prefix: str) -> bool:
    """Name what is wrong with the prefix and offer a fix; True when it is usable."""
    problem = model_source.text_problem(prefix, choice)
    if problem is None:
        return True
    st.error(escape_markdown(problem))
    known = choice.known(prefix)
    unknown = model_source.format_chars(choice.unknown(prefix))
    if known:
        label = t.md("strip", bad=unknown, p=known)
        st.button(label, key=f"{PAGE}:strip", on_click=_set_prefix, args=(known,))
    else:
        default = model_source.default_prefix(choice)
        st.button(t.md("use_default", p=default), key=f"{PAGE}:use_default", on_click=_set_prefix, args=(default,))
    return False


def _text_block(written: Written) -> None:
    gen = written.generation
    st.html(copied_html(gen.text, len(gen.prefix), written.spans or [], t("copied_title"), t("prefix_title")))


def _lyrics_ui(result: Result, choice: ModelChoice, current: dict) -> None:
    st.subheader(t("lyrics"))
    s = result.settings
    # The same model is named in the current language; only a since-replaced one keeps its old name.
    model = choice.label if result.model_option == choice.option else result.model_label
    st.caption(t.md("made_with", model=model, how=_how(s), n=s["length"], seed=s["seed"]))
    if result.settings != current or result.model_option != choice.option:
        st.caption(t("stale"))
    text_col, meter_col = st.columns([4, 1])
    with text_col:
        _text_block(result.main)
    with meter_col:
        share = result.main.copied_share()
        st.metric(t("meter"), t("meter_off") if share is None else f"{share:.0%}", help=t("meter_help", n=MIN_COPY))
    if share is None:
        st.caption(choice.corpus_note if result.model_option == choice.option else "")
    else:
        st.caption(t("meter_caption", n=MIN_COPY))
        if choice.corpus_note and result.model_option == choice.option:
            st.caption(choice.corpus_note)


def _compare_ui(result: Result) -> None:
    st.subheader(t("compare"))
    st.caption(t("compare_caption"))
    cols = st.columns(len(result.variants))
    for col, written in zip(cols, result.variants):
        with col:
            args = dict(written.label_args)
            if written.label_key == "v_yours":
                args["k"] = t("how_topk", k=args["k"]) if args["k"] is not None else ""
            st.markdown(f"**{t(written.label_key, **args)}**")
            _text_block(written)
            share = written.copied_share()
            if share is not None:
                st.caption(t("v_copied", p=share))


def _versus_ui(choice: ModelChoice, settings: dict, result: Result) -> None:
    """The chosen model's lines beside a second model's, from the same prefix and settings, each with its copied share.

    Shows a model that recites next to one that composes. The second text is written once per
    settings and model version, not on every rerun.
    """
    other = model_source.compare_ui(PAGE, choice)
    if other is None:
        return
    problem = model_source.text_problem(settings["prefix"], other)
    if problem is not None:
        st.info(t.md("versus_prefix", msg=problem))
        return
    if result.settings != settings or result.model_option != choice.option:
        return  # the main text is stale: the "settings changed" note above asks for Generate first
    signature = (other.key, choice.key, tuple(sorted(settings.items())))
    held = st.session_state.get(f"{PAGE}:versus")
    if held is None or held[0] != signature:
        k = None if settings["top_k"] == "off" else int(settings["top_k"])
        written = _write(
            other,
            settings["prefix"],
            settings["length"],
            settings["strategy"],
            settings["temperature"],
            k,
            settings["seed"],
            "lyrics",
        )
        held = (signature, written)
        st.session_state[f"{PAGE}:versus"] = held
    st.subheader(t("versus"))
    st.caption(t("versus_caption", n=MIN_COPY))
    for col, label, written in zip(st.columns(2), (choice.label, other.label), (result.main, held[1]), strict=True):
        with col:
            st.markdown(f"**{escape_markdown(label)}**")
            _text_block(written)
            share = written.copied_share()
            st.caption(t("v_copied", p=share) if share is not None else t("meter_off"))


def _step_chart(gen: Generation, i: int, key: str) -> None:
    """Bars for generated step `i` (1-based), titled with the text just before it."""
    cands = gen.steps[i - 1]
    pos = len(gen.prefix) + i - 1  # index of the character written at this step
    context = gen.text[max(0, pos - 12) : pos]
    fig = charts.prob_bars(
        [(c.char, c.prob) for c in cands],
        t("step_title", i=i, ctx=escape_html(context)),
        chosen=gen.text[pos],
        y_title=t("prob_axis"),
    )
    st.plotly_chart(fig, width="stretch", key=key)


def _probs_ui(result: Result) -> None:
    gen = result.main.generation
    if not gen.steps:
        return
    st.subheader(t("probs"))
    how = t("probs_greedy") if result.settings["strategy"] == "greedy" else t("probs_sample")
    st.caption(t("probs_caption", n=N_CANDIDATES, how=how))
    n = len(gen.steps)
    step = 2
    if n > 2:
        key = f"{PAGE}:step"
        value = st.session_state.get(key, 2)
        st.session_state[key] = value if 2 <= value <= n else 2  # written back: a new range is a new widget
        step = st.slider(t("step"), 2, n, key=key, help=t("step_help"))
    first_col, step_col = st.columns(2)
    with first_col:
        _step_chart(gen, 1, f"{PAGE}:probs_first")
    if n > 1:
        with step_col:
            _step_chart(gen, step, f"{PAGE}:probs_step")


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    choice = model_source.model_page_ui(PAGE, t("title"), t("intro"))
    if choice is None:
        return
    model_source.live_status_ui(choice, follow=False)
    settings = _settings_ui(choice)
    usable = _prefix_problem_ui(choice, settings["prefix"])
    run_col, reseed_col, _ = st.columns([1, 1, 3])
    with run_col:
        st.button(t("run"), key=f"{PAGE}:run", type="primary", on_click=_request, disabled=not usable, width="stretch")
    with reseed_col:
        st.button(t("reseed"), key=f"{PAGE}:reseed", on_click=_new_seed, disabled=not usable, width="stretch")
    first_view = f"{PAGE}:result" not in st.session_state  # show lyrics at once, without a click
    if (st.session_state.pop(f"{PAGE}:pending", False) or first_view) and usable:
        try:
            st.session_state[f"{PAGE}:result"] = _run(choice, settings)
        except LabError as exc:
            st.error(t.md("failed", msg=localized(exc, current_lang())))
    result: Result | None = st.session_state.get(f"{PAGE}:result")
    if not usable:
        return  # the message above says what to fix; old lyrics below it would only confuse
    if result is None:
        st.info(t("press"))
        return
    _lyrics_ui(result, choice, settings)
    _versus_ui(choice, settings, result)
    _compare_ui(result)
    _probs_ui(result)


main()
