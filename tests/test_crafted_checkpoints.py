"""Checkpoints whose tensors lie about their data: zero strides, shared or offset storage, strided views.

A file of 107 KB can declare a 50 M-weight model when every tensor is a view of
one tiny storage (`torch.zeros(1).expand(*shape)`): the shapes are right, so a
shape check passes, and the work comes later (validating, building the model).
These files are refused from the archive's own records, before `torch.load`
materialises anything. Every file here is written in memory by the test.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from testkit import crafted_checkpoint

from lm_core import checkpoint, models
from lm_core.corpus import Corpus
from lm_core.errors import CheckpointError
from lm_core.training import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "checkpoints").glob("*.pt"))


class _TorchWithoutLoad:
    """`lm_core.checkpoint`'s torch, except that `load` fails the test (the test itself may still use torch.load)."""

    def __getattr__(self, name: str) -> object:
        return getattr(torch, name)

    @staticmethod
    def load(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load ran on a file that should have been refused from its archive records")


@pytest.fixture()
def no_torch_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crafted file must be refused from the archive's records alone, before `torch.load`."""
    monkeypatch.setattr(checkpoint, "torch", _TorchWithoutLoad())


def _trained(corpus: Corpus, kind: str, optimizer: str = "adam", val: float = 0.0) -> Trainer:
    lr = 1e-2 if optimizer == "adam" else 1.0
    cfg = TrainConfig(
        model=kind, hidden=8, num_steps=5, batch_size=4, epochs=1, optimizer=optimizer, lr=lr, val_fraction=val,
        steps_per_epoch=3,
    )  # fmt: skip
    trainer = Trainer(corpus, cfg)
    for _ in trainer.train():
        pass
    return trainer


def _payload(trainer: Trainer) -> dict:
    return torch.load(io.BytesIO(checkpoint.to_bytes(checkpoint.from_trainer(trainer))), weights_only=True)


def _save(payload: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def test_a_107_kb_file_declaring_50_m_weights_is_refused_before_torch_loads_it(no_torch_load: None) -> None:
    data = crafted_checkpoint("gru")
    assert len(data) < 200_000  # the attack: tiny on the wire
    with pytest.raises(CheckpointError, match=r"declares 1\d\d\.\d MB of tensor data but the file has 0\.1 MB"):
        checkpoint.from_bytes(data, "crafted.pt")


@pytest.mark.parametrize("views", ["shared", "offset", "strided"])
def test_tensors_that_do_not_own_their_storage_are_refused_before_torch_loads_them(
    views: str, no_torch_load: None
) -> None:
    """Honest about the total, dishonest per tensor: one storage behind every tensor, a slice, a strided view."""
    with pytest.raises(CheckpointError, match="does not store each of its values once"):
        checkpoint.from_bytes(crafted_checkpoint("lstm", views=views), "crafted.pt")


def test_zero_stride_optimiser_state_is_refused_too(tiny_corpus: Corpus, no_torch_load: None) -> None:
    """Real weights, but Adam's moments are expanded views: the whole file is refused, not only the optimiser."""
    payload = _payload(_trained(tiny_corpus, "gru"))
    for entry in payload["optimizer_state"]["state"].values():
        shape = entry["exp_avg"].shape
        entry["exp_avg"] = torch.zeros(1).expand(*shape)
    with pytest.raises(CheckpointError, match="does not store each of its values once"):
        checkpoint.from_bytes(_save(payload), "crafted.pt")


def test_the_work_per_file_is_bounded_by_its_number_of_tensors(tiny_corpus: Corpus, no_torch_load: None) -> None:
    payload = _payload(_trained(tiny_corpus, "rnn"))
    payload["note"] = [torch.zeros(1) for _ in range(checkpoint.MAX_TENSORS + 1)]  # each its own tiny record
    with pytest.raises(CheckpointError, match=f"at most {checkpoint.MAX_TENSORS:,}"):
        checkpoint.from_bytes(_save(payload), "many.pt")


def test_a_storage_record_shorter_than_its_declared_size_is_refused(tiny_corpus: Corpus, no_torch_load: None) -> None:
    """The pickle says how many values a storage has; the archive's record for it must hold exactly that."""
    data = bytearray(checkpoint.to_bytes(checkpoint.from_trainer(_trained(tiny_corpus, "rnn"))))
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith("/data/0"):
                body = body[: len(body) // 2]
            dst.writestr(info.filename, body)
    with pytest.raises(CheckpointError, match="does not store each of its values once"):
        checkpoint.from_bytes(out.getvalue(), "short.pt")


@pytest.mark.parametrize("kind", models.MODEL_KINDS)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_every_real_checkpoint_still_loads(tiny_corpus: Corpus, kind: str, optimizer: str) -> None:
    """No false alarm: what the app itself writes (full, half precision, best-by-validation) passes the new checks."""
    trainer = _trained(tiny_corpus, kind, optimizer, val=0.2)
    for ckpt in (checkpoint.from_trainer(trainer), checkpoint.from_trainer(trainer, best=True)):
        for half in (False, True):
            back = checkpoint.from_bytes(checkpoint.to_bytes(ckpt, half=half))
            assert back.model_state.keys() == ckpt.model_state.keys()
            assert not back.optimizer_dropped


@pytest.mark.skipif(not SHIPPED, reason="no shipped checkpoints in this checkout")
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_the_shipped_checkpoints_still_load(path: Path) -> None:
    assert checkpoint.load(path).vocab


def test_cli_generate_refuses_the_crafted_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "crafted.pt"
    path.write_bytes(crafted_checkpoint("gru"))
    result = subprocess.run(
        [sys.executable, "-m", "lm_core", "generate", "--checkpoint", str(path), "--prefix", "一"],
        cwd=REPO,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: crafted.pt declares") and result.stderr.count("\n") == 1
    assert result.stdout == ""
