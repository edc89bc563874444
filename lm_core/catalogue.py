"""Keeping the message catalogues (`lm_core/locales`) and the code in step: extract, update, check, convert.

    python -m lm_core.catalogue check         # what the test suite checks; exit 1 on any problem
    python -m lm_core.catalogue update        # add keys the code uses (empty, to translate), drop unused ones
    python -m lm_core.catalogue extract -o lab.pot   # the keys as a gettext template (for pybabel or an editor)
    python -m lm_core.catalogue hant          # fill 繁體中文 from 简体中文 with OpenCC s2twp (dev tool only)

A key is used when its literal is the first argument of `t(...)`/`t.md(...)` (the UI), `N_(...)` (a key
kept for later), `Message(...)`, `messages.text(...)` or an error class of `lm_core` (`ConfigError("error.x", ...)`). The check
fails on: a key used but missing (or empty) in any language, a key no code uses, placeholders that differ
between languages, a catalogue that does not compile, a key built at run time (an f-string: the check
could not see it), an engine error raised with a sentence instead of a key, and a Chinese or English
sentence written in the code of a page (`pages/`, `lab_ui/`, the entrypoint) instead of the catalogue.
docs/translating.md says how to add a string or a language. This module is a developer's tool: the app
never imports it.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import messages

ROOT = Path(__file__).resolve().parent.parent
UI_SOURCES = ("streamlit_app.py", "pages", "lab_ui")  # scanned for keys and for sentences left in code
ENGINE_SOURCES = ("lm_core",)  # scanned for keys and for errors raised with a sentence
CATALOGUE_LANGS = ("en", "zh", "zh-Hant")  # every catalogue the check requires, English (the source) first
KEY = re.compile(r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+")
LOOKUPS = {"t", "t.md", "N_", "Message", "messages.text"}  # calls whose first argument is a key
# Literals in page code that look like words but are not sentences a visitor reads.
NOT_SENTENCES = {
    "top center": "Plotly's text position",
    "middle center": "Plotly's text position",
}
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
FIELD = re.compile(r"%?\{[^{}]*\}")  # str.format fields and Plotly's %{...} templates
MARKUP = re.compile(r"</?[a-z]+\b[^>]*>?")  # an HTML tag, or the start of one that an f-string goes on to fill
LATIN_WORDS = re.compile(r"(?<![\w.])[A-Za-z]{2,}[ ]+[A-Za-z]{2,}(?![\w.])")
HEADER_DATE = datetime(2025, 1, 1, tzinfo=UTC)  # fixed, so a rewrite changes only what changed


@dataclass(frozen=True)
class Use:
    key: str
    where: str  # path:line


@dataclass
class Scan:
    uses: dict[str, list[Use]]
    problems: list[str]


def _python_files(root: Path, sources: Iterable[str]) -> Iterator[Path]:
    for source in sources:
        path = root / source
        if path.is_file():
            yield path
        else:
            yield from sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


def _call_name(node: ast.Call) -> str:
    """`t` for t(...), `t.md` for t.md(...), `ConfigError` for errors.ConfigError(...)."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and (func.value.id, func.attr) in (("t", "md"), ("messages", "text")):
            return f"{func.value.id}.{func.attr}"
        return func.attr
    return ""


def error_classes(root: Path = ROOT) -> set[str]:
    """`LabError` and every class of the engine (this one's, and `root`'s) derived from it, by name."""
    found = {"LabError"}
    files = {*_python_files(ROOT, ENGINE_SOURCES), *_python_files(root, ENGINE_SOURCES)}
    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in sorted(files)]
    grew = True
    while grew:
        grew = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in found:
                    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                    if bases & found:
                        found.add(node.name)
                        grew = True
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are statements (docstrings and the like): never shown."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.add(id(node.value))
    return out


def _is_log_call(node: ast.Call) -> bool:
    func = node.func
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("log", "logging")


def is_sentence(text: str) -> bool:
    """Whether a literal reads as words for a visitor: any Chinese character, or two Latin words in a row."""
    if text in NOT_SENTENCES or KEY.fullmatch(text):
        return False
    plain = MARKUP.sub(" ", FIELD.sub(" ", text))
    return bool(CJK.search(plain) or LATIN_WORDS.search(plain))


def scan(root: Path = ROOT) -> Scan:
    """Every key the code uses, and what in the code breaks the catalogue's rules."""
    errors = error_classes(root)
    uses: dict[str, list[Use]] = defaultdict(list)
    problems: list[str] = []
    for sources, is_ui in ((UI_SOURCES, True), (ENGINE_SOURCES, False)):
        for path in _python_files(root, sources):
            rel = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            skip = _docstrings(tree)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = _call_name(node)
                if _is_log_call(node):
                    skip.update(id(n) for n in ast.walk(node))
                    continue
                lookup = name in LOOKUPS or name in errors
                if not lookup or not node.args:
                    continue
                first = node.args[0]
                where = f"{rel}:{node.lineno}"
                if isinstance(first, ast.IfExp):  # t("a.x" if flag else "a.y"): both keys are used
                    for branch in (first.body, first.orelse):
                        if isinstance(branch, ast.Constant) and isinstance(branch.value, str):
                            skip.add(id(branch))
                            if KEY.fullmatch(branch.value):
                                uses[branch.value].append(Use(branch.value, where))
                elif isinstance(first, ast.Constant) and isinstance(first.value, str):
                    skip.add(id(first))
                    if KEY.fullmatch(first.value):
                        uses[first.value].append(Use(first.value, where))
                    elif name in errors:
                        problems.append(f"{where}: {name} raised with a sentence, not a catalogue key: {first.value!r}")
                    else:
                        problems.append(f"{where}: {name}({first.value!r}): not a catalogue key")
                elif isinstance(first, ast.JoinedStr):
                    skip.update(id(n) for n in ast.walk(first))
                    problems.append(f"{where}: {name}(f'...'): a key built at run time; name each key with N_(...)")
            if is_ui:
                for node in ast.walk(tree):
                    if (
                        isinstance(node, ast.Constant)
                        and isinstance(node.value, str)
                        and id(node) not in skip
                        and is_sentence(node.value)
                    ):
                        problems.append(
                            f"{rel}:{node.lineno}: a sentence in the code, not in the catalogue: {node.value!r}"
                        )
    return Scan(dict(uses), problems)


# -- catalogues ---------------------------------------------------------------------------------------------


def po_path(lang: str, locales: Path | None = None) -> Path:
    """Where the catalogue of `lang` is: `lm_core/locales`, or another folder laid out the same way."""
    return (locales or messages.LOCALES) / messages.locale_id(lang) / "LC_MESSAGES" / f"{messages.DOMAIN}.po"


def read(lang: str, path: Path | None = None, strict: bool = False):  # -> babel.messages.catalog.Catalog
    """A catalogue as Babel's `Catalog`; `strict` raises `PoFileError` on a line gettext would refuse."""
    from babel.messages.pofile import read_po

    path = path or po_path(lang)
    with path.open("rb") as f:
        return read_po(f, locale=messages.locale_id(lang), domain=messages.DOMAIN, abort_invalid=strict)


def write(catalog, path: Path) -> None:
    from babel.messages.pofile import write_po

    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, no_location=True, omit_header=False, sort_output=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


LANG_NAMES = {"en": "English", "zh": "简体中文", "zh-Hant": "繁體中文"}


def header(lang: str) -> str:
    """The comment a catalogue starts with: what it is and where the rules are."""
    return (
        f"# {LANG_NAMES.get(lang, lang)} texts of RNN Lyrics Lab.\n"
        "# msgid is a key (page.name, common.name, error.module.name), msgstr the text: a str.format template\n"
        "# whose {placeholders} every language keeps. How to add a text or a language: docs/translating.md."
    )


def new_catalog(lang: str):
    from babel.messages.catalog import Catalog

    return Catalog(
        locale=messages.locale_id(lang),
        domain=messages.DOMAIN,
        header_comment=header(lang),
        project="RNN Lyrics Lab",
        version="1",
        msgid_bugs_address="the project's issues",
        creation_date=HEADER_DATE,
        revision_date=HEADER_DATE,
        last_translator="RNN Lyrics Lab",
        language_team="RNN Lyrics Lab",
        fuzzy=False,
    )


def duplicate_ids(path: Path) -> list[str]:
    """msgids written twice in one file (Babel keeps the last silently; gettext refuses the file)."""
    seen: set[str] = set()
    dupes = []
    for match in re.finditer(r'^msgid "(.+)"$', path.read_text(encoding="utf-8"), re.MULTILINE):
        if match.group(1) in seen:
            dupes.append(match.group(1))
        seen.add(match.group(1))
    return dupes


def compile_problems(catalog) -> list[str]:
    """What `pybabel compile` would refuse: Babel's own checks, then building the .mo in memory."""
    from babel.messages.mofile import write_mo

    out = [f"{m.id}: {'; '.join(str(e) for e in errs)}" for m, errs in catalog.check()]
    try:
        write_mo(io.BytesIO(), catalog)
    except Exception as exc:  # noqa: BLE001 -- any failure to compile is the finding
        out.append(f"does not compile: {type(exc).__name__}: {exc}")
    return out


def texts(catalog) -> dict[str, str]:
    return {m.id: m.string for m in catalog if m.id and isinstance(m.id, str)}


def check_catalogues(used: Iterable[str], catalogues: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Problems between the keys the code uses and the texts of each language (`{lang: {key: text}}`)."""
    used = set(used)
    problems = []
    source = catalogues.get(messages.SOURCE_LANG, {})
    for lang, table in catalogues.items():
        for key in sorted(used - {k for k, v in table.items() if v}):
            problems.append(f"{lang}: missing {key}")
        for key in sorted(set(table) - used):
            problems.append(f"{lang}: unused {key} (no code names it)")
        if lang == messages.SOURCE_LANG:
            continue
        for key in sorted(set(table) & set(source)):
            if table[key] and source[key] and messages.placeholders(table[key]) != messages.placeholders(source[key]):
                got, want = sorted(messages.placeholders(table[key])), sorted(messages.placeholders(source[key]))
                problems.append(f"{lang}: {key} has placeholders {got}, English has {want}")
    return problems


def check(root: Path = ROOT, locales: Path | None = None) -> list[str]:
    """Every problem the catalogue check knows of, as lines; empty when the code and the catalogues agree."""
    found = scan(root)
    problems = list(found.problems)
    tables = {}
    from babel.messages.pofile import PoFileError

    for lang in CATALOGUE_LANGS:
        path = po_path(lang, locales)
        if not path.is_file():
            problems.append(f"{lang}: no catalogue at {path}")
            continue
        problems += [f"{lang}: {key} is written twice" for key in duplicate_ids(path)]
        try:
            catalog = read(lang, path, strict=True)
        except PoFileError as exc:
            problems.append(f"{lang}: {path.name} is not a valid .po file ({exc})")
            continue
        problems += [f"{lang}: {p}" for p in compile_problems(catalog)]
        tables[lang] = texts(catalog)
    return problems + check_catalogues(found.uses, tables)


def template(root: Path = ROOT):
    """The keys the code uses, as a gettext template (with where each is used)."""
    catalog = new_catalog("en")
    catalog.locale = None
    for key, found in sorted(scan(root).uses.items()):
        locations = sorted({(u.where.rsplit(":", 1)[0], int(u.where.rsplit(":", 1)[1])) for u in found})
        catalog.add(key, "", locations=locations)
    return catalog


def update(root: Path = ROOT, locales: Path | None = None) -> dict[str, tuple[int, int]]:
    """Add every used key missing from a catalogue (empty: to be written) and drop the ones no code uses.

    Returns `{lang: (added, dropped)}`. Texts already there are never touched.
    """
    used = set(scan(root).uses)
    counts = {}
    for lang in CATALOGUE_LANGS:
        path = po_path(lang, locales)
        catalog = read(lang, path) if path.is_file() else new_catalog(lang)
        have = {m.id for m in catalog if m.id}
        for key in sorted(used - have):
            catalog.add(key, "")
        for key in sorted(have - used):
            del catalog[key]
        write(catalog, path)
        counts[lang] = (len(used - have), len(have - used))
    return counts


# -- 繁體中文 from 简体中文 -------------------------------------------------------------------------------------

# Applied after OpenCC's s2twp, in order, to every text: terms as Taiwanese teaching material writes them where the
# converter keeps the mainland word or splits a phrase wrongly. Each pair was read over in context in the catalogue.
HANT_TERMS = (
    # machine learning and mathematics
    ("詞典", "詞彙表"),  # vocabulary
    ("引數", "參數"),  # s2twp reads 参数 as a function's argument; these are a model's parameters
    ("迴圈", "循環"),  # recurrent (循環神經網路), not a program's loop
    ("字元級", "字元層級"),
    ("字首", "前綴"),  # a generation prefix, not a word's
    ("貪心", "貪婪"),  # greedy decoding
    ("歸一化", "正規化"),
    ("方差", "變異數"),
    ("鏈式法則", "連鎖律"),
    ("預啟用", "預活化"),  # pre-activation (活化函數)
    ("啟用函式", "活化函數"),  # activation function (ReLU, tanh), not a program's "enable"
    ("連線性", "連接性"),
    ("個陣列成", "個數組成"),  # 个数组成 is "made of h numbers", not an array
    ("測驗證困惑度", "計算驗證困惑度"),
    ("宣告瞭", "宣告了"),  # 声明了: "declared", not 瞭 (to understand)
    ("共享的檢視", "共享的視圖"),  # a tensor's view
    # software
    ("二進位制", "二進位"),
    ("壓縮包", "壓縮檔"),
    ("存檔", "封存檔"),  # an archive, not a saved game
    ("解壓", "解壓縮"),
    ("響應", "回應"),
    ("資料資料夾", "資料目錄"),
    ("會話", "工作階段"),  # a browser session
    ("實現", "實作"),  # implemented from scratch
    ("演示", "示範"),
    ("型別", "類型"),
    ("橙色", "橘色"),
    ("當前", "目前"),
    ("回退", "還原"),
    ("捕獲", "捕捉"),
    ("識別", "辨識"),
    ("顏色程式碼", "顏色代碼"),
    ("安裝 {package} 包", "安裝 {package} 套件"),
    ("自帶的宋詞", "內建的宋詞"),
    ("自帶", "隨附"),  # checkpoints shipped with the app
    ("本應用", "本應用程式"),
    ("應用會", "應用程式會"),
    ("（可選）", "（選用）"),
    ("應用預設", "套用預設集"),  # a preset; 預設 alone is "default" in Taiwan
    ("預設中的", "預設集中的"),
    # rows and columns: in Taiwan a row is 列 and a column 行, the other way round from the mainland
    ("第 iT 到 iT+T−1 列", "第 iT 到 iT+T−1 行"),
    ("行數 B", "列數 B"),
    ("B 行", "B 列"),
    ("{b} 行", "{b} 列"),
    ("{n} 行）", "{n} 列）"),
    ("每一行", "每一列"),
    ("每行", "每列"),
    ("各行", "各列"),
    ("第 r 行", "第 r 列"),
    ("第 {r} 行", "第 {r} 列"),
    ("該行", "該列"),
    ("每一列是一個單元，每一列是一個字", "每一列是一個單元，每一行是一個字"),  # the heatmap: units are rows
)
# Whole texts whose Taiwanese wording differs from the converted one.
HANT_TEXTS = {
    "預設": "預設集",  # the preset picker's label
    "行": "列",  # the minibatch picture's axis: a row of the minibatch
}
# Simplified text that must stay as it is in every language: characters of the corpus a visitor types.
CORPUS_WORDS = ("不分开", "分开")


def to_hant(text: str, converter) -> str:
    """`text` in Taiwan's Traditional Chinese: OpenCC s2twp, the terms above, corpus words left alone."""
    keep = {f"\uffff{i}\uffff": word for i, word in enumerate(CORPUS_WORDS)}
    for marker, word in keep.items():
        text = text.replace(word, marker)
    text = converter.convert(text)
    for old, new in HANT_TERMS:
        text = text.replace(old, new)
    text = HANT_TEXTS.get(text, text)
    for marker, word in keep.items():
        text = text.replace(marker, word)
    return text


def hant(locales: Path | None = None, everything: bool = False) -> list[str]:
    """Fill the 繁體中文 catalogue from the 简体中文 one; only keys it lacks unless `everything`. Returns the keys done."""
    from opencc import OpenCC  # a developer's tool (tests/requirements.txt), never needed by the app

    converter = OpenCC("s2twp")
    source = read("zh", po_path("zh", locales))
    path = po_path("zh-Hant", locales)
    target = read("zh-Hant", path) if path.is_file() else new_catalog("zh-Hant")
    done = []
    for message in source:
        if not message.id or not message.string:
            continue
        current = target.get(message.id)
        if current is None:
            target.add(message.id, to_hant(message.string, converter))
        elif everything or not current.string:
            current.string = to_hant(message.string, converter)
        else:
            continue
        done.append(message.id)
    write(target, path)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lm_core.catalogue", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="report every problem; exit 1 if there is one")
    commands.add_parser("update", help="add the keys the code uses, drop the ones it does not")
    extract = commands.add_parser("extract", help="write the keys the code uses as a .pot template")
    extract.add_argument("-o", "--output", type=Path, default=Path("lab.pot"))
    convert = commands.add_parser("hant", help="fill zh_Hant from zh with OpenCC s2twp (new keys only)")
    convert.add_argument("--all", action="store_true", help="convert every key again (overwrites reviewed texts)")
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = check()
        for line in problems:
            print(line)
        print(f"{len(problems)} problem(s)" if problems else "catalogues OK", file=sys.stderr)
        return 1 if problems else 0
    if args.command == "update":
        for lang, (added, dropped) in update().items():
            print(f"{lang}: {added} key(s) added (to write), {dropped} dropped")
        return 0
    if args.command == "extract":
        from babel.messages.pofile import write_po

        with args.output.open("wb") as f:
            write_po(f, template(), width=100, sort_output=True, include_lineno=True)
        print(f"wrote {args.output}")
        return 0
    done = hant(everything=args.all)
    for key in done:
        print(key)
    print(f"{len(done)} text(s) converted: read them over in {messages.catalogue_path('zh-Hant')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
