"""Every flag of `python -m lm_core` is checked before the first training step (or the first slow load).

Two kinds of flags used to fail late: counts that argparse took as any integer
(`--print-every 0` trained, then died with ZeroDivisionError and never saved;
`--threads 100000000` crashed torch; `--repeats 0` or `--show -1` were quietly
reinterpreted), and output files that were only opened after training
(`--save` into a folder lost the trained model). Each bad value now gives one
`error:` line naming the flag, exit code 2, no traceback, and nothing trained.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm_core import checkpoint, cli, limits
from lm_core.corpus import Corpus
from lm_core.training import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}
TIMEOUT = 180  # seconds; a run that is refused up front answers in the time torch takes to import
SMALL = ["--max-chars", "all", "--model", "gru", "--hidden", "8", "--steps", "5", "--batch", "4", "--epochs", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Corpus) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli-flags")
    corpus = folder / "tiny.txt"
    corpus.write_text(tiny_corpus.text, encoding="utf-8")
    model = folder / "tiny.pt"
    trainer = Trainer(tiny_corpus, TrainConfig(model="gru", hidden=8, num_steps=5, batch_size=4, epochs=1))
    checkpoint.save(checkpoint.from_trainer(trainer), model)
    out = folder / "out"
    out.mkdir()
    return {"corpus": corpus, "model": model, "folder": out, "file": corpus}


def _cases(f: dict[str, Path]) -> dict[str, tuple[str, list[str | Path]]]:
    """name -> (the flag the error must name, the command line)."""
    train = ["train", "--corpus", f["corpus"], *SMALL, "--quiet"]
    evaluate = ["evaluate-lyrics", "--checkpoint", f["model"], "--corpus", f["corpus"], "--max-chars", "all"]
    large = ["bench-large", "--model", "gru", "--hidden", "8", "--layers", "1", "--dropout", "0", "--embed", "0"]
    return {
        # counts that must be in range
        "print-every 0": ("--print-every", [*train, "--print-every", "0"]),
        "print-every negative": ("--print-every", [*train, "--print-every", "-5"]),
        "train threads huge": ("--threads", [*train, "--threads", "100000000"]),
        "evaluate show negative": ("--show", [*evaluate, "--show", "-1"]),
        "evaluate threads huge": ("--threads", [*evaluate, "--threads", "100000000"]),
        "bench-bptt repeats 0": ("--repeats", ["bench-bptt", "--corpus", f["corpus"], "--repeats", "0"]),
        "bench-large steps 0": ("--steps-per-epoch", [*large, "--steps-per-epoch", "0"]),
        "bench-large threads huge": ("--threads", [*large, "--steps-per-epoch", "1", "--threads", "100000000"]),
        # output files, checked before training
        "save into a folder": ("--save", [*train, "--save", f["folder"]]),
        "save under a file": ("--save", [*train, "--save", f["file"] / "model.pt"]),
        "jsonl into a folder": ("--jsonl", [*train, "--jsonl", f["folder"]]),
        "jsonl in a missing folder": ("--jsonl", [*train, "--jsonl", f["folder"] / "missing" / "log.jsonl"]),
    }


@pytest.fixture(scope="module")
def runs(files: dict[str, Path]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case, started together (each pays torch's import) and collected; a hang counts as a failure."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "lm_core", *map(str, argv)],
            cwd=REPO,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (_, argv) in _cases(files).items()
    }
    done = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\n(still running after {TIMEOUT} s)"
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


@pytest.mark.parametrize("case", list(_cases({k: Path(k) for k in ("corpus", "model", "folder", "file")})))
def test_a_bad_flag_is_one_error_line_before_anything_runs(
    runs: dict[str, subprocess.CompletedProcess[str]], files: dict[str, Path], case: str
) -> None:
    flag = _cases(files)[case][0]
    result = runs[case]
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0], result.stderr
    assert result.stdout == ""  # nothing trained, benchmarked or evaluated
    assert sorted(p.name for p in files["folder"].iterdir()) == []  # and nothing written


def test_an_unwritable_save_folder_is_refused_before_training(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No write permission (root ignores modes, so the refusal is simulated where the probe asks the OS)."""

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started although --save cannot be written")

    monkeypatch.setattr(cli.tempfile, "mkstemp", denied)
    monkeypatch.setattr(Trainer, "train", never)
    argv = ["train", "--corpus", str(files["corpus"]), *SMALL, "--save", str(files["folder"] / "model.pt")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --save") and "Permission denied" in err[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--print-every", "1", "--threads", "1"],
        ["evaluate-lyrics", "--checkpoint", "x.pt", "--show", "0"],
        ["bench-bptt", "--repeats", "1"],
        ["bench-large", "--steps-per-epoch", "1"],
    ],
)
def test_the_edges_of_each_range_are_accepted(argv: list[str]) -> None:
    """The bounds are inclusive: the smallest useful value of each count, and the most threads, still parse."""
    cli.build_parser().parse_args(argv)
    assert cli.build_parser().parse_args(["train", "--threads", str(limits.MAX_THREADS)]).threads == limits.MAX_THREADS


def test_save_and_jsonl_in_a_new_folder_still_work(files: dict[str, Path], tmp_path: Path) -> None:
    """--save creates missing folders (as before); --jsonl needs an existing one and says so up front."""
    save = tmp_path / "new" / "deeper" / "model.pt"
    jsonl = tmp_path / "log.jsonl"
    argv = ["train", "--corpus", str(files["corpus"]), *SMALL, "--quiet", "--save", str(save), "--jsonl", str(jsonl)]
    assert cli.main(argv) == 0
    assert checkpoint.load(save).history and jsonl.read_text(encoding="utf-8").count("\n") == 1
