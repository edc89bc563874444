"""The README and the docs stay true: their cheap shell commands run, the others at least parse, links resolve.

Every ```bash block of README.md, SECURITY.md, docs/*.md and checkpoints/README.md runs, in order, in a scratch
folder that sees the repository (and `../shared` beside it) but keeps what the commands write, unless an HTML
comment `<!-- not run: why -->` right above it says why not (a server, minutes of training). A `python -m lm_core`
line in a block that is not run still has its arguments parsed, so it cannot name a flag that no longer exists.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "SECURITY.md", *sorted((REPO / "docs").glob("*.md")), REPO / "checkpoints/README.md"]
BLOCK = re.compile(r"(?:<!-- (not run: [^>]*?) -->\s*\n)?[ \t]*```bash\n(.*?)\n[ \t]*```", re.DOTALL)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
WRITTEN = {"runs", "lab-data", "data", "backup", "lab.pot", "lab.mo"}  # what the commands write: never linked in
# Every command the README gave before it was split (issue: a README that is a front door): each must still be
# written somewhere in these documents.
OLD_COMMANDS = [
    "pip install -r requirements.txt && streamlit run streamlit_app.py",
    "bash tests/run.sh",
    "python -m lm_core train --corpus ../shared/data/jaychou_lyrics.txt.zip --sampling random --epochs 250 "
    "--jsonl runs/random.jsonl --save runs/random.pt",
    "python -m lm_core generate --checkpoint runs/random.pt --prefix 分开 --length 50",
    "python -m lm_core generate --checkpoint runs/random.pt --prefix 不分开 --strategy sample --temperature 0.8 "
    "--top-k 10 --seed 1",
    "python -m lm_core bench",
    "python -m lm_core bench-bptt",
    "ray start --head --port 6379 --num-cpus 8 --include-dashboard=false --disable-usage-stats",
    "ray start --address HEAD_IP:6379 --num-cpus 8 --disable-usage-stats",
    "RNN_LAB_RAY_ADDRESS=auto RNN_LAB_DATA=/srv/lab-data streamlit run streamlit_app.py --server.port 8501",
    "pip install -r requirements.txt -r requirements-ray.txt",
    "sqlite3 lab-data/runs.sqlite \".backup 'backup/runs.sqlite'\"",
    "python -m lm_core.bench.ray_vs_local",  # was tests/ray_bench.py
    "python tests/load_bench.py",  # was tests/load_test.py --n 20 (Chromium tabs), now websocket clients
    "python -m lm_core.bench.throughput",  # was tests/throughput_bench.py
    "bash tests/bench_large.sh",
    "python -m lm_core evaluate-lyrics --checkpoint checkpoints/songci-all-lstm.pt --corpus songci:all",
    "bash checkpoints/build.sh",
    'pytest -m "not slow"',
]


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    commands: list[str]  # one per logical line (backslash continuations joined), comments dropped
    skip: str | None  # why it is not run

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def _blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            joined = re.sub(r"\\\n\s*", " ", match.group(2))
            commands = [c.strip() for c in joined.splitlines() if c.strip() and not c.strip().startswith("#")]
            line = text.count("\n", 0, match.start(2))
            found.append(Block(doc, line, commands, match.group(1)))
    return found


BLOCKS = _blocks()


def _flat(text: str) -> str:
    return " ".join(re.sub(r"\\\n", " ", text).split())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose entries point at the repository's (and `../shared` at the shared data), for writing into."""
    root = tmp_path_factory.mktemp("docs")
    work = root / "repo"
    work.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in WRITTEN and not entry.name.startswith("."):
            (work / entry.name).symlink_to(entry)
    shared = REPO.parent / "shared"
    if shared.exists():
        (root / "shared").symlink_to(shared.resolve())
    return work


def test_the_readme_is_a_short_front_door() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    assert "![" in readme and (REPO / "docs" / "screenshot.png").is_file()
    for link in ("SECURITY.md", "docs/serving.md", "docs/benchmarks.md", "checkpoints/README.md"):
        assert f"({link})" in readme
    assert "tests/test_" not in readme  # no file-by-file test index to go stale


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(REPO)))
def test_every_relative_link_resolves(doc: Path) -> None:
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if "://" not in target:
            assert (doc.parent / target).exists(), (doc.name, target)


def test_every_command_of_the_old_readme_is_still_documented() -> None:
    everything = " ".join(_flat(doc.read_text(encoding="utf-8")) for doc in DOCS)
    missing = [command for command in OLD_COMMANDS if command not in everything]
    assert missing == []


def test_the_docs_have_commands_both_run_and_not_run() -> None:
    """The walk found the blocks: the README's cheap CLI block runs, its set-up commands do not."""
    readme = [b for b in BLOCKS if b.doc.name == "README.md"]
    assert any(b.skip is None and any("lm_core train" in c for c in b.commands) for b in readme)
    assert any(b.skip and "streamlit run" in b.commands[0] for b in readme)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.skip], ids=lambda b: b.name)
def test_a_cli_command_that_is_not_run_still_parses(block: Block) -> None:
    from lm_core.cli import build_parser

    for command in block.commands:
        words = shlex.split(command, comments=True)
        if words[:3] == ["python", "-m", "lm_core"]:
            build_parser().parse_args(words[3:])  # exits (SystemExit) on a flag the CLI no longer has


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.skip], ids=lambda b: b.name)
def test_a_documented_command_runs(block: Block, workdir: Path) -> None:
    for command in block.commands:
        result = subprocess.run(
            ["bash", "-c", f"set -euo pipefail; {command}"],
            cwd=workdir,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
