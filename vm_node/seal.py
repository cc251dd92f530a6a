"""The HMAC-SHA256 (RFC 2104) that seals a trial's frames, from CPython's own SHA-256.

Not `hmac`: it imports hashlib, which (OpenSSL being left out of a VM, see
__main__) loads every built-in digest module at import, 0.3 MB of each VM's
RSS for one hash. The key's padded blocks are hashed once, so a frame costs
two copies of a hash state rather than a new HMAC object.
"""

from __future__ import annotations

from _operator import _compare_digest as compare_digest
from collections.abc import Callable
from typing import Any

BLOCK = 64  # bytes: SHA-256's block size
_INNER = bytes(x ^ 0x36 for x in range(256))
_OUTER = bytes(x ^ 0x5C for x in range(256))


def _sha256() -> Callable[[bytes], Any]:
    """CPython's built-in SHA-256 (its module is `_sha2` from 3.12 on), else hashlib's."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]
        except ImportError:
            from hashlib import sha256
    return sha256  # type: ignore[no-any-return]


sha256 = _sha256()


class Seal:
    """HMAC-SHA256 under one key."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > BLOCK:
            key = sha256(key).digest()
        key = key.ljust(BLOCK, b"\0")
        self._inner = sha256(key.translate(_INNER))
        self._outer = sha256(key.translate(_OUTER))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())

    def matches(self, mac: str, message: bytes) -> bool:
        """Whether `mac` seals `message`, compared in constant time (as bytes: any text)."""
        expected = self.hexdigest(message).encode()
        return compare_digest(mac.encode("utf-8", "surrogatepass"), expected)
