"""Reading corpora: encodings, zip archives, bad files, the book's preprocessing and the vocabulary."""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lm_core.corpus import (
    BOOK_FILE,
    BOOK_MAX_CHARS,
    BOOK_SHA256,
    Corpus,
    book_preprocess,
    decode_bytes,
    read_corpus_bytes,
    read_corpus_file,
)
from lm_core.errors import CorpusError, LabError

REPO = Path(__file__).resolve().parents[1]

# Chinese text written for the tests, with a newline, punctuation and a Latin word.
SAMPLE = "春风吹过小河边，\n月光照在老树上。\r\n我们一起唱歌 hello！"


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label, data",
    [
        ("utf-8", SAMPLE.encode("utf-8")),
        ("utf-8 with BOM", b"\xef\xbb\xbf" + SAMPLE.encode("utf-8")),
        ("utf-16 LE with BOM", b"\xff\xfe" + SAMPLE.encode("utf-16-le")),
        ("utf-16 BE with BOM", b"\xfe\xff" + SAMPLE.encode("utf-16-be")),
        ("gbk", SAMPLE.encode("gbk")),
        ("gb18030", (SAMPLE + "𠀀").encode("gb18030")),
    ],
)
def test_text_files_in_common_encodings_decode_to_the_same_text(tmp_path: Path, label: str, data: bytes) -> None:
    """Chinese text saved as UTF-8 (± BOM), UTF-16 with BOM or GBK/GB18030 reads back exactly, BOM dropped."""
    expected = SAMPLE + ("𠀀" if label == "gb18030" else "")
    path = _write(tmp_path, "corpus.txt", data)
    assert read_corpus_file(path) == expected
    assert read_corpus_bytes(data, "upload.txt") == expected


def test_gbk_bytes_are_not_utf8() -> None:
    """Precondition of the GBK case: its bytes really are invalid UTF-8, so the GB18030 fallback is exercised."""
    with pytest.raises(UnicodeDecodeError):
        SAMPLE.encode("gbk").decode("utf-8")


def test_invalid_utf16_after_bom_is_a_corpus_error() -> None:
    """A UTF-16 BOM followed by an odd byte count is reported, not decoded to garbage."""
    with pytest.raises(CorpusError, match="UTF-16"):
        decode_bytes(b"\xff\xfe" + "春".encode("utf-16-le") + b"\x00\xd8")


# -- zip archives ---------------------------------------------------------------------------


def test_zip_with_one_member_reads_that_member(tmp_path: Path) -> None:
    """A .zip holding one text file (the book's format) gives that file's text, whatever its encoding."""
    path = _write(tmp_path, "lyrics.txt.zip", _zip_bytes({"lyrics.txt": SAMPLE.encode("gbk")}))
    assert read_corpus_file(path) == SAMPLE
    assert read_corpus_bytes(path.read_bytes(), "upload.zip") == SAMPLE


def test_zip_ignores_folders_and_macos_metadata(tmp_path: Path) -> None:
    """Folder entries, __MACOSX/ and dot-files do not count as members."""
    data = _zip_bytes(
        {"folder/": b"", "__MACOSX/._a.txt": b"\x00\x01junk", "folder/.DS_Store": b"\x00", "folder/a.txt": b"abc"}
    )
    assert read_corpus_bytes(data, "archive.zip") == "abc"


def test_zip_without_a_member_is_refused(tmp_path: Path) -> None:
    """An empty zip says it holds no file."""
    path = _write(tmp_path, "empty.zip", _zip_bytes({}))
    with pytest.raises(CorpusError, match="holds no file"):
        read_corpus_file(path)


def test_zip_with_several_members_names_the_count(tmp_path: Path) -> None:
    """A zip with three text files is refused with a message that says 3 files."""
    path = _write(tmp_path, "many.zip", _zip_bytes({f"part{i}.txt": b"abc" for i in range(3)}))
    with pytest.raises(CorpusError, match=r"holds 3 files") as info:
        read_corpus_file(path)
    assert "part0.txt" in str(info.value)


def test_broken_zip_is_a_corpus_error() -> None:
    """A file named .zip that is not an archive gives a clear error, not a zipfile exception."""
    with pytest.raises(CorpusError, match="not a valid zip"):
        read_corpus_bytes(b"just some text", "fake.zip")


def test_zip_member_over_the_limit_is_refused_by_its_unpacked_size() -> None:
    """A small archive that unpacks beyond the limit (zip bomb shape) is refused before reading."""
    data = _zip_bytes({"big.txt": b"a" * 50_000})
    assert len(data) < 5_000
    with pytest.raises(CorpusError, match="unpacked"):
        read_corpus_bytes(data, "small.zip", max_bytes=10_000)


# -- unusable files -------------------------------------------------------------------------


def test_empty_file_is_refused(tmp_path: Path) -> None:
    """An empty file says it is empty."""
    path = _write(tmp_path, "empty.txt", b"")
    with pytest.raises(CorpusError, match="empty"):
        read_corpus_file(path)


def test_png_renamed_to_txt_is_refused(tmp_path: Path) -> None:
    """An image renamed .txt is recognised by its magic bytes."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    path = _write(tmp_path, "photo.txt", png)
    with pytest.raises(CorpusError, match="PNG image"):
        read_corpus_file(path)


def test_random_bytes_with_nuls_are_refused(tmp_path: Path) -> None:
    """Random binary data (containing NUL bytes) is reported as binary."""
    data = random.Random(0).randbytes(4096)
    assert b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf"))
    path = _write(tmp_path, "noise.txt", data)
    with pytest.raises(CorpusError, match="binary"):
        read_corpus_file(path)


def test_control_characters_without_nuls_are_refused() -> None:
    """Bytes that are mostly control characters (but no NUL) are still called binary."""
    data = bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 20 + b"abc"
    with pytest.raises(CorpusError, match="binary"):
        decode_bytes(data)


def test_text_with_ansi_colour_codes_is_text_and_the_codes_are_counted() -> None:
    """A UTF-8 log with colour escapes (a few % controls) decodes; the codes are stripped and counted."""
    line = "\x1b[31m春眠不觉晓\x1b[0m，处处闻啼鸟。\x07\n"
    data = (line * 50).encode("utf-8")
    controls = sum(1 for ch in data.decode() if ord(ch) < 32 and ch != "\n")
    assert controls / len(data.decode()) > 0.01  # the walk-through's case: a few percent controls
    corpus = Corpus.from_text(decode_bytes(data, "log.txt"), "log.txt")
    assert corpus.text == "春眠不觉晓，处处闻啼鸟。 " * 50
    assert corpus.controls_removed == (len("\x1b[31m") + len("\x1b[0m") + 1) * 50
    assert not any(ord(ch) < 32 for ch in corpus.idx_to_char)


def test_plain_text_reports_no_removed_controls() -> None:
    assert Corpus.from_text("床前明月光\t疑是地上霜\n").controls_removed == 0


def test_crlf_and_lone_cr_files_give_the_same_corpus_as_lf(tmp_path: Path) -> None:
    """A Windows (CRLF) or old-Mac (CR) file gives the LF file's characters and vocabulary, no double spaces."""
    lines = [f"第{i}行 春风又绿江南岸" for i in range(2000)]
    lf = Corpus.from_file(_write(tmp_path, "lf.txt", "\n".join(lines).encode("utf-8")))
    crlf = Corpus.from_file(_write(tmp_path, "crlf.txt", "\r\n".join(lines).encode("utf-8")))
    cr = Corpus.from_file(_write(tmp_path, "cr.txt", "\r".join(lines).encode("gbk")))
    assert crlf.text == lf.text == cr.text
    assert crlf.idx_to_char == lf.idx_to_char
    assert "  " not in crlf.text


def test_undecodable_bytes_are_refused() -> None:
    """Bytes that are neither UTF-8 nor GB18030 say how to fix the file."""
    with pytest.raises(CorpusError, match="UTF-8"):
        decode_bytes(b"abc\x80\x30")


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    """A file larger than `max_bytes` is refused (file and bytes entry points), naming the limit."""
    data = ("春风吹过小河边" * 20).encode("utf-8")
    path = _write(tmp_path, "long.txt", data)
    with pytest.raises(CorpusError, match="limit"):
        read_corpus_file(path, max_bytes=100)
    with pytest.raises(CorpusError, match="limit"):
        read_corpus_bytes(data, "long.txt", max_bytes=100)
    assert read_corpus_file(path, max_bytes=len(data)) == "春风吹过小河边" * 20


def test_missing_file_and_folder_are_corpus_errors(tmp_path: Path) -> None:
    """A path that does not exist, or a folder, is a CorpusError (a LabError the UI shows verbatim)."""
    with pytest.raises(CorpusError, match="No file"):
        read_corpus_file(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="folder"):
        read_corpus_file(tmp_path)
    assert issubclass(CorpusError, LabError)


def test_whitespace_only_text_is_refused() -> None:
    """A corpus with nothing but white space has nothing to learn from."""
    with pytest.raises(CorpusError, match="no text"):
        Corpus.from_text(" \n\r\n\t ")


def test_too_many_distinct_characters_is_refused() -> None:
    """The vocabulary limit protects the output layer's size."""
    text = "".join(chr(0x4E00 + i) for i in range(50))
    with pytest.raises(CorpusError, match="50 distinct"):
        Corpus.from_text(text, max_vocab=40)
    assert Corpus.from_text(text, max_vocab=50).vocab_size == 50


def test_max_chars_below_two_is_refused() -> None:
    """Keeping fewer than 2 characters cannot give a single (input, label) pair."""
    with pytest.raises(CorpusError):
        Corpus.from_text("春风吹过", max_chars=1)


# -- the book's preprocessing and vocabulary ---------------------------------------------------


def test_book_preprocess_replaces_newlines_and_truncates() -> None:
    """Every line end (LF, CRLF or a lone CR) becomes one space, then the text is cut to max_chars."""
    assert book_preprocess("ab\ncd\r\nef\rgh") == "ab cd ef gh"
    long_text = "春风\n" * 5000  # 15,000 characters
    cleaned = book_preprocess(long_text)
    assert len(cleaned) == BOOK_MAX_CHARS == 10_000
    assert cleaned == long_text.replace("\n", " ")[:10_000]
    assert book_preprocess(long_text, max_chars=None) == long_text.replace("\n", " ")
    assert book_preprocess(long_text, max_chars=7) == "春风 春风 春"


def test_corpus_vocabulary_is_sorted_set_and_indices_round_trip() -> None:
    """idx_to_char is sorted(set(text)); char_to_idx inverts it; indices encode the text."""
    corpus = Corpus.from_text(SAMPLE, max_chars=None)
    text = SAMPLE.replace("\r\n", "\n").replace("\n", " ")
    assert corpus.text == text
    assert corpus.idx_to_char == sorted(set(text))
    assert all(corpus.char_to_idx[ch] == i for i, ch in enumerate(corpus.idx_to_char))
    assert corpus.indices == [corpus.idx_to_char.index(ch) for ch in text]
    assert corpus.decode(corpus.indices) == text
    assert corpus.encode(text) == corpus.indices
    assert len(corpus) == len(text) and corpus.vocab_size == len(set(text))
    assert "\n" not in corpus.idx_to_char and "\r" not in corpus.idx_to_char


def test_vocabulary_is_identical_across_processes_with_different_hash_seeds() -> None:
    """Ids must not depend on string hashing (the book's unordered set does): two processes agree."""
    code = (
        "from lm_core.corpus import Corpus; import sys; "
        "sys.stdout.write(''.join(Corpus.from_text(sys.argv[1], max_chars=None).idx_to_char))"
    )
    outputs = set()
    for hash_seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONIOENCODING": "utf-8"}
        result = subprocess.run(
            [sys.executable, "-c", code, SAMPLE], cwd=REPO, env=env, capture_output=True, timeout=60, check=True
        )
        outputs.add(result.stdout.decode("utf-8"))
    assert outputs == {"".join(sorted(set(SAMPLE.replace("\n", " ").replace("\r", " "))))}


def test_book_corpus_has_the_books_size_and_vocabulary(book_corpus: Corpus) -> None:
    """The book's preprocessing of its corpus gives 10,000 characters and 1,027 distinct ones."""
    assert len(book_corpus) == 10_000
    assert len(book_corpus.text) == 10_000
    assert book_corpus.vocab_size == 1_027
    assert "\n" not in book_corpus.text
    assert book_corpus.idx_to_char == sorted(set(book_corpus.text))
    assert book_corpus.name == "jaychou_lyrics.txt.zip" == BOOK_FILE


def test_the_book_constants_name_and_hash_the_books_file(book_zip: Path) -> None:
    """The one place that says which file is the book's: its name and its content's sha256."""
    assert book_zip.name == BOOK_FILE
    assert hashlib.sha256(book_zip.read_bytes()).hexdigest() == BOOK_SHA256


def test_book_corpus_max_chars_none_keeps_every_character(book_zip: Path) -> None:
    """With max_chars=None all 63,282 characters stay (newlines as spaces)."""
    corpus = Corpus.from_file(book_zip, max_chars=None)
    assert len(corpus) == 63_282
    assert "\n" not in corpus.text and "\r" not in corpus.text
    raw = read_corpus_file(book_zip)
    assert corpus.text == raw.replace("\n", " ").replace("\r", " ")
    assert raw.count("\n") == 5_819


def test_split_holds_out_the_tail() -> None:
    """split(f) keeps the first part for training and the last int(n*f) ids for validation."""
    corpus = Corpus.from_text("春风吹过小河边月光照在老树上" * 10, max_chars=None)  # 140 characters
    train, val = corpus.split(0.1)
    assert len(val) == 14 and len(train) == 126
    assert train + val == corpus.indices
    train, val = corpus.split(0.0)
    assert train == corpus.indices and val == []
    for bad in (-0.1, 0.5, 0.9):
        with pytest.raises(CorpusError):
            corpus.split(bad)


def test_stripping_controls_removes_exactly_the_control_characters() -> None:
    """Every code point is kept or removed as `_is_control` (tab and line ends kept) says, in one regex pass."""
    from lm_core.corpus import _is_control, strip_controls

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    cleaned, removed = strip_controls(every)
    assert cleaned == "".join(ch for ch in every if not _is_control(ch))
    assert removed == 65 - 3  # C0 (32) + DEL + C1 (32), less tab, line feed and carriage return
    assert "\t" in cleaned and "\n" in cleaned and "\r" in cleaned


@pytest.mark.parametrize(
    "text, max_chars",
    [
        ("春风吹过小河边\n月光照在老树上\n\n我们一起唱着歌\r\n雨后的天空\r很蓝", None),
        ("a b\nc d\n\n\ne f\n", None),
        ("春风吹过\n月光照在\n我们一起唱着歌", 9),  # cut inside the third line
        (" 开头是空格\n\n第二行", None),
    ],
)
def test_document_text_rebuilds_the_same_corpus(text: str, max_chars: int | None) -> None:
    """What a run store keeps and a worker gets: text, vocabulary and document starts come back alike."""
    corpus = Corpus.from_text(text, "c", max_chars=max_chars)
    again = Corpus.from_text(corpus.document_text(), "c", max_chars=None)
    assert (again.text, again.idx_to_char, again.doc_starts) == (corpus.text, corpus.idx_to_char, corpus.doc_starts)
    assert len(corpus.doc_starts) > 1
