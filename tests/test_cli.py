"""`python -m lm_core`: training writes JSON lines and a checkpoint, generation uses it, bad input is one line."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from testkit import tiny_text

from lm_core import checkpoint
from lm_core.cli import _load_corpus, main
from lm_core.corpus import Corpus
from lm_core.errors import localized
from lm_core.songci import ALL_SUBSET
from lm_core.training import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}
SMALL = ["--hidden", "16", "--batch", "4", "--steps", "8"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def _start(*args: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lm_core", *map(str, args)],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[bytes]) -> Result:
    out, err = proc.communicate(timeout=TIMEOUT)
    return Result(proc.returncode, out.decode("utf-8"), err.decode("utf-8"))


def run_cli(*args: str | Path) -> Result:
    return _finish(_start(*args))


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Corpus) -> Path:
    path = tmp_path_factory.mktemp("cli") / "tiny.txt"
    path.write_text(tiny_corpus.text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> tuple[Result, Path, Path]:
    """One CLI training run of 2 epochs with --jsonl and --save."""
    folder = tmp_path_factory.mktemp("cli-train")
    jsonl, saved = folder / "log.jsonl", folder / "model.pt"
    result = run_cli(
        "train", "--corpus", corpus_file, "--epochs", "2", *SMALL, "--jsonl", jsonl, "--save", saved, "--quiet",
        "--threads", "1",
    )  # fmt: skip
    return result, jsonl, saved


def test_train_writes_json_lines_and_a_checkpoint(trained_run: tuple[Result, Path, Path], corpus_file: Path) -> None:
    """train exits 0, writes one JSON object per epoch with the documented keys, and saves a loadable checkpoint."""
    result, jsonl, saved = trained_run
    assert result.returncode == 0, result.stderr
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    for epoch, record in enumerate(records, start=1):
        assert {"epoch", "perplexity", "seconds", "grad_norm_mean", "clipped_fraction"} <= set(record)
        assert record["epoch"] == epoch
        assert record["perplexity"] > 1 and record["seconds"] > 0 and record["grad_norm_mean"] > 0
        assert 0 <= record["clipped_fraction"] <= 1
    assert "epoch 2, perplexity" in result.stdout
    assert "Traceback" not in result.stderr
    ckpt = checkpoint.load(saved)
    assert ckpt.config.hidden == 16 and ckpt.config.batch_size == 4 and ckpt.config.num_steps == 8
    assert ckpt.config.epochs == 2 and len(ckpt.history) == 2
    assert ckpt.vocab == Corpus.from_file(corpus_file).idx_to_char
    assert [e.perplexity for e in ckpt.history] == pytest.approx([r["perplexity"] for r in records])
    # A checkpoint travels: it names its corpus by file name and carries no folder of this machine.
    assert ckpt.corpus_name == "tiny.txt"
    assert str(corpus_file.parent) not in ckpt.note and str(saved.parent) not in ckpt.note
    assert "--corpus tiny.txt" in ckpt.note


def test_generate_prints_text_from_the_prefix(trained_run: tuple[Result, Path, Path]) -> None:
    """generate with the saved checkpoint prints the prefix followed by --length characters."""
    _, _, saved = trained_run
    result = run_cli("generate", "--checkpoint", saved, "--prefix", "春风", "--length", "12")
    assert result.returncode == 0, result.stderr
    text = result.stdout.strip()
    assert text.startswith("春风") and len(text) == 14
    assert "Traceback" not in result.stderr


# -- bad input: one line on stderr, exit 2 ----------------------------------------------------------


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path, tiny_corpus: Corpus) -> dict[str, Result]:
    """Every bad invocation, started together (each pays torch's import time) and collected."""
    folder = tmp_path_factory.mktemp("cli-errors")
    empty = folder / "empty.txt"
    empty.write_bytes(b"")
    short = folder / "short.txt"
    short.write_text("春风吹过小河边", encoding="utf-8")
    corrupt = folder / "corrupt.pt"
    corrupt.write_bytes(random.Random(0).randbytes(1000))
    good_ckpt = folder / "good.pt"
    trainer = Trainer(tiny_corpus, TrainConfig(hidden=8, num_steps=8, batch_size=4, epochs=1))
    checkpoint.save(checkpoint.from_trainer(trainer), good_ckpt)
    cases: dict[str, list[str | Path]] = {
        "unknown model": ["train", "--corpus", corpus_file, "--model", "transformer"],
        "bad clip": ["train", "--corpus", corpus_file, "--clip", "x"],
        "missing corpus": ["train", "--corpus", folder / "nope.txt", *SMALL],
        "empty corpus": ["train", "--corpus", empty, *SMALL],
        "corpus too short": ["train", "--corpus", short, "--epochs", "1"],
        "bad hidden": ["train", "--corpus", corpus_file, "--hidden", "0", "--epochs", "1"],
        "bad threads": ["train", "--corpus", corpus_file, "--threads", "0", *SMALL],
        "unknown prefix": ["generate", "--checkpoint", good_ckpt, "--prefix", "😀雪"],
        "corrupt checkpoint": ["generate", "--checkpoint", corrupt, "--prefix", "春风"],
        "missing checkpoint": ["generate", "--checkpoint", folder / "none.pt", "--prefix", "春风"],
    }
    procs = {name: _start(*args) for name, args in cases.items()}
    return {name: _finish(proc) for name, proc in procs.items()}


@pytest.mark.parametrize(
    "case, hint",
    [
        ("unknown model", "transformer"),
        ("bad clip", "clip"),
        ("missing corpus", "nope.txt"),
        ("empty corpus", "empty"),
        ("corpus too short", "too short"),
        ("bad hidden", "Hidden units"),
        ("bad threads", "--threads"),
        ("unknown prefix", "😀"),
        ("corrupt checkpoint", "not a checkpoint"),
        ("missing checkpoint", "No checkpoint"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(error_runs: dict[str, Result], case: str, hint: str) -> None:
    """Bad arguments and files print a single 'error: ...' line (naming the problem), exit 2, no traceback."""
    result = error_runs[case]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert hint in lines[0]
    assert result.stdout == ""


def test_generate_with_an_odd_checkpoint_is_one_error_line(
    tmp_path: Path, tiny_corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint with a non-integer hidden size gives exit 2 and one 'error:' line (run in-process)."""
    from lm_core.cli import main

    trainer = Trainer(tiny_corpus, TrainConfig(hidden=8, num_steps=8, batch_size=4, epochs=1))
    ckpt = checkpoint.from_trainer(trainer)
    ckpt.config.hidden = 8.0  # type: ignore[assignment] -- what a hand-edited file can hold
    path = tmp_path / "odd.pt"
    path.write_bytes(checkpoint.to_bytes(ckpt))
    code = main(["generate", "--checkpoint", str(path), "--prefix", "春风"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:")


def test_a_diverging_run_exits_1_with_one_error_line(corpus_file: Path, tmp_path: Path) -> None:
    """An unclipped run at lr 1e4 reports its divergence as the last stderr line and exits 1, no traceback.

    It still saves (--slim: without optimiser state) the finite model it rolled back to.
    """
    saved = tmp_path / "slim.pt"
    result = run_cli(
        "train", "--corpus", corpus_file, "--epochs", "3", "--hidden", "32", "--batch", "8", "--steps", "8",
        "--lr", "10000", "--clip", "none", "--quiet", "--save", saved, "--slim",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Diverged") and "epoch" in last and "step" in last
    ckpt = checkpoint.load(saved)
    assert ckpt.optimizer_state is None
    assert all(bool(t.isfinite().all()) for t in ckpt.model_state.values())


# -- config_from_args: the flags' meaning, without training ------------------------------------------


def _config(*flags: str) -> TrainConfig:
    """`python -m lm_core train FLAGS` parsed and turned into its config, as cmd_train does (nothing runs)."""
    from lm_core.cli import build_parser, config_from_args

    return config_from_args(build_parser().parse_args(["train", *flags]))


@pytest.mark.parametrize("model", ["scratch-rnn", "lstm"])
def test_config_from_args_defaults_are_the_books(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    """No flags but --model: exactly the chapter's settings; nothing printed, the corpus never opened."""
    from lm_core.training import book_config

    assert _config("--model", model, "--corpus", "/no/such/file.txt") == book_config(model)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "flags, field, expected",
    [
        (["--hidden", "64"], "hidden", 64),
        (["--steps", "12"], "num_steps", 12),
        (["--batch", "7"], "batch_size", 7),
        (["--clip", "0.5"], "clip", 0.5),
        (["--clip", "none"], "clip", None),
        (["--seed", "3"], "seed", 3),
        (["--val-fraction", "0.1"], "val_fraction", 0.1),
        (["--model", "lstm", "--layers", "2"], "num_layers", 2),
        (["--model", "lstm", "--layers", "2", "--dropout", "0.2"], "dropout", 0.2),
        (["--model", "lstm", "--embed", "32"], "embed", 32),
        (["--steps-per-epoch", "5"], "steps_per_epoch", 5),
        (["--val-fraction", "0.1", "--patience", "4"], "patience", 4),
        (["--epochs", "9"], "epochs", 9),
        (["--lr", "0.5"], "lr", 0.5),
        (["--sampling", "adjacent"], "sampling", "adjacent"),
        (["--model", "gru"], "model", "gru"),
        (["--optimizer", "adam"], "optimizer", "adam"),
        (["--optimizer", "adam"], "lr", 1e-3),  # another optimiser without --lr: that optimiser's usual rate
        (["--model", "lstm", "--optimizer", "sgd"], "lr", 100.0),
        (["--optimizer", "adam", "--lr", "0.02"], "lr", 0.02),
        (["--model", "rnn", "--nonlinearity", "relu"], "nonlinearity", "relu"),
        (["--nonlinearity", "relu"], "nonlinearity", "relu"),
        (["--sampling", "adjacent", "--no-detach"], "detach", False),
        (["--sampling", "adjacent"], "detach", True),
    ],
)
def test_config_from_args_maps_each_flag(flags: list[str], field: str, expected: object) -> None:
    """Each train flag lands in its TrainConfig field."""
    assert getattr(_config(*flags), field) == expected


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--hidden", "0"], "Hidden units must be between 1 and 2,048."),
        (["--patience", "3"], "Early stopping (patience) needs a validation share above 0."),
        (["--epochs", "0"], "Epochs must be between 1 and 100,000."),
        (
            ["--no-detach"],
            "Not detaching the hidden state needs adjacent sampling: random sampling starts every minibatch from "
            "zeros, so there is no state to carry.",
        ),
        (
            ["--model", "lstm", "--nonlinearity", "relu"],
            "ReLU replaces tanh in the plain RNN only (scratch-rnn or rnn): the gates of a GRU or LSTM need their "
            "sigmoid and tanh. Choose an RNN, or set the nonlinearity to tanh.",
        ),
    ],
)
def test_config_from_args_raises_the_trainers_config_error(flags: list[str], message: str) -> None:
    """A bad value raises the ConfigError (same sentence, with its Chinese) that `main` turns into exit 2."""
    from lm_core.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        _config(*flags)
    assert str(info.value) == message and localized(info.value, "zh") != message


def test_a_run_above_the_memory_budget_is_refused_before_training_unless_forced(corpus_file: Path) -> None:
    """Over `RNN_LAB_RUN_MEMORY`: one error line with both sizes, exit 2, nothing trained; `--force` trains,
    and a run that fits says its estimate and the budget on stderr."""
    args = [sys.executable, "-m", "lm_core", "train", "--corpus", str(corpus_file), "--epochs", "1", *SMALL, "--quiet"]
    env = {**ENV, "RNN_LAB_RUN_MEMORY": "100M"}
    procs = [
        subprocess.Popen(a, cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for a, e in ((args, env), ([*args, "--force"], env), (args, {**ENV, "RNN_LAB_RUN_MEMORY": "8G"}))
    ]
    refused, forced, fitting = (_finish(p) for p in procs)
    assert refused.returncode == 2 and refused.stdout == "", refused
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: This run would need about ")
    assert "one run may use about 100 MB" in lines[0]
    assert forced.returncode == 0 and "epoch 1, perplexity" in forced.stdout, forced.stderr
    assert "above it: --force" in forced.stderr
    assert fitting.returncode == 0, fitting.stderr
    assert re.search(r"memory: estimated peak about [\d.,]+ MB, per-run budget 8.0 GB\n", fitting.stderr)


# -- deeper models and long corpora, through main() in this process -----------------------------------------------
# layers / dropout / embedding / short epochs / validation, best and half saves, evaluation


IN_PROCESS = ["--hidden", "16", "--batch", "4", "--steps", "8", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli_large") / "lines.txt"
    path.write_text(tiny_text(), encoding="utf-8")  # one line per "ci": validation cuts between lines
    return path


def test_train_deep_model_with_validation_saves_best_in_half(lines_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.pt"
    args = ["train", "--corpus", lines_file, "--max-chars", "all", "--model", "lstm", "--layers", "2"]
    args += ["--dropout", "0.2", "--embed", "8", "--steps-per-epoch", "6", "--val-fraction", "0.2", "--epochs", "3"]
    args += ["--patience", "5", "--print-every", "1", "--save", out, "--half", "--slim", *IN_PROCESS]
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
    args = ["train", "--corpus", str(lines_file), "--model", "gru", "--dropout", "0.3", *IN_PROCESS]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Dropout acts between layers") and "Traceback" not in err


def test_evaluate_lyrics_prints_the_targets(lines_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "e.pt"
    args = ["train", "--corpus", lines_file, "--max-chars", "all", "--model", "gru", "--embed", "8"]
    args += ["--val-fraction", "0.2", "--epochs", "2", "--save", out, *IN_PROCESS]
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
