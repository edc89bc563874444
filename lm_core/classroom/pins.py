"""What a visitor types to join a class (class code, name, PIN): checked, normalised, and the PIN hashed.

A PIN is stored only as a salted scrypt hash (`scrypt$n$r$p$salt$hash`, parameters kept with each hash so
they can be raised later without locking anyone out) and compared in constant time. A short PIN is weak
against someone who holds the class file, so the file is the server's alone (mode 0600) and online guesses
are rate-limited by the class store; the hash keeps the PINs themselves (often reused elsewhere) unreadable.

Names are shown as typed but compared by a key (Unicode NFKC, case folded, inner spaces collapsed), so
"Ada  Li" and "ada li" are one student; class codes use only characters that cannot be mistaken for one
another (no 0/O, 1/I/L) and are read back whatever their case, spaces or dashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

from ..limits import MAX_NAME_CHARS, MAX_PIN_DIGITS, MIN_PIN_DIGITS
from .errors import ClassError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB and about 0.1 s per hash on one core of a class server
SALT_BYTES, HASH_BYTES = 16, 32
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # 31 characters, none that reads as another
CODE_LENGTH = 6  # 31**6 ≈ 887 million codes; unknown codes count as failures in the global rate limit
_PIN = re.compile(rf"[0-9]{{{MIN_PIN_DIGITS},{MAX_PIN_DIGITS}}}")
_SPACES = re.compile(r"\s+")


def check_pin(pin: str) -> str:
    """The PIN if it is MIN_PIN_DIGITS to MAX_PIN_DIGITS ASCII digits, else a `ClassError` saying so."""
    if not isinstance(pin, str) or not _PIN.fullmatch(pin):
        raise ClassError("error.classes.pin_format", lo=MIN_PIN_DIGITS, hi=MAX_PIN_DIGITS)
    return pin


def hash_pin(pin: str) -> str:
    """A new salted scrypt hash of `pin` (checked first), as one string for the store."""
    check_pin(pin)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    """Whether `pin` matches the stored hash; constant-time in the hash comparison, False for anything malformed."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        actual = _scrypt(pin, bytes.fromhex(salt), int(n), int(r), int(p))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=64 * 2**20)


def clean_name(name: str) -> str:
    """A display name as it will be shown: NFC, trimmed, inner whitespace one space; refused when empty,
    longer than MAX_NAME_CHARS, or holding control or invisible format characters (they could disguise a name)."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", name if isinstance(name, str) else "")).strip()
    if not text:
        raise ClassError("error.classes.name_empty")
    if len(text) > MAX_NAME_CHARS:
        raise ClassError("error.classes.name_long", n=MAX_NAME_CHARS)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn") for ch in text):
        raise ClassError("error.classes.name_chars")
    return text


def name_key(name: str) -> str:
    """What two spellings of one name share: NFKC, case folded, spaces collapsed ("Ada  LI" -> "ada li")."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", clean_name(name)).casefold()).strip()


def new_code() -> str:
    """A random class code of CODE_LENGTH unambiguous characters."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def read_code(text: str) -> str | None:
    """A typed class code as stored (upper case, spaces and dashes dropped), or None if it cannot be one."""
    code = re.sub(r"[\s\-]", "", text if isinstance(text, str) else "").upper()
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code
