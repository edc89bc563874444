"""Reading a corpus and turning it into character ids.

Input can be a `.txt` file, a `.zip` holding exactly one text file (the format
of the book's `jaychou_lyrics.txt.zip`), raw bytes (an upload) or a string.
The book's preprocessing is the default: newlines become spaces and only the
first 10,000 characters are kept. The vocabulary is `sorted(set(text))` so the
ids are identical in every process (the book's unordered set is not).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Cause, CorpusError
from .limits import MAX_CORPUS_BYTES, MAX_VOCAB
from .messages import N_, Message

BOOK_MAX_CHARS = 10_000
# The book's corpus file, recognised by content wherever it comes from (an upload, the operator's data/ folder,
# the CLI's default path): the hash, not the name, says it is the book's and gets the book's preprocessing.
BOOK_FILE = "jaychou_lyrics.txt.zip"
BOOK_SHA256 = "3cfedd7d174111cdad5a27eaffaa6a2432a2842cf2590a03dd8a97610ea07043"
MAX_FILE_BYTES = MAX_CORPUS_BYTES  # a corpus larger than this is not a classroom corpus
_CHUNK = 256 * 1024  # bytes inflated at a time from a zip member

_MAGIC = {  # magic bytes -> the catalogue key naming the format
    b"\x89PNG": N_("error.corpus.format_png"),
    b"\xff\xd8\xff": N_("error.corpus.format_jpeg"),
    b"GIF8": N_("error.corpus.format_gif"),
    b"%PDF": N_("error.corpus.format_pdf"),
    b"PK\x03\x04": N_("error.corpus.format_zip"),
    b"\x7fELF": N_("error.corpus.format_elf"),
    b"RIFF": N_("error.corpus.format_riff"),
    b"\x1f\x8b": N_("error.corpus.format_gzip"),
}


def _human_size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


def decode_bytes(data: bytes, name: str = "the file") -> str:
    """Decode text the way Chinese text files are actually saved.

    Order matters: a BOM is authoritative; then strict UTF-8 (which almost never
    decodes GBK bytes by accident); then GB18030, a superset of GBK/GB2312.
    """
    if not data:
        raise CorpusError("error.corpus.empty", name=name)
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                "error.corpus.bad_utf16",
                name=name,
            ) from exc
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise CorpusError(
                "error.corpus.not_text",
                name=name,
                what=Message(what),
            )
    if b"\x00" in data[:4096]:
        raise CorpusError(
            "error.corpus.nul_bytes",
            name=name,
        )
    for encoding in ("utf-8", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        sample = text[:20_000]
        controls = sum(1 for ch in sample if _is_control(ch))
        # A text file with a few colour codes is still text; a quarter controls is not.
        if controls > max(64, len(sample) // 4):
            raise CorpusError(
                "error.corpus.control_chars",
                name=name,
            )
        return text
    raise CorpusError(
        "error.corpus.encoding",
        name=name,
    )


def _read_zip(data: bytes, name: str, max_bytes: int) -> tuple[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CorpusError("error.corpus.bad_zip", name=name) from exc
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir()
            and not info.filename.startswith("__MACOSX/")
            and not Path(info.filename).name.startswith(".")
        ]
        if not members:
            raise CorpusError(
                "error.corpus.zip_empty",
                name=name,
            )
        if len(members) > 1:
            listed = ", ".join(m.filename for m in members[:5])
            more = "…" if len(members) > 5 else ""
            raise CorpusError(
                "error.corpus.zip_many",
                name=name,
                count=len(members),
                listed=listed,
                more=more,
            )
        info = members[0]
        if info.file_size > max_bytes:
            raise CorpusError(
                "error.corpus.zip_member_too_big",
                member=info.filename,
                name=name,
                size=_human_size(info.file_size),
                limit=_human_size(max_bytes),
            )
        try:
            return info.filename, _inflate(archive, info, name, max_bytes)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error) as exc:
            raise CorpusError(
                "error.corpus.zip_unpack",
                member=info.filename,
                name=name,
                cause=Cause(exc),
            ) from exc


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, max_bytes: int) -> bytes:
    """The member's bytes, inflated in small chunks and counted, never more than `max_bytes`.

    The size a zip header declares is not evidence: `ZipFile.read` can inflate
    a whole compressed block (up to 2 GB) before it truncates to that size, so
    a 1 MB file claiming a small member could take gigabytes. Chunked reads
    bound what is inflated at once, and the running count bounds the total.
    """
    chunks, total = [], 0
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise CorpusError(
                    "error.corpus.zip_member_larger",
                    member=info.filename,
                    name=name,
                    limit=_human_size(max_bytes),
                )
            chunks.append(chunk)
    return b"".join(chunks)


def read_corpus_bytes(data: bytes, name: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Text of an uploaded or read file (`.zip` or plain text), with clear errors."""
    if len(data) > max_bytes:
        raise CorpusError(
            "error.corpus.too_big",
            name=name,
            size=_human_size(len(data)),
            limit=_human_size(max_bytes),
        )
    if name.lower().endswith(".zip") or data.startswith(b"PK\x03\x04"):
        inner, data = _read_zip(data, name, max_bytes)
        return decode_bytes(data, f"{inner} (in {name})")
    return decode_bytes(data, name)


def read_corpus_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Text of a `.txt` or single-file `.zip` on disk."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CorpusError("error.corpus.no_file", path=path)
    if path.is_dir():
        raise CorpusError("error.corpus.folder", path=path)
    size = path.stat().st_size
    if size > max_bytes:
        raise CorpusError(
            "error.corpus.file_too_big",
            name=path.name,
            size=_human_size(size),
            limit=_human_size(max_bytes),
        )
    try:
        with path.open("rb") as f:  # read at most one byte past the cap: a file may grow, or report size 0
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise CorpusError("error.corpus.unreadable", path=path, reason=exc.strerror) from exc
    return read_corpus_bytes(data, path.name, max_bytes)


_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def _is_control(ch: str) -> bool:
    """C0/C1 control characters other than the line and tab characters text files use."""
    code = ord(ch)
    return (code < 32 and ch not in "\n\r\t") or code == 127 or 0x80 <= code < 0xA0


# The same set as `_is_control`, for removing them in one pass: a character-by-character join would hold a
# Python object per character (76 bytes each for CJK), 0.5 GB for a 20 MB upload.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def normalize_line_ends(text: str) -> str:
    """CRLF and a lone CR become one `\\n`, so a Windows or old Mac file reads like a Unix one.

    Without this the book's preprocessing turns each CRLF into two spaces.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_controls(text: str) -> tuple[str, int]:
    """Remove terminal escape sequences (ANSI colours) and other control characters.

    Returns the cleaned text and how many characters were removed, so the UI can say so
    instead of silently training on (or rejecting) a log file pasted from a terminal.
    Tabs and line ends are kept.
    """
    cleaned = _CONTROL_CHARS.sub("", _ANSI_ESCAPE.sub("", text))
    return cleaned, len(text) - len(cleaned)


def book_preprocess(text: str, max_chars: int | None = BOOK_MAX_CHARS) -> str:
    """The book's cleaning: each line end becomes a space, then truncate.

    Line ends are normalised first (CRLF counts once, as in the book's LF corpus, which
    this leaves unchanged). `max_chars=None` keeps everything.
    """
    text = normalize_line_ends(text).replace("\n", " ")
    return text if max_chars is None else text[:max_chars]


def document_starts(text: str, max_chars: int | None = None) -> list[int]:
    """Positions where lines begin (0, and after every newline), below `max_chars`.

    On text whose line ends are normalised, `book_preprocess` replaces characters
    one for one, so these positions hold in the preprocessed text too. Empty lines
    start no document.
    """
    n = len(text) if max_chars is None else min(len(text), max_chars)
    starts = [0] if n else []
    pos = text.find("\n")
    while 0 <= pos < n - 1:
        if text[pos + 1] not in "\r\n":
            starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


@dataclass
class Corpus:
    """A preprocessed text with its stable vocabulary and id sequence."""

    name: str
    text: str
    idx_to_char: list[str] = field(default_factory=list)
    char_to_idx: dict[str, int] = field(default_factory=dict)
    indices: list[int] = field(default_factory=list)
    controls_removed: int = 0  # control characters (e.g. ANSI colour codes) stripped from the source
    # Where each document (a line of the original text, e.g. one ci) begins, recorded before the
    # book's newline -> space step erases the boundaries; the validation split cuts only here.
    doc_starts: list[int] = field(default_factory=list)

    @classmethod
    def from_text(
        cls,
        text: str,
        name: str = "text",
        max_chars: int | None = BOOK_MAX_CHARS,
        max_vocab: int = MAX_VOCAB,
    ) -> Corpus:
        if max_chars is not None and max_chars < 2:
            raise CorpusError("error.corpus.keep_two")
        text, removed = strip_controls(text)
        text = normalize_line_ends(text)  # so that document starts hold in the preprocessed text
        doc_starts = document_starts(text, max_chars)
        text = book_preprocess(text, max_chars)
        if not text.strip():
            raise CorpusError("error.corpus.blank", name=name)
        idx_to_char = sorted(set(text))
        if len(idx_to_char) > max_vocab:
            raise CorpusError(
                "error.corpus.vocab_too_big",
                name=name,
                distinct=len(idx_to_char),
                limit=max_vocab,
            )
        char_to_idx = {ch: i for i, ch in enumerate(idx_to_char)}
        indices = [char_to_idx[ch] for ch in text]
        return cls(name, text, idx_to_char, char_to_idx, indices, controls_removed=removed, doc_starts=doc_starts)

    def document_text(self) -> str:
        """The text with a line end before every document but the first: what to store or send of this corpus.

        `text` alone has lost where documents start (the book's step made line ends spaces), so a corpus
        rebuilt from it would cut its validation split elsewhere. `Corpus.from_text(document_text(),
        name, max_chars=None)` gives back this very corpus: text, vocabulary and document starts.
        """
        chars = list(self.text)
        for start in self.doc_starts:
            if 0 < start < len(chars) and chars[start - 1] == " ":  # where a line end became a space
                chars[start - 1] = "\n"
        return "".join(chars)

    @classmethod
    def from_file(cls, path: str | Path, max_chars: int | None = BOOK_MAX_CHARS) -> Corpus:
        return cls.from_text(read_corpus_file(path), Path(path).name, max_chars)

    @property
    def vocab_size(self) -> int:
        return len(self.idx_to_char)

    def __len__(self) -> int:
        return len(self.indices)

    def encode(self, text: str) -> list[int]:
        return [self.char_to_idx[ch] for ch in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.idx_to_char[i] for i in ids)

    def split_point(self, val_fraction: float) -> int:
        """Where the validation tail begins.

        A corpus of several documents is cut at the first document start inside
        the tail (`baselines.split_at_document`), so every validation document is
        whole and unseen; a single-document text is cut at the plain position.
        """
        if not 0.0 <= val_fraction < 0.5:
            raise CorpusError("error.training.val_fraction")
        n = len(self.indices)
        if val_fraction == 0:
            return n
        if len(self.doc_starts) > 1:
            from .baselines import split_at_document  # baselines imports nothing from here; lazy keeps it so

            return split_at_document(n, val_fraction, self.doc_starts)
        return n - int(n * val_fraction)

    def split(self, val_fraction: float) -> tuple[list[int], list[int]]:
        """Training ids and a held-out tail of about `val_fraction` of the corpus (see `split_point`)."""
        cut = self.split_point(val_fraction)
        return self.indices[:cut], self.indices[cut:]
