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

from .errors import CorpusError
from .limits import MAX_CORPUS_BYTES, MAX_VOCAB

BOOK_MAX_CHARS = 10_000
# The book's corpus file, recognised by content wherever it comes from (an upload, the operator's data/ folder,
# the CLI's default path): the hash, not the name, says it is the book's and gets the book's preprocessing.
BOOK_FILE = "jaychou_lyrics.txt.zip"
BOOK_SHA256 = "3cfedd7d174111cdad5a27eaffaa6a2432a2842cf2590a03dd8a97610ea07043"
MAX_FILE_BYTES = MAX_CORPUS_BYTES  # a corpus larger than this is not a classroom corpus
_CHUNK = 256 * 1024  # bytes inflated at a time from a zip member

_MAGIC = {  # magic bytes -> (English, 中文) name of the format
    b"\x89PNG": ("a PNG image", "PNG 图片"),
    b"\xff\xd8\xff": ("a JPEG image", "JPEG 图片"),
    b"GIF8": ("a GIF image", "GIF 图片"),
    b"%PDF": ("a PDF document", "PDF 文档"),
    b"PK\x03\x04": ("a zip archive", "zip 压缩包"),
    b"\x7fELF": ("a program (ELF binary)", "程序（ELF 二进制文件）"),
    b"RIFF": ("a RIFF media file", "RIFF 媒体文件"),
    b"\x1f\x8b": ("a gzip archive", "gzip 压缩包"),
}


def _human_size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


def decode_bytes(data: bytes, name: str = "the file") -> str:
    """Decode text the way Chinese text files are actually saved.

    Order matters: a BOM is authoritative; then strict UTF-8 (which almost never
    decodes GBK bytes by accident); then GB18030, a superset of GBK/GB2312.
    """
    if not data:
        raise CorpusError(
            f"{name} is empty: there is no text to learn from.", zh=f"{name} 是空的：没有可供学习的文本。"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"{name} starts like UTF-16 but is not valid UTF-16 text.",
                zh=f"{name} 开头像 UTF-16，但不是有效的 UTF-16 文本。",
            ) from exc
    for magic, (what, what_zh) in _MAGIC.items():
        if data.startswith(magic):
            raise CorpusError(
                f"{name} is {what}, not a text file: upload a .txt file or a .zip with one.",
                zh=f"{name} 是{what_zh}，不是文本文件：请上传 .txt 文件，或内含一个文本文件的 .zip。",
            )
    if b"\x00" in data[:4096]:
        raise CorpusError(
            f"{name} looks binary (it contains NUL bytes), not like a text file.",
            zh=f"{name} 看起来是二进制文件（含有 NUL 字节），不是文本文件。",
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
                f"{name} looks binary (most of it is control characters), not like a text file.",
                zh=f"{name} 看起来是二进制文件（大部分是控制字符），不是文本文件。",
            )
        return text
    raise CorpusError(
        f"{name} is neither UTF-8, UTF-16 nor GB18030/GBK text: save it as UTF-8 and try again.",
        zh=f"{name} 既不是 UTF-8、UTF-16，也不是 GB18030/GBK 文本：请另存为 UTF-8 后重试。",
    )


def _read_zip(data: bytes, name: str, max_bytes: int) -> tuple[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CorpusError(f"{name} is not a valid zip archive.", zh=f"{name} 不是有效的 zip 压缩包。") from exc
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
                f"{name} holds no file: put one text file in the zip.",
                zh=f"{name} 里没有文件：请在 zip 中放入一个文本文件。",
            )
        if len(members) > 1:
            listed = ", ".join(m.filename for m in members[:5])
            more = "…" if len(members) > 5 else ""
            raise CorpusError(
                f"{name} holds {len(members)} files ({listed}{more}): put exactly one text file in the zip.",
                zh=f"{name} 里有 {len(members)} 个文件（{listed}{more}）：zip 中只能放一个文本文件。",
            )
        info = members[0]
        if info.file_size > max_bytes:
            raise CorpusError(
                f"{info.filename} in {name} is {_human_size(info.file_size)} unpacked; "
                f"the limit is {_human_size(max_bytes)}: use a shorter excerpt.",
                zh=f"{name} 中的 {info.filename} 解压后为 {_human_size(info.file_size)}，"
                f"上限为 {_human_size(max_bytes)}：请改用较短的节选。",
            )
        try:
            return info.filename, _inflate(archive, info, name, max_bytes)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error) as exc:
            raise CorpusError(
                f"{info.filename} in {name} cannot be unpacked ({exc}).",
                zh=f"{name} 中的 {info.filename} 无法解压（{exc}）。",
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
                    f"{info.filename} in {name} is larger than {_human_size(max_bytes)} unpacked: use a shorter excerpt.",
                    zh=f"{name} 中的 {info.filename} 解压后超过 {_human_size(max_bytes)}：请改用较短的节选。",
                )
            chunks.append(chunk)
    return b"".join(chunks)


def read_corpus_bytes(data: bytes, name: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Text of an uploaded or read file (`.zip` or plain text), with clear errors."""
    if len(data) > max_bytes:
        raise CorpusError(
            f"{name} is {_human_size(len(data))}; the limit is {_human_size(max_bytes)}: "
            "use a shorter excerpt (a few hundred KB is plenty for a character RNN).",
            zh=f"{name} 大小为 {_human_size(len(data))}，上限为 {_human_size(max_bytes)}："
            "请改用较短的节选（字符级 RNN 有几百 KB 就足够了）。",
        )
    if name.lower().endswith(".zip") or data.startswith(b"PK\x03\x04"):
        inner, data = _read_zip(data, name, max_bytes)
        return decode_bytes(data, f"{inner} (in {name})")
    return decode_bytes(data, name)


def read_corpus_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Text of a `.txt` or single-file `.zip` on disk."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CorpusError(f"No file at {path}.", zh=f"找不到文件 {path}。")
    if path.is_dir():
        raise CorpusError(f"{path} is a folder, not a corpus file.", zh=f"{path} 是文件夹，不是语料文件。")
    size = path.stat().st_size
    if size > max_bytes:
        raise CorpusError(
            f"{path.name} is {_human_size(size)}; the limit is {_human_size(max_bytes)}: use a shorter excerpt.",
            zh=f"{path.name} 大小为 {_human_size(size)}，上限为 {_human_size(max_bytes)}：请改用较短的节选。",
        )
    try:
        with path.open("rb") as f:  # read at most one byte past the cap: a file may grow, or report size 0
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise CorpusError(
            f"{path} cannot be read ({exc.strerror}).", zh=f"无法读取 {path}（{exc.strerror}）。"
        ) from exc
    return read_corpus_bytes(data, path.name, max_bytes)


_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def _is_control(ch: str) -> bool:
    """C0/C1 control characters other than the line and tab characters text files use."""
    code = ord(ch)
    return (code < 32 and ch not in "\n\r\t") or code == 127 or 0x80 <= code < 0xA0


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
    cleaned = _ANSI_ESCAPE.sub("", text)
    cleaned = "".join(ch for ch in cleaned if not _is_control(ch) or ch in "\n\r\t")
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
            raise CorpusError("Keep at least 2 characters of the corpus.", zh="语料至少要保留 2 个字符。")
        text, removed = strip_controls(text)
        text = normalize_line_ends(text)  # so that document starts hold in the preprocessed text
        doc_starts = document_starts(text, max_chars)
        text = book_preprocess(text, max_chars)
        if not text.strip():
            raise CorpusError(f"{name} has no text (only white space).", zh=f"{name} 没有文字（只有空白字符）。")
        idx_to_char = sorted(set(text))
        if len(idx_to_char) > max_vocab:
            raise CorpusError(
                f"{name} has {len(idx_to_char):,} distinct characters; the limit is {max_vocab:,}: "
                "keep fewer characters or use a more uniform text.",
                zh=f"{name} 有 {len(idx_to_char):,} 个不同的字符，上限为 {max_vocab:,}："
                "请保留更少的字符，或换用用字更集中的文本。",
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
            raise CorpusError("The validation share must be between 0 and 0.5.", zh="验证集比例必须在 0 到 0.5 之间。")
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
