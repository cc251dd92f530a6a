"""The HMAC-SHA256 (RFC 2104) that seals a trial's frames."""

from __future__ import annotations

import hashlib
import hmac


class Seal:
    """HMAC-SHA256 under one key."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        # The key is taken in once; each frame starts from a copy of this state.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def hexdigest(self, message: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.hexdigest()

    def matches(self, mac: str, message: bytes) -> bool:
        """Whether `mac` seals `message`, compared in constant time.

        The mac came off the wire and may be any text; `hmac.compare_digest` refuses a str
        that is not ASCII, so both sides are compared as bytes.
        """
        expected = self.hexdigest(message).encode()
        return hmac.compare_digest(mac.encode("utf-8", "surrogatepass"), expected)
