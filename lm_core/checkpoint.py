"""Checkpoints: config, vocabulary, weights, optimiser state and history in one file.

The file is a `torch.save` of plain containers (dicts, lists, strings,
numbers, tensors) so it loads with `torch.load(weights_only=True)`: no pickled
code ever runs. Writes go to a temporary file that is renamed into place, so a
crash never leaves half a checkpoint where a good one was.
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, localized
from .models import CharModel, build_model
from .training import EpochEvent, TrainConfig, Trainer

FORMAT = "rnn-lyrics-lab/1"
MAX_CHECKPOINT_BYTES = 200 * 1024 * 1024


@dataclass
class Checkpoint:
    config: TrainConfig
    vocab: list[str]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    history: list[EpochEvent] = field(default_factory=list)
    corpus_name: str = ""
    rng_state: list[Any] | None = None
    note: str = ""

    def build_model(self) -> CharModel:
        model = build_model(self.config.model, len(self.vocab), self.config.hidden, self.config.seed)
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as exc:
            raise CheckpointError(
                f"The weights do not fit a {self.config.model} model: {_first_line(exc)}",
                zh=f"权重与 {self.config.model} 模型不匹配：{_first_line(exc)}",
            ) from exc
        return model

    def describe(self) -> str:
        last = self.history[-1] if self.history else None
        ppl = f", perplexity {last.perplexity:.2f} after {last.epoch} epochs" if last else ", untrained"
        return f"{self.config.model}, {self.config.hidden} hidden units, vocabulary {len(self.vocab):,}{ppl}"


def _first_line(exc: BaseException, lang: str = "en") -> str:
    text = localized(exc, lang).strip()  # a wrapped LabError keeps its Chinese text for lang="zh"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def from_trainer(trainer: Trainer, note: str = "") -> Checkpoint:
    return Checkpoint(
        config=trainer.config,
        vocab=list(trainer.corpus.idx_to_char),
        model_state={k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()},
        optimizer_state=copy.deepcopy(trainer.optimizer.state_dict()),  # the worker keeps mutating it
        history=list(trainer.history),
        corpus_name=trainer.corpus.name,
        rng_state=_rng_to_list(trainer.rng.getstate()),
        note=note,
    )


def _rng_to_list(state: tuple) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_list(data: list[Any]) -> tuple:
    version, internal, gauss = data
    return (int(version), tuple(int(x) for x in internal), gauss)


def to_bytes(ckpt: Checkpoint) -> bytes:
    payload = {
        "format": FORMAT,
        "config": ckpt.config.to_dict(),
        "vocab": ckpt.vocab,
        "model_state": ckpt.model_state,
        "optimizer_state": ckpt.optimizer_state,
        "history": [e.to_dict() for e in ckpt.history],
        "corpus_name": ckpt.corpus_name,
        "rng_state": ckpt.rng_state,
        "note": ckpt.note,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write atomically: a temp file in the same folder, then `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_bytes(ckpt)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved checkpoint is an ordinary readable file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def from_bytes(data: bytes, name: str = "the checkpoint") -> Checkpoint:
    """Parse and validate; every failure is a `CheckpointError` saying what is wrong."""
    if not data:
        raise CheckpointError(f"{name} is empty.", zh=f"{name} 是空的。")
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"{name} is larger than {MAX_CHECKPOINT_BYTES // 2**20} MB: not a checkpoint of this app.",
            zh=f"{name} 大于 {MAX_CHECKPOINT_BYTES // 2**20} MB：不是本应用的检查点。",
        )
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        if data[:2] != b"PK":
            raise CheckpointError(
                f"{name} is not a checkpoint file (not a torch archive).",
                zh=f"{name} 不是检查点文件（不是 torch 存档）。",
            ) from exc
        raise CheckpointError(
            f"{name} is damaged or truncated and cannot be read ({_first_line(exc)}).",
            zh=f"{name} 已损坏或被截断，无法读取（{_first_line(exc, 'zh')}）。",
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{name} is a torch file but not an RNN Lyrics Lab checkpoint.",
            zh=f"{name} 是 torch 文件，但不是 RNN 歌词实验室的检查点。",
        )
    try:
        config = TrainConfig.from_dict(payload["config"])
        config.validate()
        vocab = list(payload["vocab"])
        if not vocab or not all(isinstance(c, str) and len(c) == 1 for c in vocab) or len(set(vocab)) != len(vocab):
            raise CheckpointError(f"{name} has a malformed vocabulary.", zh=f"{name} 的词典格式有误。")
        history = [EpochEvent(**e) for e in payload.get("history", [])]
        ckpt = Checkpoint(
            config=config,
            vocab=vocab,
            model_state=dict(payload["model_state"]),
            optimizer_state=payload.get("optimizer_state"),
            history=history,
            corpus_name=str(payload.get("corpus_name", "")),
            rng_state=payload.get("rng_state"),
            note=str(payload.get("note", "")),
        )
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"{name} is incomplete or from an incompatible version ({_first_line(exc)}).",
            zh=f"{name} 不完整，或来自不兼容的版本（{_first_line(exc, 'zh')}）。",
        ) from exc
    ckpt.build_model()  # proves the weights fit the declared model
    return ckpt


def load(path: str | Path) -> Checkpoint:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.", zh=f"找不到检查点 {path}。")
    return from_bytes(path.read_bytes(), path.name)


def restore_trainer(ckpt: Checkpoint, trainer: Trainer) -> None:
    """Put a checkpoint's weights, optimiser state, history and RNG into `trainer`.

    The trainer must have been built on a corpus with the same vocabulary.
    """
    if (ckpt.config.model, ckpt.config.hidden) != (trainer.config.model, trainer.config.hidden):
        raise CheckpointError(
            f"The checkpoint is a {ckpt.config.model} with {ckpt.config.hidden} hidden units; "
            f"the run is set to {trainer.config.model} with {trainer.config.hidden}: pick the checkpoint's model and size.",
            zh=f"检查点是 {ckpt.config.hidden} 个隐藏单元的 {ckpt.config.model}，本次训练设为 "
            f"{trainer.config.hidden} 个隐藏单元的 {trainer.config.model}：请选择与检查点相同的模型和大小。",
        )
    if list(trainer.corpus.idx_to_char) != ckpt.vocab:
        raise CheckpointError(
            f"The checkpoint's vocabulary ({len(ckpt.vocab):,} characters) differs from this corpus's "
            f"({trainer.corpus.vocab_size:,}): continue it on the corpus it was trained on ({ckpt.corpus_name or 'unknown'}).",
            zh=f"检查点的词典（{len(ckpt.vocab):,} 个字符）与当前语料的词典（{trainer.corpus.vocab_size:,} 个）不同："
            f"请在训练它的语料（{ckpt.corpus_name or '未知'}）上继续训练。",
        )
    trainer.model.load_state_dict(ckpt.model_state)
    if ckpt.optimizer_state and ckpt.config.optimizer == trainer.config.optimizer:
        try:
            trainer.optimizer.load_state_dict(ckpt.optimizer_state)
        except (ValueError, KeyError, RuntimeError):
            pass  # a fresh optimiser state is a safe fallback; the weights are what matter
    trainer.history = list(ckpt.history)
    if ckpt.rng_state:
        try:
            trainer.rng.setstate(_rng_from_list(ckpt.rng_state))
        except (TypeError, ValueError):
            pass
