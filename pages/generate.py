"""Generate page: write lyrics from a prefix, compare decoding strategies, see the odds and what was copied."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import streamlit as st

from lab_ui import charts, model_source, session
from lab_ui.highlight import copied_html
from lab_ui.i18n import N_, current_lang, t
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
        return t("generate.how_greedy")
    k = settings["top_k"]
    return t("generate.how_sample", T=settings["temperature"]) + (t("generate.how_topk", k=k) if k != "off" else "")


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
    main = _write(choice, prefix, length, settings["strategy"], temp, k, seed, N_("generate.lyrics"))
    variants = [_write(choice, prefix, length, "greedy", 1.0, None, seed, N_("generate.v_greedy"))]
    for T in COMPARE_TEMPERATURES:
        variants.append(_write(choice, prefix, length, "sample", T, None, seed, N_("generate.v_temp"), T=T))
    if k is not None or temp not in COMPARE_TEMPERATURES:
        variants.append(_write(choice, prefix, length, "sample", temp, k, seed, N_("generate.v_yours"), T=temp, k=k))
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
    strategy_labels = {"greedy": t("generate.greedy"), "sample": t("generate.sample")}
    top_k_labels = {k: t("generate.off") if k == "off" else str(k) for k in TOP_K}
    left, right = st.columns([3, 2])
    with left:
        prefix = st.text_input(t("generate.prefix"), key=KEYS["prefix"], max_chars=100, help=t("generate.prefix_help"))
        length = st.slider(t("generate.length"), 10, 200, key=KEYS["length"], help=t("generate.length_help"))
        seed = int(
            st.number_input(t("generate.seed"), 0, 2**31 - 1, step=1, key=KEYS["seed"], help=t("generate.seed_help"))
        )
    with right:
        strategy = st.radio(
            t("generate.strategy"),
            ("greedy", "sample"),
            key=KEYS["strategy"],
            horizontal=True,
            format_func=strategy_labels.get,
            help=t("generate.strategy_help"),
        )
        sampling = strategy == "sample"
        temperature = st.select_slider(
            t("generate.temperature"),
            TEMPERATURES,
            key=KEYS["temperature"],
            help=t("generate.temperature_help"),
            disabled=not sampling,
        )
        top_k = st.select_slider(
            t("generate.top_k"),
            TOP_K,
            key=KEYS["top_k"],
            help=t("generate.top_k_help"),
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
        label = t.md("generate.strip", bad=unknown, p=known)
        st.button(label, key=f"{PAGE}:strip", on_click=_set_prefix, args=(known,))
    else:
        default = model_source.default_prefix(choice)
        st.button(
            t.md("generate.use_default", p=default), key=f"{PAGE}:use_default", on_click=_set_prefix, args=(default,)
        )
    return False


def _text_block(written: Written) -> None:
    gen = written.generation
    st.html(
        copied_html(
            gen.text, len(gen.prefix), written.spans or [], t("generate.copied_title"), t("generate.prefix_title")
        )
    )


def _lyrics_ui(result: Result, choice: ModelChoice, current: dict) -> None:
    st.subheader(t("generate.lyrics"))
    s = result.settings
    # The same model is named in the current language; only a since-replaced one keeps its old name.
    model = choice.label if result.model_option == choice.option else result.model_label
    st.caption(t.md("generate.made_with", model=model, how=_how(s), n=s["length"], seed=s["seed"]))
    if result.settings != current or result.model_option != choice.option:
        st.caption(t("generate.stale"))
    text_col, meter_col = st.columns([4, 1])
    with text_col:
        _text_block(result.main)
    with meter_col:
        share = result.main.copied_share()
        st.metric(
            t("generate.meter"),
            t("generate.meter_off") if share is None else f"{share:.0%}",
            help=t("generate.meter_help", n=MIN_COPY),
        )
    if share is None:
        st.caption(choice.corpus_note if result.model_option == choice.option else "")
    else:
        st.caption(t("generate.meter_caption", n=MIN_COPY))
        if choice.corpus_note and result.model_option == choice.option:
            st.caption(choice.corpus_note)


def _compare_ui(result: Result) -> None:
    st.subheader(t("generate.compare"))
    st.caption(t("generate.compare_caption"))
    cols = st.columns(len(result.variants))
    for col, written in zip(cols, result.variants):
        with col:
            args = dict(written.label_args)
            if written.label_key == "generate.v_yours":
                args["k"] = t("generate.how_topk", k=args["k"]) if args["k"] is not None else ""
            st.markdown(f"**{t(written.label_key, **args)}**")
            _text_block(written)
            share = written.copied_share()
            if share is not None:
                st.caption(t("generate.v_copied", p=share))


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
        st.info(t.md("generate.versus_prefix", msg=problem))
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
            N_("generate.lyrics"),
        )
        held = (signature, written)
        st.session_state[f"{PAGE}:versus"] = held
    st.subheader(t("generate.versus"))
    st.caption(t("generate.versus_caption", n=MIN_COPY))
    for col, label, written in zip(st.columns(2), (choice.label, other.label), (result.main, held[1]), strict=True):
        with col:
            st.markdown(f"**{escape_markdown(label)}**")
            _text_block(written)
            share = written.copied_share()
            st.caption(t("generate.v_copied", p=share) if share is not None else t("generate.meter_off"))


def _step_chart(gen: Generation, i: int, key: str) -> None:
    """Bars for generated step `i` (1-based), titled with the text just before it."""
    cands = gen.steps[i - 1]
    pos = len(gen.prefix) + i - 1  # index of the character written at this step
    context = gen.text[max(0, pos - 12) : pos]
    fig = charts.prob_bars(
        [(c.char, c.prob) for c in cands],
        t("generate.step_title", i=i, ctx=escape_html(context)),
        chosen=gen.text[pos],
        y_title=t("generate.prob_axis"),
    )
    st.plotly_chart(fig, width="stretch", key=key)


def _probs_ui(result: Result) -> None:
    gen = result.main.generation
    if not gen.steps:
        return
    st.subheader(t("generate.probs"))
    how = t("generate.probs_greedy") if result.settings["strategy"] == "greedy" else t("generate.probs_sample")
    st.caption(t("generate.probs_caption", n=N_CANDIDATES, how=how))
    n = len(gen.steps)
    step = 2
    if n > 2:
        key = f"{PAGE}:step"
        value = st.session_state.get(key, 2)
        st.session_state[key] = value if 2 <= value <= n else 2  # written back: a new range is a new widget
        step = st.slider(t("generate.step"), 2, n, key=key, help=t("generate.step_help"))
    first_col, step_col = st.columns(2)
    with first_col:
        _step_chart(gen, 1, f"{PAGE}:probs_first")
    if n > 1:
        with step_col:
            _step_chart(gen, step, f"{PAGE}:probs_step")


def main() -> None:
    if session.entrypoint_ran_instead():
        return  # the entrypoint ran and drew this page
    choice = model_source.model_page_ui(PAGE, t("generate.title"), t("generate.intro"))
    if choice is None:
        return
    model_source.live_status_ui(choice, follow=False)
    settings = _settings_ui(choice)
    usable = _prefix_problem_ui(choice, settings["prefix"])
    run_col, reseed_col, _ = st.columns([1, 1, 3])
    with run_col:
        st.button(
            t("generate.run"),
            key=f"{PAGE}:run",
            type="primary",
            on_click=_request,
            disabled=not usable,
            width="stretch",
        )
    with reseed_col:
        st.button(t("generate.reseed"), key=f"{PAGE}:reseed", on_click=_new_seed, disabled=not usable, width="stretch")
    first_view = f"{PAGE}:result" not in st.session_state  # show lyrics at once, without a click
    if (st.session_state.pop(f"{PAGE}:pending", False) or first_view) and usable:
        try:
            st.session_state[f"{PAGE}:result"] = _run(choice, settings)
        except LabError as exc:
            st.error(t.md("generate.failed", msg=localized(exc, current_lang())))
    result: Result | None = st.session_state.get(f"{PAGE}:result")
    if not usable:
        return  # the message above says what to fix; old lyrics below it would only confuse
    if result is None:
        st.info(t("generate.press"))
        return
    _lyrics_ui(result, choice, settings)
    _versus_ui(choice, settings, result)
    _compare_ui(result)
    _probs_ui(result)


main()
