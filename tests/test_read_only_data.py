"""A data folder the server cannot write (made read-only after it was used): a warning on the pages, no traceback.

The folder is chmod'ed read-only; where that does not bind (tests running as root), it is also made immutable
(`chattr +i`), which binds root too. A test that can make neither is skipped, never passed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lm_core.serve.store import RunStore, StoreError


def _writable(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture()
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A data folder a server used before (store, lock file, subfolders), now read-only."""
    folder = tmp_path / "lab-data"
    RunStore(folder, exclusive=True).close()
    (folder / "server.lock").unlink()  # as a fresh copy of the folder would be: only the runs
    folder.chmod(0o555)
    immutable = False
    if _writable(folder) and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode == 0
    try:
        if _writable(folder):
            pytest.skip("cannot make a folder read-only here (neither chmod nor chattr binds)")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        folder.chmod(0o755)


def test_the_store_refuses_a_read_only_folder_with_its_own_error(read_only_folder: Path) -> None:
    with pytest.raises(StoreError) as refused:
        RunStore(read_only_folder, exclusive=True)
    assert refused.value.key == "error.runs.folder_unwritable"
    assert str(read_only_folder) not in str(refused.value)  # a visitor never learns the server's folders


def test_every_page_warns_instead_of_a_traceback(read_only_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from apptest_helpers import english_page

    monkeypatch.setenv("RNN_LAB_DATA", str(read_only_folder))
    for page in ("pages/train.py", "pages/my_runs.py"):
        with english_page(page) as at:
            assert not at.exception, [e.message for e in at.exception]
            warnings = [w.value for w in at.sidebar.warning]
            assert any("Runs are not being saved" in w and "cannot be written" in w for w in warnings), warnings
            assert str(read_only_folder) not in " ".join(warnings)
