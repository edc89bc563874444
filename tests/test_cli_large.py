"""CLI options for deeper models and long corpora: layers / dropout / embedding / short epochs / validation, best and half saves, evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from testkit import tiny_text

from lm_core import checkpoint
from lm_core.cli import _load_corpus, main
from lm_core.songci import ALL_SUBSET

SMALL = ["--hidden", "16", "--batch", "4", "--steps", "8", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli_large") / "lines.txt"
    path.write_text(tiny_text(), encoding="utf-8")  # one line per "ci": validation cuts between lines
    return path


def test_train_deep_model_with_validation_saves_best_in_half(lines_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.pt"
    args = ["train", "--corpus", lines_file, "--max-chars", "all", "--model", "lstm", "--layers", "2"]
    args += ["--dropout", "0.2", "--embed", "8", "--steps-per-epoch", "6", "--val-fraction", "0.2", "--epochs", "3"]
    args += ["--patience", "5", "--print-every", "1", "--save", out, "--half", "--slim", *SMALL]
    assert main([str(a) for a in args]) == 0
    printed = capsys.readouterr()
    assert "baselines on the validation split" in printed.out and "bigram" in printed.out
    assert "validation" in printed.out and "best" in printed.out
    ckpt = checkpoint.load(out)
    assert (ckpt.config.num_layers, ckpt.config.embed, ckpt.config.steps_per_epoch) == (2, 8, 6)
    assert all(v.dtype == torch.float32 for v in ckpt.model_state.values())
    raw = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["model_state"].values())
    vals = [e.val_perplexity for e in ckpt.history]
    assert ckpt.best_epoch == vals.index(min(vals)) + 1
    assert f"epoch {ckpt.best_epoch}" in printed.err
    assert all(e.steps == 6 for e in ckpt.history)


def test_dropout_with_one_layer_is_one_line(lines_file: Path, capsys) -> None:
    args = ["train", "--corpus", str(lines_file), "--model", "gru", "--dropout", "0.3", *SMALL]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Dropout acts between layers") and "Traceback" not in err


def test_evaluate_lyrics_prints_the_targets(lines_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "e.pt"
    args = ["train", "--corpus", lines_file, "--max-chars", "all", "--model", "gru", "--embed", "8"]
    args += ["--val-fraction", "0.2", "--epochs", "2", "--save", out, *SMALL]
    assert main([str(a) for a in args]) == 0
    capsys.readouterr()
    assert main(["evaluate-lyrics", "--checkpoint", str(out), "--corpus", str(lines_file), "--max-chars", "all"]) == 0
    printed = capsys.readouterr().out
    assert "below the bigram" in printed
    assert "copied from the training text" in printed and "CJK characters" in printed


def test_songci_all_spec_names_every_ci() -> None:
    corpus = _load_corpus("songci:all", 20_000)
    assert corpus.name.endswith(ALL_SUBSET)
    assert len(corpus.doc_starts) > 100
