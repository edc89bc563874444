"""Writing a file so that a crash never leaves half of it where a whole one was.

Checkpoints (saved by the CLI and the app) and the run store's files are only
ever replaced whole: the bytes go to a temporary file in the same folder, are
flushed to disk, and the temporary file is renamed over the old one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` by temp file + fsync + `os.replace`; an `OSError` leaves `path` untouched.

    `mode`: mkstemp makes 0600, but a saved checkpoint is an ordinary readable file.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
