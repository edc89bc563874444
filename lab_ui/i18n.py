"""中文 / English for every label, help text and explanation.

Strings live next to the page that shows them, as `{key: (中文, English)}`;
the ones several pages share are in `COMMON`. `Translator(STRINGS)("key")`
picks the language chosen in the sidebar (kept in the URL as `lang`).
Missing keys fail loudly in tests rather than showing a raw key to a class.
"""

from __future__ import annotations

import streamlit as st

from lm_core.models import MODEL_LABELS

from .text import escape_markdown

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"  # the book and most users are Chinese

Strings = dict[str, tuple[str, str]]

COMMON: Strings = {
    "app_title": ("RNN 歌词实验室", "RNN Lyrics Lab"),
    "lang_label": ("语言 / Language", "Language / 语言"),
    "page_train": ("训练", "Train"),
    "page_sampling": ("随机 vs 相邻采样", "Random vs adjacent"),
    "page_hidden": ("隐藏状态", "Hidden states"),
    "page_clipping": ("梯度裁剪", "Gradient clipping"),
    "page_generate": ("生成歌词", "Generate"),
    "page_gradients": ("梯度穿越时间", "Gradients through time"),
    "page_my_runs": ("我的训练", "My runs"),
    "page_generalise": ("背诵还是创作", "Memorise or generalise"),
    "run_small": ("1 万字（辛弃疾）", "10,000 characters (辛弃疾)"),
    "run_large": ("全部宋词", "all Song ci"),
    # settings
    "model": ("模型", "Model"),
    "model_help": (
        "从零实现 = 书中的公式与显式参数；torch.nn = 书中简洁实现（独热输入 + 线性输出层）。",
        "From scratch = the book's equations with explicit parameters; torch.nn = the book's concise model "
        "(one-hot input + linear output layer).",
    ),
    "sampling": ("采样方式", "Sampling"),
    "sampling_help": (
        "随机采样：每个小批量前重置隐藏状态；相邻采样：隐藏状态在小批量之间传递（并分离计算图）。",
        "Random: the hidden state is reset before every minibatch; adjacent: it is carried from one minibatch "
        "to the next (detached).",
    ),
    "random": ("随机采样", "random"),
    "adjacent": ("相邻采样", "adjacent"),
    "hidden": ("隐藏单元数", "Hidden units"),
    "hidden_help": ("隐藏状态 H 的维度 h。书中为 256。", "Size h of the hidden state H. The book uses 256."),
    "steps": ("时间步数 num_steps", "num_steps"),
    "steps_help": ("每个样本的字符数 T（书中 35）。", "Characters per row of a minibatch, T (book: 35)."),
    "batch": ("批量大小", "Batch size"),
    "batch_help": ("每个小批量的行数 B（书中 32）。", "Rows per minibatch, B (book: 32)."),
    "lr": ("学习率", "Learning rate"),
    "lr_help": (
        "对数刻度。书中：SGD 100（从零实现），Adam 1e-3（nn.RNN）、1e-2（nn.GRU/LSTM）。",
        "Log scale. Book: SGD 100 (from scratch), Adam 1e-3 (nn.RNN), 1e-2 (nn.GRU/LSTM).",
    ),
    "optimizer": ("优化器", "Optimiser"),
    "optimizer_help": (
        "sgd：书中的 d2l.sgd；adam：书中简洁实现所用。",
        "sgd: the book's d2l.sgd; adam: its concise chapters.",
    ),
    "clip_on": ("梯度裁剪", "Clip gradients"),
    "clip_on_help": (
        "把所有参数梯度拼成向量 g，若 ‖g‖ > θ 则乘以 θ/‖g‖。",
        "Treat all gradients as one vector g; if ‖g‖ > θ scale it by θ/‖g‖.",
    ),
    "clip": ("裁剪阈值 θ", "Clipping θ"),
    "clip_help": ("书中 θ = 0.01。对数刻度。", "The book uses θ = 0.01. Log scale."),
    "epochs": ("迭代周期数", "Epochs"),
    "epochs_help": (
        "计划训练的周期数（书中 RNN 250，GRU/LSTM 160）。",
        "Planned epochs (book: 250 for RNN, 160 for GRU/LSTM).",
    ),
    "seed": ("随机种子", "Seed"),
    "seed_help": (
        "决定初始权重和随机采样的顺序：同一种子 = 同一实验。",
        "Sets the initial weights and the shuffle order: same seed, same experiment.",
    ),
    # deeper torch.nn models, long corpora, validation
    "num_layers": ("层数", "Layers"),
    "num_layers_help": (
        "叠加的循环层数（1–{n}），只适用于 torch.nn 模型；从零实现的模型与书中一样只有 1 层。",
        "Stacked recurrent layers (1-{n}), torch.nn models only; the from-scratch models have 1, as in the book.",
    ),
    "dropout": ("丢弃率 dropout", "Dropout"),
    "dropout_help": (
        "训练时在层与层之间随机丢弃的比例（0–0.5）：需要至少 2 层，1 层时请设为 0。验证和生成时不丢弃。",
        "Share dropped between layers while training (0-0.5): needs 2 or more layers; with 1 layer keep it at 0. "
        "Nothing is dropped when validating or generating.",
    ),
    "embed": ("嵌入维度", "Embedding"),
    "embed_help": (
        "关闭 = 书中的独热输入；否则每个字先查一个这么长的向量（书中后面的简洁实现），最大 {n:,}。只适用于 torch.nn 模型。",
        "Off = the book's one-hot input; otherwise each character is first looked up as a vector of this size "
        "(the book's later concise chapters), at most {n:,}. torch.nn models only.",
    ),
    "embed_off": ("关闭（独热）", "off (one-hot)"),
    "steps_per_epoch": ("每个周期的小批量数", "Minibatches per epoch"),
    "steps_per_epoch_help": (
        "0 = 书中的做法，每个周期遍历整个语料一次；否则一个周期只训练这么多个小批量，下一个周期接着读，"
        "这样在 150 万字的全部宋词上也能每隔几秒画出一个点。",
        "0 = the book's way, one whole pass over the corpus per epoch; otherwise an epoch is this many "
        "minibatches and the next one reads on, so even all of Song ci (1.5 M characters) draws a point every few "
        "seconds.",
    ),
    "whole_pass": ("0（完整遍历）", "0 (a whole pass)"),
    "val_fraction": ("验证集比例", "Validation share"),
    "val_fraction_help": (
        "语料末尾留作验证的比例（0–0.4），按整首词切分，模型训练时看不到这些词。0 = 不验证（书中）。"
        "验证部分至少要够一个小批量（批量 × (时间步 + 1) 个字符）。",
        "Share of the corpus held out at its end for validation (0-0.4), cut at a whole ci so the model never "
        "trains on it. 0 = none (the book). The held-out part must fill at least one minibatch (batch × "
        "(num_steps + 1) characters).",
    ),
    "patience": ("耐心值（提前停止）", "Patience (early stopping)"),
    "patience_help": (
        "连续这么多个周期验证困惑度都没有更低时提前停止，并保留验证最好的那个周期的权重（0–50；0 = 关闭）。需要验证集比例大于 0。",
        "Stop when validation perplexity has not improved for this many epochs, and keep the weights of the best "
        "epoch (0-50; 0 = off). Needs a validation share above 0.",
    ),
    "patience_off": ("0（关闭）", "0 (off)"),
    "compare": ("同时训练另一个模型对比", "Compare with a second model"),
    "compare_help": (
        "第二个模型与第一个同步训练（同一种子、同一语料、同一设置），两条曲线画在同一张图上。",
        "A second model trained in lockstep (same seed, corpus and settings); both curves share one chart.",
    ),
    "compare_none": ("不对比", "no comparison"),
    "preset": ("预设", "Preset"),
    "preset_help": ("书中各实验的设置，一键恢复。", "The chapter's experiments, one click away."),
    "apply_preset": ("应用预设", "Apply preset"),
    "settings": ("设置", "Settings"),
    # job controls
    "start": ("开始训练", "Train"),
    "pause": ("暂停", "Pause"),
    "resume": ("继续", "Resume"),
    "step": ("单步（1 个周期）", "Step (1 epoch)"),
    "stop_run": ("停止训练", "Stop training"),
    "status_queued": (
        "排队中：前面还有 {n} 个任务（本机同时最多训练 {cap} 个）。",
        "Queued: {n} job(s) ahead (this machine trains at most {cap} at once).",
    ),
    "status_starting": ("正在启动……", "Starting…"),
    "status_next": (
        "排队中：下一个就轮到它（本机同时最多训练 {cap} 个）。",
        "Queued: next in line (this machine trains at most {cap} at once).",
    ),
    "status_running": ("训练中", "Training"),
    "status_paused": ("已暂停", "Paused"),
    "status_finished": ("已完成", "Finished"),
    "status_stopped": ("已停止", "Stopped"),
    "status_diverged": ("发散", "Diverged"),
    "status_error": ("出错", "Error"),
    "status_failed": ("失败", "Failed"),
    "status_interrupted": ("已中断", "Interrupted"),
    "status_ready": ("就绪", "Ready"),
    "epoch_of": ("第 {e}/{n} 个周期", "Epoch {e}/{n}"),
    "time_left": ("剩余约 {s}", "about {s} left"),
    "tokens_s": ("{v:,.0f} 字符/秒", "{v:,.0f} chars/s"),
    "perplexity": ("困惑度", "Perplexity"),
    "baseline": ("均匀猜测 = 词典大小", "uniform guess = vocabulary size"),
    "epoch": ("周期", "Epoch"),
    "bad_setting": ("设置有误：{msg}", "Setting not accepted: {msg}"),
    "corpus_error": ("语料无法使用：{msg}", "Corpus not usable: {msg}"),
    "book_settings_note": (
        "书中设置：隐藏单元 256，时间步 35，批量 32，θ = 0.01。",
        "Book settings: 256 hidden units, num_steps 35, batch 32, θ = 0.01.",
    ),
    "stored_job": (
        "链接中的训练已保存，但此刻没有在进行（例如服务器重启了）：到「我的训练」页查看或继续它。",
        "The run in this link is saved but not running now (the server restarted, for example): open it on "
        "My runs to see or resume it.",
    ),
    "foreign_job": (
        "链接中的训练任务在此浏览器中不可用（它属于另一个浏览器，或服务器已重启）。",
        "The training run in this link is not available in this browser (it belongs to another browser, "
        "or the server restarted).",
    ),
    "url_ignored": (
        "链接中的这些设置无效，已改用默认值：{items}",
        "These settings in the link were invalid and were reset: {items}",
    ),
    "upload_limit": (
        "每个文件最大 {mb} MB（服务器的上限）。",
        "At most {mb} MB per file (the server's limit).",
    ),
    # names of the runs a job holds; jobs store the keys (run_label translates them when drawn)
    "run_random": ("随机采样", "random sampling"),
    "run_adjacent": ("相邻采样", "adjacent sampling"),
    "run_clip": ("裁剪（θ = {theta}）", "clipped at θ = {theta}"),
    "run_noclip": ("不裁剪", "not clipped"),
    "replace_warning": (
        "开始新的训练会替换本页当前的模型（可先下载检查点）。",
        "Starting a new run replaces this page's current model (download its checkpoint first if you want it).",
    ),
}


_MODEL_LABELS_ZH = {
    "scratch-rnn": "RNN（从零实现，书中）",
    "scratch-gru": "GRU（从零实现，书中）",
    "scratch-lstm": "LSTM（从零实现，书中）",
}


def model_label(kind: str) -> str:
    """A model kind as shown to the user, in the current language."""
    if current_lang() == "zh" and kind in _MODEL_LABELS_ZH:
        return _MODEL_LABELS_ZH[kind]
    return MODEL_LABELS.get(kind, kind)


def run_label(key: str, clip: float | None = None) -> str:
    """A run's name in the current language from the language-free key its job stores.

    Keys are a sampling mode ("random", "adjacent"), "clip"/"noclip" (with the run's θ) or a
    model kind; anything else (a job from an older version) is shown as it is.
    """
    if key in ("random", "adjacent", "noclip"):
        return t(f"run_{key}")
    if key in ("small", "large"):  # the memorise-or-generalise lesson's two corpora
        return t(f"run_{key}")
    if key == "clip":
        return t("run_clip", theta=f"{clip:g}" if clip is not None else "?")
    return model_label(key)


def current_lang() -> str:
    lang = st.session_state.get("lang") or st.query_params.get("lang", DEFAULT_LANG)
    return lang if lang in LANGS else DEFAULT_LANG


class Translator:
    """`t("key", **fmt)`: the string in the current language, formatted."""

    def __init__(self, strings: Strings | None = None) -> None:
        self.strings = {**COMMON, **(strings or {})}

    def __call__(self, key: str, **fmt: object) -> str:
        pair = self.strings[key]
        text = pair[LANGS.index(current_lang())]
        return text.format(**fmt) if fmt else text

    def md(self, key: str, **fmt: object) -> str:
        """The string for a Markdown-rendering call: every text argument escaped, so it shows as typed.

        Use it whenever an argument can come from a visitor, a URL or a file
        (names, notes, messages quoting them); numbers are formatted as usual.
        """
        return self(key, **{k: escape_markdown(v) if isinstance(v, str) else v for k, v in fmt.items()})


t = Translator()
