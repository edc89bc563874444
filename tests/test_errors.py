"""Every user-facing `LabError` carries a Chinese text next to its (unchanged) English one."""

from __future__ import annotations

import ast
import io
import pickle
from pathlib import Path

import pytest
import torch

from lm_core import checkpoint
from lm_core.corpus import decode_bytes, read_corpus_bytes
from lm_core.errors import CorpusError, LabError, VocabularyError, detached, localized
from lm_core.generation import check_prefix
from lm_core.sampling import check_enough

LM_CORE = Path(__file__).resolve().parent.parent / "lm_core"
USER_ERRORS = {"CorpusError", "ConfigError", "VocabularyError", "CheckpointError", "LabError"}


def _raised(call) -> LabError:
    with pytest.raises(LabError) as info:
        call()
    return info.value


@pytest.mark.parametrize(
    ("call", "kind", "english", "chinese"),
    [
        (lambda: read_corpus_bytes(b"", "empty.txt"), CorpusError, "empty.txt is empty", "empty.txt 是空的"),
        (lambda: decode_bytes(b"%PDF-1.7 ...", "a.pdf"), CorpusError, "a PDF document", "PDF 文档"),
        (lambda: check_enough(100, 32, 35, "random"), CorpusError, "too short", "随机采样"),
        (lambda: check_prefix("分😀", {"分": 0}), VocabularyError, "Not in the model's vocabulary: 😀", "😀"),
    ],
    ids=["empty-file", "pdf", "too-short", "unknown-prefix"],
)
def test_localized_picks_chinese_for_zh_and_english_otherwise(call, kind, english: str, chinese: str) -> None:
    exc = _raised(call)
    assert isinstance(exc, kind)
    assert english in str(exc) and localized(exc, "en") == str(exc)
    zh = localized(exc, "zh")
    assert zh == exc.zh and chinese in zh and zh != str(exc)
    assert localized(exc, "fr") == str(exc)


def test_localized_falls_back_to_english_and_zh_survives_pickling() -> None:
    assert localized(CorpusError("only English"), "zh") == "only English"
    assert localized(ValueError("not a lab error"), "zh") == "not a lab error"
    copy = pickle.loads(pickle.dumps(CorpusError("English.", zh="中文。")))
    assert (str(copy), copy.zh) == ("English.", "中文。")


def test_a_wrapped_error_keeps_its_chinese_text() -> None:
    """`from_bytes` wraps the `ConfigError` of a bad saved config; both languages name the cause."""
    buffer = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "config": {"hidden": 0}, "vocab": ["a"], "model_state": {}}, buffer)
    exc = _raised(lambda: checkpoint.from_bytes(buffer.getvalue(), "x.pt"))
    assert "incompatible version" in str(exc) and "Hidden units must be between 1 and 2,048" in str(exc)
    assert "不兼容" in exc.zh and "隐藏单元数必须在 1 到 2,048 之间" in exc.zh


def test_every_user_error_raised_in_lm_core_has_a_chinese_text() -> None:
    missing = []
    count = 0
    for path in sorted(LM_CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in USER_ERRORS:
                count += 1
                if not any(k.arg == "zh" for k in node.exc.keywords):
                    missing.append(f"{path.name}:{node.lineno}")
    assert count >= 50  # the walk really found the raises
    assert not missing, missing


def test_the_prefix_errors_chinese_is_the_one_the_pages_show() -> None:
    """The Generate page shows `localized(check_prefix's error)`: its Chinese wording lives on the error alone."""
    assert _raised(lambda: check_prefix("", {"分": 0})).zh == "请至少输入一个字符。"
    assert _raised(lambda: check_prefix("分😀", {"分": 0})).zh == "不在模型词典中的字：😀。请删除或替换它们。"
    many = "".join(chr(0x4E00 + i) for i in range(23))
    exc = _raised(lambda: check_prefix(many, {"分": 0}))
    assert exc.zh.startswith("这些字都不在模型的词典中：") and exc.zh.endswith("（另有 3 个）。请使用训练语料中的字。")
    assert str(exc).startswith("None of the prefix's characters") and "(and 3 more)" in str(exc)


def test_a_detached_error_keeps_both_texts_and_drops_its_traceback() -> None:
    """What a page caches: the two texts, nothing that could hold an uploaded file."""
    try:
        raise CorpusError("English.", zh="中文。") from ValueError("cause")
    except CorpusError as exc:
        kept = detached(exc)
    assert (str(kept), kept.zh, type(kept)) == ("English.", "中文。", LabError)
    assert kept.__traceback__ is None and kept.__cause__ is None
    assert localized(kept, "zh") == "中文。"
