"""Training settings as widgets that survive page switches and live in the URL.

Each setting is a `Field`: how it is drawn, how it is written in the URL and
read back. A page asks for the fields it needs; `settings_ui` draws them,
restores them after a page switch (Streamlit drops widget state of pages not
shown), takes them from a shared lesson link on first load, and writes them
back to `st.query_params` so the address bar is always a shareable lesson.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from lm_core.errors import ConfigError, LabError, localized
from lm_core.limits import MAX_EMBED, MAX_LAYERS
from lm_core.models import MODEL_KINDS, NONLINEARITIES, RELU_KINDS
from lm_core.training import TrainConfig

from . import identity, persist
from .i18n import N_, current_lang, labels, model_label, t

HIDDEN_OPTIONS = (1, 2, 4, 8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
BATCH_OPTIONS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LR_OPTIONS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
CLIP_OPTIONS = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
# The deep-model settings. Dropout stops at 0.5 here (the engine allows up to 0.9; above 0.5 a small model learns
# little), validation at 0.4 (the engine: below 0.5), patience at 50 epochs; the help texts say so.
DROPOUT_OPTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
EMBED_OPTIONS = tuple(e for e in (0, 16, 32, 64, 96, 128, 192, 256, 384, 512) if e <= MAX_EMBED)
STEPS_PER_EPOCH_OPTIONS = (0, 10, 25, 50, 100, 200, 250, 500, 1000, 2000)
VAL_OPTIONS = (0.0, 0.02, 0.05, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4)
MAX_PATIENCE = 50


def _nearest(options: Sequence[float], value: float, log: bool = False) -> float:
    key = (lambda o: abs(math.log(o) - math.log(value))) if log and value > 0 else (lambda o: abs(o - value))
    return min(options, key=key)


def _fmt_num(v: float) -> str:
    return f"{v:g}"


_WHOLE = re.compile(r"[0-9]{1,12}")
_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{0,12})?([eE][-+]?[0-9]{1,3})?")


def parse_whole(raw: str, lo: int, hi: int) -> int:
    """A URL value as a whole number in [lo, hi], else ValueError.

    Only ASCII digits: `str.isdigit()` accepts '²' (which `int()` then
    refuses) and `int()` accepts ' 1_0 '; neither belongs in a link.
    """
    if not _WHOLE.fullmatch(raw) or not lo <= int(raw) <= hi:
        raise ValueError(raw)
    return int(raw)


def parse_decimal(raw: str, lo: float, hi: float) -> float:
    """A URL value as a plain decimal number in [lo, hi] (no 'nan', 'inf', '1_0'), else ValueError."""
    if not _DECIMAL.fullmatch(raw) or not lo <= float(raw) <= hi:
        raise ValueError(raw)
    return float(raw)


OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}  # as the book and PyTorch write them
NONLINEARITY_NAMES = {"tanh": "tanh", "relu": "ReLU"}


@dataclass(frozen=True)
class Field:
    name: str  # TrainConfig attribute (or page-level setting) and URL key
    widget: str  # selectbox | radio | select_slider | slider | number | toggle
    options: Sequence[Any] = ()
    bounds: tuple[int, int] = (0, 0)
    log: bool = False
    label_key: str = ""
    help_key: str = ""
    fmt: Callable[[Any], str] | None = None
    help_args: tuple[tuple[str, Any], ...] = ()  # numbers the help text states (its limits)

    def parse(self, raw: str) -> Any:
        """URL text -> value, or raise ValueError."""
        if self.widget == "toggle":
            if raw not in ("on", "off"):
                raise ValueError(raw)
            return raw == "on"
        if self.widget in ("selectbox", "radio"):
            if raw not in [str(o) for o in self.options]:
                raise ValueError(raw)
            return next(o for o in self.options if str(o) == raw)
        if self.widget == "select_slider":
            # Within the slider's range (a little rounding either side): hidden=1e20 is refused, not
            # silently moved to an end of the slider.
            lo, hi = min(self.options), max(self.options)
            value = parse_decimal(raw, lo / 2 if self.log else lo, hi * 2 if self.log else hi)
            if self.log and value <= 0:
                raise ValueError(raw)
            return _nearest(self.options, value, self.log)
        return parse_whole(raw, *self.bounds)

    def dump(self, value: Any) -> str:
        if self.widget == "toggle":
            return "on" if value else "off"
        return _fmt_num(value) if isinstance(value, float) else str(value)


def _model_label(kind: str) -> str:
    return model_label(kind)


SAMPLING_LABELS = {"random": N_("common.random"), "adjacent": N_("common.adjacent")}


# The Train page's `compare` choice that is not a second model kind: the same run without detaching the state (the
# chapter's exercise), trained in lockstep with the run as set.
NOT_DETACHED = "no_detach"
COMPARE_LABELS = {"none": N_("common.compare_none"), NOT_DETACHED: N_("common.compare_no_detach")}


def _sampling_label(mode: str) -> str:
    return t(SAMPLING_LABELS[mode])


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field(
            "model",
            "selectbox",
            MODEL_KINDS,
            label_key=N_("common.model"),
            help_key=N_("common.model_help"),
            fmt=_model_label,
        ),
        Field(
            "sampling",
            "radio",
            ("random", "adjacent"),
            label_key=N_("common.sampling"),
            help_key=N_("common.sampling_help"),
            fmt=_sampling_label,
        ),
        Field(
            "hidden", "select_slider", HIDDEN_OPTIONS, label_key=N_("common.hidden"), help_key=N_("common.hidden_help")
        ),
        Field("num_steps", "slider", bounds=(1, 200), label_key=N_("common.steps"), help_key=N_("common.steps_help")),
        Field(
            "batch_size", "select_slider", BATCH_OPTIONS, label_key=N_("common.batch"), help_key=N_("common.batch_help")
        ),
        Field(
            "lr",
            "select_slider",
            LR_OPTIONS,
            log=True,
            label_key=N_("common.lr"),
            help_key=N_("common.lr_help"),
            fmt=_fmt_num,
        ),
        Field(
            "optimizer",
            "radio",
            ("sgd", "adam"),
            label_key=N_("common.optimizer"),
            help_key=N_("common.optimizer_help"),
            fmt=OPTIMIZER_NAMES.get,
        ),
        Field("clip_on", "toggle", label_key=N_("common.clip_on"), help_key=N_("common.clip_on_help")),
        Field(
            "clip",
            "select_slider",
            CLIP_OPTIONS,
            log=True,
            label_key=N_("common.clip"),
            help_key=N_("common.clip_help"),
            fmt=_fmt_num,
        ),
        Field(
            "nonlinearity",
            "radio",
            NONLINEARITIES,
            label_key=N_("common.nonlinearity"),
            help_key=N_("common.nonlinearity_help"),
            fmt=NONLINEARITY_NAMES.get,
        ),
        Field("detach", "toggle", label_key=N_("common.detach"), help_key=N_("common.detach_help")),
        Field("epochs", "slider", bounds=(1, 500), label_key=N_("common.epochs"), help_key=N_("common.epochs_help")),
        Field(
            "num_layers",
            "slider",
            bounds=(1, MAX_LAYERS),
            label_key=N_("common.num_layers"),
            help_key=N_("common.num_layers_help"),
            help_args=(("n", MAX_LAYERS),),
        ),
        Field(
            "dropout",
            "select_slider",
            DROPOUT_OPTIONS,
            label_key=N_("common.dropout"),
            help_key=N_("common.dropout_help"),
            fmt=_fmt_num,
        ),
        Field(
            "embed",
            "select_slider",
            EMBED_OPTIONS,
            label_key=N_("common.embed"),
            help_key=N_("common.embed_help"),
            fmt=lambda e: t("common.embed_off") if e == 0 else str(e),
            help_args=(("n", MAX_EMBED),),
        ),
        Field(
            "steps_per_epoch",
            "select_slider",
            STEPS_PER_EPOCH_OPTIONS,
            label_key=N_("common.steps_per_epoch"),
            help_key=N_("common.steps_per_epoch_help"),
            fmt=lambda n: t("common.whole_pass") if n == 0 else str(n),
        ),
        Field(
            "val_fraction",
            "select_slider",
            VAL_OPTIONS,
            label_key=N_("common.val_fraction"),
            help_key=N_("common.val_fraction_help"),
            fmt=lambda v: f"{v:.0%}",
        ),
        Field(
            "patience",
            "slider",
            bounds=(0, MAX_PATIENCE),
            label_key=N_("common.patience"),
            help_key=N_("common.patience_help"),
        ),
        Field("seed", "number", bounds=(0, 2**31 - 1), label_key=N_("common.seed"), help_key=N_("common.seed_help")),
        Field(
            "compare",
            "selectbox",
            ("none", NOT_DETACHED, *MODEL_KINDS),
            label_key=N_("common.compare"),
            help_key=N_("common.compare_help"),
            fmt=lambda k: t(COMPARE_LABELS[k]) if k in COMPARE_LABELS else _model_label(k),
        ),
    )
}

URL_KEYS = {
    "num_steps": "steps",
    "batch_size": "batch",
    "optimizer": "opt",
    "clip_on": "clipping",
    "num_layers": "layers",
    "steps_per_epoch": "epoch_steps",
    "val_fraction": "val",
    "embed": "embedding",  # Streamlit reserves ?embed= (embedded apps)
}
# The settings each training page shows, by page key (a page's `FIELDS`): here, not in the page files, so a
# lesson link (`lab_ui.lesson`) carries exactly the settings its page reads.
PAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "train": (
        "model",
        "sampling",
        "hidden",
        "num_steps",
        "batch_size",
        "lr",
        "optimizer",
        "clip_on",
        "clip",
        "nonlinearity",
        "detach",
        "epochs",
        "seed",
        "compare",
        "num_layers",
        "dropout",
        "embed",
        "steps_per_epoch",
        "val_fraction",
        "patience",
    ),
    # Every setting except `sampling`: the page trains both modes.
    "sampling": ("model", "hidden", "num_steps", "batch_size", "lr", "optimizer", "clip_on", "clip", "epochs", "seed"),
    # No clip_on toggle: the page always trains one run clipped at θ and one not clipped.
    "clipping": (
        "model",
        "nonlinearity",
        "sampling",
        "hidden",
        "num_steps",
        "batch_size",
        "lr",
        "optimizer",
        "clip",
        "epochs",
        "seed",
    ),
    "generalise": (
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
    ),
}
# The engine's defaults, so a page or preset that predates these fields still has a value for each.
NEW_FIELD_DEFAULTS = {
    "num_layers": 1,
    "dropout": 0.0,
    "embed": 0,
    "steps_per_epoch": 0,
    "val_fraction": 0.0,
    "patience": 0,
    "nonlinearity": "tanh",
    "detach": True,
}


def defaults_from(cfg: TrainConfig) -> dict[str, Any]:
    """Widget values for a config (θ off is `clip_on=False` with θ kept at the book's 0.01)."""
    values = {name: getattr(cfg, name) for name in FIELDS if hasattr(cfg, name)}
    values["clip_on"] = cfg.clip is not None
    values["clip"] = cfg.clip if cfg.clip is not None else 0.01
    values["hidden"] = _nearest(HIDDEN_OPTIONS, cfg.hidden)
    values["batch_size"] = _nearest(BATCH_OPTIONS, cfg.batch_size)
    values["lr"] = _nearest(LR_OPTIONS, cfg.lr, log=True)
    values["dropout"] = _nearest(DROPOUT_OPTIONS, cfg.dropout)
    values["embed"] = _nearest(EMBED_OPTIONS, cfg.embed)
    values["steps_per_epoch"] = _nearest(STEPS_PER_EPOCH_OPTIONS, cfg.steps_per_epoch)
    values["val_fraction"] = _nearest(VAL_OPTIONS, cfg.val_fraction)
    values["patience"] = min(cfg.patience, MAX_PATIENCE)
    return values


def compared_values(values: dict[str, Any]) -> dict[str, Any] | None:
    """The second run's settings when `compare` asks for one (None: no comparison).

    Another model kind: the same settings, except a GRU or LSTM keeps its gates' tanh when the RNN is set to
    ReLU. `NOT_DETACHED`: the same settings with the state not detached, which needs the run as set to detach
    (else both runs would be the same) and adjacent sampling (the second run's own check says so).
    """
    kind = values.get("compare", "none")
    if kind == "none":
        return None
    if kind == NOT_DETACHED:
        if not values.get("detach", True):
            raise ConfigError("error.training.compare_no_detach_detached")
        return {**values, "detach": False}
    return {**values, "model": kind, "nonlinearity": values["nonlinearity"] if kind in RELU_KINDS else "tanh"}


def run_configs(values: dict[str, Any]) -> list[TrainConfig]:
    """The configs of the runs Train starts from these settings: the run as set, and the compared one if any.

    Each is validated, so a caller may estimate their memory before any model is built.
    """
    second = compared_values(values)
    configs = [to_config(values)] + ([to_config(second)] if second is not None else [])
    for config in configs:
        config.validate()
    return configs


def config_problem(values: dict[str, Any]) -> str | None:
    """Why these widget values are not a valid run (e.g. dropout with 1 layer), in the UI's language; None if fine.

    Shown under the settings as soon as the combination is chosen, not only when Train is pressed. The
    compared run, if any, is checked too.
    """
    try:
        run_configs(values)
    except LabError as exc:
        return localized(exc, current_lang())
    return None


def to_config(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    cfg = TrainConfig.from_dict({**(base or TrainConfig()).to_dict(), **values})
    if "clip_on" in values:
        cfg.clip = values.get("clip", 0.01) if values["clip_on"] else None
    return cfg


def widget_key(page: str, name: str) -> str:
    """The session-state key of setting `name`'s widget on `page`.

    Each page keeps its own copy of a setting, so the page is part of the key. Tests (and any
    page that reads a setting's widget) build it here instead of spelling `page:w:name`, so a
    change of shape cannot leave one of them reading a key nobody writes.
    """
    return f"{page}:w:{name}"


def apply_values(page: str, values: dict[str, Any]) -> None:
    """Set widgets (e.g. from a preset); safe inside an `on_click` callback."""
    for name, value in values.items():
        st.session_state[widget_key(page, name)] = value
        persist.remember(widget_key(page, name), value)


def first_visit(page: str) -> bool:
    """Whether `page`'s settings have not been drawn yet in this session: only then does a link's URL set them."""
    return f"{page}:visited" not in st.session_state


def forget_visit(page: str) -> None:
    """Let a link's settings apply on `page` again (see `first_visit`): a lesson link within the session."""
    st.session_state.pop(f"{page}:visited", None)


def link_values(names: Iterable[str]) -> dict[str, Any]:
    """The settings among `names` that the URL (a shared link) carries; unreadable ones are left out (the
    settings say so when they are drawn)."""
    found: dict[str, Any] = {}
    for name in names:
        raw = st.query_params.get(URL_KEYS.get(name, name))
        if raw is None:
            continue
        try:
            found[name] = FIELDS[name].parse(raw)
        except (ValueError, TypeError):
            continue
    return found


def settings_ui(
    page: str, names: Sequence[str], defaults: dict[str, Any], columns: int = 1, disabled: bool = False
) -> dict[str, Any]:
    """Draw the fields `names` and return their values; syncs session and URL.

    A setting the lesson lock hides (`identity.setting_visible`) gets no widget and takes the lesson's value,
    whatever the session, a preset or the URL holds; it is left out of the URL too.
    """
    first = first_visit(page)
    st.session_state[f"{page}:visited"] = True
    shown = [name for name in names if identity.setting_visible(page, name)]
    bad: list[str] = []
    for name in shown:
        wkey = widget_key(page, name)
        if wkey in st.session_state:
            persist.resend(wkey)  # the browser is sent every setting on every run: see `persist.resend`
            continue
        value = st.session_state.get(persist.saved_key(wkey), defaults.get(name, NEW_FIELD_DEFAULTS.get(name)))
        raw = st.query_params.get(URL_KEYS.get(name, name))
        if first and raw is not None:
            try:
                value = FIELDS[name].parse(raw)
            except (ValueError, TypeError):
                bad.append(f"{URL_KEYS.get(name, name)}={raw}")
        st.session_state[wkey] = value
    if bad:
        st.warning(t.md("common.url_ignored", items=", ".join(bad)))
    if len(shown) < len(names):
        st.caption(t("class.lesson_fixed", m=identity.lesson_minutes_left() or 0))
    cols = st.columns(columns) if columns > 1 else [st.container()]
    drawn: dict[str, Any] = {}
    for i, name in enumerate(shown):
        field = FIELDS[name]
        with cols[i % len(cols)]:
            drawn[name] = _draw(field, widget_key(page, name), disabled)
    for name, value in drawn.items():
        persist.remember(widget_key(page, name), value)
        st.query_params[URL_KEYS.get(name, name)] = FIELDS[name].dump(value)
    values: dict[str, Any] = {}
    for name in names:
        if name in drawn:
            values[name] = drawn[name]
        else:
            values[name] = identity.lesson_value(page, name, defaults.get(name, NEW_FIELD_DEFAULTS.get(name)))
            st.query_params.pop(URL_KEYS.get(name, name), None)
    return values


def _draw(field: Field, key: str, disabled: bool) -> Any:
    label, help_ = t(field.label_key), t(field.help_key, **dict(field.help_args))
    kw: dict[str, Any] = {"key": key, "help": help_, "disabled": disabled}
    if field.fmt:
        kw["format_func"] = labels(field.options, field.fmt)
    if field.widget == "selectbox":
        return st.selectbox(label, field.options, **kw)
    if field.widget == "radio":
        return st.radio(label, field.options, horizontal=True, **kw)
    if field.widget == "select_slider":
        return st.select_slider(label, field.options, **kw)
    kw.pop("format_func", None)
    if field.widget == "toggle":
        return st.toggle(label, **kw)
    lo, hi = field.bounds
    if field.widget == "slider":
        return st.slider(label, lo, hi, **kw)
    return int(st.number_input(label, lo, hi, step=1, **kw))
