"""Every user-facing `LabError` names a catalogue sentence: English for `str()`, the reader's language when shown."""

from __future__ import annotations

import ast
import io
import pickle
from pathlib import Path

import pytest
import torch

from lm_core import checkpoint, messages
from lm_core.corpus import decode_bytes, read_corpus_bytes
from lm_core.errors import Cause, CorpusError, LabError, VocabularyError, detached, localized
from lm_core.generation import check_prefix
from lm_core.sampling import check_enough

LM_CORE = Path(__file__).resolve().parent.parent / "lm_core"
USER_ERRORS = {"CorpusError", "ConfigError", "VocabularyError", "CheckpointError", "LabError"}


def _raised(call) -> LabError:
    with pytest.raises(LabError) as info:
        call()
    return info.value


@pytest.mark.parametrize(
    ("call", "kind", "english", "chinese", "traditional"),
    [
        (lambda: read_corpus_bytes(b"", "empty.txt"), CorpusError, "empty.txt is empty", "empty.txt 是空的", "是空的"),
        (lambda: decode_bytes(b"%PDF-1.7 ...", "a.pdf"), CorpusError, "a PDF document", "PDF 文档", "PDF 文件"),
        (lambda: check_enough(100, 32, 35, "random"), CorpusError, "too short", "随机采样", "隨機取樣"),
        (lambda: check_prefix("分😀", {"分": 0}), VocabularyError, "Not in the model's vocabulary: 😀", "😀", "😀"),
    ],
    ids=["empty-file", "pdf", "too-short", "unknown-prefix"],
)
def test_localized_picks_the_readers_language(call, kind, english: str, chinese: str, traditional: str) -> None:
    exc = _raised(call)
    assert isinstance(exc, kind)
    assert english in str(exc) and localized(exc, "en") == str(exc)
    zh = localized(exc, "zh")
    assert chinese in zh and zh != str(exc)
    hant = localized(exc, "zh-Hant")
    assert traditional in hant and hant not in (zh, str(exc))
    assert localized(exc, "fr") == str(exc)  # a language without a catalogue reads English


def test_a_sentence_that_is_not_a_key_is_shown_as_it_is_and_the_error_survives_pickling() -> None:
    """Another program's text wrapped in an error reads the same in every language; errors cross processes."""
    assert localized(CorpusError("only English"), "zh") == "only English"
    assert localized(ValueError("not a lab error"), "zh") == "not a lab error"
    copy = pickle.loads(pickle.dumps(CorpusError("error.corpus.empty", name="a.txt")))
    assert isinstance(copy, CorpusError) and (copy.key, copy.params) == ("error.corpus.empty", {"name": "a.txt"})
    assert (str(copy), localized(copy, "zh")) == (
        "a.txt is empty: there is no text to learn from.",
        "a.txt 是空的：没有可供学习的文本。",
    )


def test_a_wrapped_error_keeps_its_own_language() -> None:
    """`from_bytes` wraps the `ConfigError` of a bad saved config; each language quotes the cause in itself."""
    buffer = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "config": {"hidden": 0}, "vocab": ["a"], "model_state": {}}, buffer)
    exc = _raised(lambda: checkpoint.from_bytes(buffer.getvalue(), "x.pt"))
    assert "incompatible version" in str(exc) and "Hidden units must be between 1 and 2,048" in str(exc)
    zh = localized(exc, "zh")
    assert "不兼容" in zh and "隐藏单元数必须在 1 到 2,048 之间" in zh
    assert "隱藏單元數必須在 1 到 2,048 之間" in localized(exc, "zh-Hant")


def test_a_cause_is_quoted_by_its_first_line_without_its_traceback() -> None:
    try:
        raise RuntimeError("first line\nsecond line")
    except RuntimeError as exc:
        cause = Cause(exc)
    assert cause.localize("zh") == "first line" and not hasattr(cause, "__traceback__")
    assert Cause(KeyError()).localize("en") == "KeyError"


def test_every_user_error_raised_in_lm_core_names_a_catalogue_key() -> None:
    """No sentence is written in the engine's code: each raise names a key the English catalogue has."""
    missing = []
    count = 0
    for path in sorted(LM_CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in USER_ERRORS or not node.exc.args:
                continue
            count += 1
            first = node.exc.args[0]
            literal = first.value if isinstance(first, ast.Constant) else None
            if isinstance(first, ast.Constant | ast.JoinedStr) and not (
                isinstance(literal, str) and messages.has_key(literal)
            ):
                missing.append(f"{path.name}:{node.lineno}")
            if any(k.arg == "zh" for k in node.exc.keywords):
                missing.append(f"{path.name}:{node.lineno} (zh=)")
    assert count >= 50  # the walk really found the raises
    assert not missing, missing


def test_the_prefix_errors_texts_are_the_ones_the_pages_show() -> None:
    """The Generate page shows `localized(check_prefix's error)`: its wording lives in the catalogues alone."""
    assert localized(_raised(lambda: check_prefix("", {"分": 0})), "zh") == "请至少输入一个字符。"
    assert (
        localized(_raised(lambda: check_prefix("分😀", {"分": 0})), "zh")
        == "不在模型词典中的字：😀。请删除或替换它们。"
    )
    many = "".join(chr(0x4E00 + i) for i in range(23))
    exc = _raised(lambda: check_prefix(many, {"分": 0}))
    zh = localized(exc, "zh")
    assert zh.startswith("这些字都不在模型的词典中：") and zh.endswith("（另有 3 个）。请使用训练语料中的字。")
    assert localized(exc, "zh-Hant").endswith(
        "（另有 3 個）。請使用訓練語料中的字。"
    )  # the count in the reader's script
    assert str(exc).startswith("None of the prefix's characters") and "(and 3 more)" in str(exc)


def test_a_detached_error_keeps_its_message_and_drops_its_traceback() -> None:
    """What a page caches: the key and its facts, nothing that could hold an uploaded file."""
    try:
        raise CorpusError("error.corpus.empty", name="a.txt") from ValueError("cause")
    except CorpusError as exc:
        kept = detached(exc)
    assert (str(kept), type(kept)) == ("a.txt is empty: there is no text to learn from.", LabError)
    assert kept.__traceback__ is None and kept.__cause__ is None
    assert localized(kept, "zh") == "a.txt 是空的：没有可供学习的文本。"
