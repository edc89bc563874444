"""The tensors of a `torch.save` archive, read from its records without loading any of them.

A torch archive is an uncompressed zip: `<prefix>/data.pkl` (a pickle that
describes every tensor: its storage's record key, dtype and size, and the
tensor's offset, shape and strides) and one record `<prefix>/data/<key>` per
storage. A shape says nothing about the data behind it: a 107 KB file can
declare a 50 M-weight model when every tensor is a zero-stride view of one
4-byte storage, and the cost comes later, when the values are checked and the
model is built. `tensor_layout` reads the pickle with an unpickler that knows
only the few names `torch.save` writes for this app's checkpoints (anything
else is refused, so no code runs) and builds nothing but small descriptions,
so a checkpoint can be checked against its own records before `torch.load`.
"""

from __future__ import annotations

import io
import math
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# The storages `torch.save` writes for float tensors, and their bytes per value. A checkpoint of this app
# holds nothing else (weights, optimiser moments and Adam's step are all floating point).
_STORAGE_ITEMSIZE = {"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8}


class ForeignObject(Exception):
    """The pickle names something a checkpoint of this app never contains (`str(exc)` names it)."""


class MalformedArchive(Exception):
    """The pickle's tensor records are not the shape `torch.save` writes."""


class TooManyTensors(Exception):
    """More tensors than the caller's bound: reading stopped there (`str(exc)` is the count so far)."""


class _Sealed:
    """A description the pickle itself cannot alter: BUILD (`__setstate__`) on it is a malformed archive.

    Otherwise a pickle could describe an honest tensor and then rewrite the
    description, which would no longer be what `torch.load` sees.
    """

    def __setstate__(self, state: Any) -> None:
        raise MalformedArchive("a tensor record is altered after it was made")


@dataclass(frozen=True)
class _StorageType(_Sealed):
    itemsize: int


@dataclass(frozen=True)
class Storage(_Sealed):
    key: str
    itemsize: int
    numel: int  # values, as the pickle declares them


@dataclass(frozen=True)
class Tensor(_Sealed):
    storage: Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.storage.itemsize

    def owns_storage(self) -> bool:
        """Contiguous from offset 0 and exactly as many values as its storage: every value stored once."""
        return self.offset == 0 and self.numel == self.storage.numel and self.stride == contiguous(self.shape)


def contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides of `shape`, as torch gives a fresh tensor (a size-1 dimension keeps its natural stride)."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _LayoutUnpickler(pickle.Unpickler):
    """Unpickles `data.pkl` into plain containers, with a `Tensor` description where torch would build a tensor."""

    def __init__(self, file: io.BytesIO, max_tensors: int) -> None:
        super().__init__(file)
        self.tensors: list[Tensor] = []
        self.max_tensors = max_tensors

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._tensor
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch" and name in _STORAGE_ITEMSIZE:
            return _StorageType(_STORAGE_ITEMSIZE[name])
        raise ForeignObject(f"{module}.{name}"[:80])

    def persistent_load(self, pid: Any) -> Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise MalformedArchive("a storage record is not a torch storage")
        _, kind, key, _location, numel = pid
        if not (isinstance(kind, _StorageType) and isinstance(key, str) and _whole(numel)):
            raise MalformedArchive("a storage record is malformed")
        return Storage(key, kind.itemsize, numel)

    def _tensor(self, storage: Any, offset: Any, shape: Any, stride: Any, *rest: Any) -> Tensor:
        shape_ok = isinstance(shape, tuple) and all(_whole(d) for d in shape)
        stride_ok = isinstance(stride, tuple) and len(stride) == len(shape or ()) and all(_whole(s) for s in stride)
        if not (isinstance(storage, Storage) and _whole(offset) and shape_ok and stride_ok and len(rest) <= 3):
            raise MalformedArchive("a tensor record is malformed")
        tensor = Tensor(storage, offset, shape, stride)
        self.tensors.append(tensor)
        if len(self.tensors) > self.max_tensors:
            raise TooManyTensors(str(len(self.tensors)))
        return tensor


@dataclass
class Layout:
    tensors: list[Tensor]
    record_sizes: dict[str, int]  # storage key -> bytes of its record in the archive (absent: no record)

    @property
    def declared_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def honest(self) -> bool:
        """Every tensor owns its storage, no storage backs two tensors, and each record holds exactly its storage."""
        keys = [t.storage.key for t in self.tensors]
        if len(set(keys)) != len(keys):
            return False
        return all(
            t.owns_storage() and self.record_sizes.get(t.storage.key) == t.storage.numel * t.storage.itemsize
            for t in self.tensors
        )


def tensor_layout(data: bytes, members: list[zipfile.ZipInfo], max_tensors: int) -> Layout:
    """The tensors `data` (a torch archive whose zip `members` are already listed) declares, and its records' sizes.

    Raises `ForeignObject` for a pickle that names anything else, `MalformedArchive`
    for one that is not a torch archive's, `TooManyTensors` as soon as it has
    read more than `max_tensors`, and what `pickle` raises for a broken one.
    """
    pickles = [m for m in members if m.filename.endswith("/data.pkl") and m.filename.count("/") == 1]
    if len(pickles) != 1:
        raise MalformedArchive("no data.pkl record")
    prefix = pickles[0].filename.removesuffix("data.pkl") + "data/"
    records = {m.filename.removeprefix(prefix): m.file_size for m in members if m.filename.startswith(prefix)}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpickler = _LayoutUnpickler(io.BytesIO(archive.read(pickles[0])), max_tensors)
    unpickler.load()
    return Layout(unpickler.tensors, records)
