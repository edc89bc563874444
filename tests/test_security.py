"""A hostile file or argument in lm_core and the CLI: crafted checkpoints, corpora and arguments meet limits, never
tracebacks."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from lm_core import checkpoint, limits, models
from lm_core.corpus import Corpus
from lm_core.errors import CheckpointError, ConfigError, CorpusError
from lm_core.training import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lm_core", *map(str, args)],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def one_epoch_trainer(tiny_corpus: Corpus) -> Trainer:
    cfg = TrainConfig(model="gru", hidden=8, num_steps=5, batch_size=4, epochs=1, optimizer="adam", lr=0.01)
    trainer = Trainer(tiny_corpus, cfg)
    for _ in trainer.train():
        pass
    return trainer


def _payload(one_epoch_trainer: Trainer) -> dict:
    return torch.load(io.BytesIO(checkpoint.to_bytes(checkpoint.from_trainer(one_epoch_trainer))), weights_only=True)


def _save(payload: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


@pytest.fixture()
def no_model_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a model (allocating its weights) fails the test: refusals must come before it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was built for a checkpoint that should have been refused first")

    monkeypatch.setattr(models, "build_model", refuse)
    monkeypatch.setattr(checkpoint, "build_model", refuse)


# -- sizes checked before anything is allocated -------------------------------------------------------


@pytest.mark.parametrize("kind", models.MODEL_KINDS)
def test_expected_shapes_are_the_real_models_shapes(kind: str) -> None:
    model = models.build_model(kind, 7, 5)
    real = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert list(models.expected_shapes(kind, 7, 5).items()) == real
    assert models.parameter_count(kind, 7, 5) == sum(p.numel() for p in model.parameters())


def test_huge_declared_vocabulary_is_refused_before_building(one_epoch_trainer: Trainer, no_model_built: None) -> None:
    payload = _payload(one_epoch_trainer)
    payload["vocab"] = [chr(0x10000 + i) for i in range(100_000)]
    payload["config"]["hidden"] = limits.MAX_HIDDEN
    with pytest.raises(CheckpointError, match="8,000"):
        checkpoint.from_bytes(_save(payload))


def test_model_over_the_weight_limit_is_refused_before_building(
    one_epoch_trainer: Trainer, no_model_built: None
) -> None:
    payload = _payload(one_epoch_trainer)
    payload["vocab"] = [chr(0x4E00 + i) for i in range(limits.MAX_VOCAB)]
    payload["config"].update(model="scratch-lstm", hidden=limits.MAX_HIDDEN)  # 99 M weights
    with pytest.raises(CheckpointError, match="50,000,000"):
        checkpoint.from_bytes(_save(payload))


def test_tensors_of_the_wrong_shape_are_refused_before_building(
    one_epoch_trainer: Trainer, no_model_built: None
) -> None:
    payload = _payload(one_epoch_trainer)
    payload["config"]["hidden"] = 1024  # declares a bigger model than its tiny tensors
    with pytest.raises(CheckpointError, match="do not fit"):
        checkpoint.from_bytes(_save(payload))


def test_compressed_archive_is_refused(one_epoch_trainer: Trainer) -> None:
    """torch.save never compresses; a deflated member could inflate far beyond the upload size."""
    data = checkpoint.to_bytes(checkpoint.from_trainer(one_epoch_trainer))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(CheckpointError, match="compressed"):
        checkpoint.from_bytes(out.getvalue())


def test_byte_cap_is_the_upload_limit_and_load_checks_size_before_reading(tmp_path: Path) -> None:
    assert checkpoint.MAX_CHECKPOINT_BYTES == limits.MAX_UPLOAD_BYTES
    big = tmp_path / "big.pt"
    with big.open("wb") as f:
        f.truncate(limits.MAX_UPLOAD_BYTES + 1)  # sparse: no memory or disk is used
    with pytest.raises(CheckpointError, match=f"{limits.MAX_UPLOAD_MB} MB"):
        checkpoint.load(big)


def test_upload_limit_matches_the_servers() -> None:
    config = (REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    assert f"maxUploadSize = {limits.MAX_UPLOAD_MB}\n" in config


def test_a_model_over_the_weight_limit_is_refused_by_arithmetic() -> None:
    with pytest.raises(ConfigError, match="limit"):
        models.check_size("scratch-lstm", limits.MAX_VOCAB, limits.MAX_HIDDEN)


# -- the whole checkpoint is validated on load ------------------------------------------------------


def test_non_finite_weights_are_refused(one_epoch_trainer: Trainer) -> None:
    payload = _payload(one_epoch_trainer)
    payload["model_state"]["dense.bias"][0] = float("nan")
    with pytest.raises(CheckpointError, match="weights are not finite"):
        checkpoint.from_bytes(_save(payload))


@pytest.mark.parametrize("bad", ["abc", float("inf"), None, [1]])
def test_history_with_non_numbers_is_refused(one_epoch_trainer: Trainer, bad: object) -> None:
    payload = _payload(one_epoch_trainer)
    payload["history"][0]["perplexity"] = bad
    with pytest.raises(CheckpointError, match="history"):
        checkpoint.from_bytes(_save(payload))


def test_long_corpus_name_and_note_are_cut(one_epoch_trainer: Trainer) -> None:
    payload = _payload(one_epoch_trainer)
    payload["corpus_name"], payload["note"] = "x" * 10_000, ["not", "text"]
    ckpt = checkpoint.from_bytes(_save(payload))
    assert len(ckpt.corpus_name) == limits.MAX_CHECKPOINT_TEXT and ckpt.note == ""


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s["state"][0].update(exp_avg=torch.zeros(3)),  # wrong shape
        lambda s: s["state"][0].update(step="x"),
        lambda s: s.update(param_groups="nope"),
        lambda s: s["param_groups"][0].update(params=[0, 1]),
        lambda s: s["state"][0]["exp_avg_sq"].fill_(float("nan")),
    ],
)
def test_malformed_optimiser_state_is_dropped_and_resume_still_works(
    one_epoch_trainer: Trainer, tiny_corpus: Corpus, mangle
) -> None:
    payload = _payload(one_epoch_trainer)
    mangle(payload["optimizer_state"])
    ckpt = checkpoint.from_bytes(_save(payload))
    assert ckpt.optimizer_dropped and ckpt.optimizer_state is None
    fresh = Trainer(tiny_corpus, dataclasses.replace(one_epoch_trainer.config, epochs=2))
    checkpoint.restore_trainer(ckpt, fresh)
    assert [type(e).__name__ for e in fresh.train()][-1] == "EndEvent"


def test_a_good_optimiser_state_is_kept(one_epoch_trainer: Trainer) -> None:
    ckpt = checkpoint.from_bytes(checkpoint.to_bytes(checkpoint.from_trainer(one_epoch_trainer)))
    assert not ckpt.optimizer_dropped and ckpt.optimizer_state is not None


# -- the CLI: same validation, one error line ------------------------------------------------------------


def test_cli_generate_with_non_finite_weights_is_one_error_line(one_epoch_trainer: Trainer, tmp_path: Path) -> None:
    payload = _payload(one_epoch_trainer)
    payload["model_state"]["rnn.weight_hh_l0"][0, 0] = float("inf")
    path = tmp_path / "nan.pt"
    path.write_bytes(_save(payload))
    prefix = one_epoch_trainer.corpus.text[:2]
    result = run_cli("generate", "--checkpoint", path, "--prefix", prefix, "--strategy", "sample", "--seed", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") and "not finite" in result.stderr


def test_cli_seed_beyond_64_bits_is_one_error_line(one_epoch_trainer: Trainer, tmp_path: Path) -> None:
    path = tmp_path / "ok.pt"
    checkpoint.save(checkpoint.from_trainer(one_epoch_trainer), path)
    prefix = one_epoch_trainer.corpus.text[:2]
    result = run_cli("generate", "--checkpoint", path, "--prefix", prefix, "--strategy", "sample", "--seed", 2**70)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") and "seed" in result.stderr


def test_cli_resume_with_malformed_optimiser_state_notes_it_and_trains(
    one_epoch_trainer: Trainer, tmp_path: Path
) -> None:
    payload = _payload(one_epoch_trainer)
    payload["optimizer_state"]["state"][0]["exp_avg"] = torch.zeros(2)
    path, corpus = tmp_path / "bad-opt.pt", tmp_path / "tiny.txt"
    path.write_bytes(_save(payload))
    corpus.write_text(one_epoch_trainer.corpus.text, encoding="utf-8")
    cfg = one_epoch_trainer.config
    result = run_cli(
        "train", "--corpus", corpus, "--max-chars", "all", "--model", cfg.model, "--hidden", cfg.hidden,
        "--steps", cfg.num_steps, "--batch", cfg.batch_size, "--epochs", "2", "--resume", path, "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "malformed optimiser state" in result.stderr and "Traceback" not in result.stderr


# -- zips inflate with a hard cap; files are read with a cap -------------------------------------------


def _lying_zip(inner_bytes: int, declared: int) -> bytes:
    """A zip whose one member inflates to `inner_bytes` but whose headers claim `declared` (written in chunks)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("lyrics.txt", "w") as member:
        for _ in range(inner_bytes // 2**20):
            member.write(b"a" * 2**20)
    data = bytearray(out.getvalue())
    central = data.index(b"PK\x01\x02")
    fake = declared.to_bytes(4, "little")
    data[22:26] = fake  # local header: uncompressed size
    data[central + 24 : central + 28] = fake  # central directory: uncompressed size
    return bytes(data)


PEAK_SCRIPT = """
import resource, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from test_security import _lying_zip
from lm_core.corpus import read_corpus_bytes
from lm_core.errors import CorpusError
data = _lying_zip(int(sys.argv[2]), declared=1000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_corpus_bytes(data, "bomb.zip")
except CorpusError:
    pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_zip_that_lies_about_its_size_is_refused_without_inflating_it() -> None:
    """1 MB on the wire, 300 MB inside, 1,000 bytes claimed: the server's peak memory must not grow by 300 MB."""
    inner = 300 * 2**20
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(REPO), str(inner)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    grown_mb = int(result.stdout.split()[-1])
    assert grown_mb < 50, f"peak memory grew by {grown_mb} MB while refusing a zip bomb"


def test_zip_whose_inflated_text_exceeds_the_cap_is_refused() -> None:
    from lm_core import corpus as corpus_mod

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lyrics.txt", b"a" * (2 * 2**20))
    data = _lying_zip(2 * 2**20, declared=1000)
    with pytest.raises(CorpusError, match="unpacked"):
        corpus_mod.read_corpus_bytes(out.getvalue(), "big.zip", max_bytes=2**20)
    with pytest.raises(CorpusError):
        corpus_mod.read_corpus_bytes(data, "liar.zip", max_bytes=2**20)


def test_file_is_read_with_a_cap_even_when_its_size_is_not_known() -> None:
    """/dev/zero reports size 0 and never ends: reading it must stop at the cap, not exhaust memory."""
    from lm_core import corpus as corpus_mod

    with pytest.raises(CorpusError, match="limit"):
        corpus_mod.read_corpus_file("/dev/zero", max_bytes=2**20)


# -- a checkpoint the app makes says whether it can come back in ---------------------------------------


def test_estimated_size_is_close_to_the_real_file(one_epoch_trainer: Trainer) -> None:
    ckpt = checkpoint.from_trainer(one_epoch_trainer)
    for with_optimizer in (True, False):
        real = len(checkpoint.to_bytes(ckpt if with_optimizer else dataclasses.replace(ckpt, optimizer_state=None)))
        estimate = checkpoint.estimated_bytes(ckpt, with_optimizer)
        assert real <= estimate <= real + 256 * 1024, (with_optimizer, real, estimate)


def test_estimated_size_counts_the_carried_state_of_a_stream_point(tiny_corpus: Corpus) -> None:
    """Epochs of k minibatches keep adjacent sampling's carried state (B x h per layer, H and C): 512 KB here."""
    cfg = TrainConfig(model="lstm", num_layers=2, hidden=256, batch_size=128, num_steps=8, sampling="adjacent")
    trainer = Trainer(tiny_corpus, dataclasses.replace(cfg, optimizer="adam", lr=1e-3, epochs=1, steps_per_epoch=1))
    list(trainer.train())
    ckpt = checkpoint.from_trainer(trainer)
    real, estimate = len(checkpoint.to_bytes(ckpt)), checkpoint.estimated_bytes(ckpt)
    assert real <= estimate <= real + 256 * 1024, (real, estimate)


# -- one escape for every outside string ----------------------------------------------

EVIL = "**x** [link](http://evil) ![i](http://evil/i.png) :red[y] <b>z</b> # h"


def test_escape_markdown_leaves_no_live_markdown() -> None:
    import re

    from lab_ui.text import escape_markdown

    escaped = escape_markdown(EVIL)
    unescaped_special = re.findall(r"(?<!\\)[*_\[\]()!#<>:]", escaped)
    assert unescaped_special == [], escaped
    assert re.sub(r"\\(.)", r"\1", escaped).replace("\u00a0", " ") == EVIL  # nothing lost, only escaped


def test_translator_md_escapes_arguments_but_not_the_template() -> None:
    from lab_ui.i18n import t
    from lab_ui.text import escape_markdown

    # "**{name}** · {n:,} 个字符 · 词典 {v:,} 个字" (outside a session the language is the default, 中文)
    shown = t.md("corpus.corpus_stats", name=EVIL, n=12345, v=7)
    assert shown.startswith(f"**{escape_markdown(EVIL)}** · 12,345 ") and shown.endswith(" 7 个字")
