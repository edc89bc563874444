"""The teacher key: what unlocks the Teacher page, known to the operator only.

The operator sets `RNN_LAB_TEACHER_KEY`; without it the server makes a random key when it starts and writes
it to its log (the terminal or service log the operator reads), never to a page. A generated key lives as
long as the process, so a restart makes a new one and every unlock made with the old one ends (unlocks are
stored with the key's fingerprint, never the key). Keys are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading

TEACHER_KEY_ENV = "RNN_LAB_TEACHER_KEY"
KEY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # as class codes: nothing to misread off a terminal
KEY_GROUPS, KEY_GROUP_CHARS = 4, 4  # XXXX-XXXX-XXXX-XXXX: 31**16 ≈ 2**79 keys
log = logging.getLogger(__name__)
_generated: str | None = None
_lock = threading.Lock()


def teacher_key() -> str:
    """The operator's `RNN_LAB_TEACHER_KEY`, else this process's generated key (made and logged on first use)."""
    global _generated
    configured = os.environ.get(TEACHER_KEY_ENV, "").strip()
    if configured:
        return configured
    with _lock:
        if _generated is None:
            _generated = "-".join(
                "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_GROUP_CHARS)) for _ in range(KEY_GROUPS)
            )
            log.warning("Teacher key for this server (%s is not set): %s", TEACHER_KEY_ENV, _generated)
        return _generated


def announce() -> None:
    """At server start: make (and log) the generated key now, so the operator finds it before the first class."""
    if os.environ.get(TEACHER_KEY_ENV, "").strip():
        log.info("Teacher key: from %s", TEACHER_KEY_ENV)
    else:
        teacher_key()


def fingerprint(key: str | None = None) -> str:
    """A short hash of the key, stored with each unlock so that a changed key ends them (the key is never stored)."""
    return hashlib.sha256(f"rnnlab-teacher:{key or teacher_key()}".encode()).hexdigest()[:16]


def key_matches(candidate: str) -> bool:
    """Whether `candidate` is the teacher key: surrounding spaces ignored, and the case and dashes of a generated
    key too (it is read off a terminal); compared in constant time."""
    if not isinstance(candidate, str):
        return False
    key = teacher_key()
    given = candidate.strip()
    if key == _generated:
        key, given = _plain(key), _plain(given)
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(key.encode()).digest())


def _plain(key: str) -> str:
    return key.replace("-", "").replace(" ", "").upper()
