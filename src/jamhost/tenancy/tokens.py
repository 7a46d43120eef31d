"""Tokens: `jam_<accessor>_<secret>`, kept only as HMAC-SHA256(server key, token).

The accessor is the public handle used to list, revoke and delegate (as Vault's accessors).
Lookups go by the HMAC (an index hit), and the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_RE = re.compile(r"^jam_([0-9a-f]{16})_([0-9a-f]{64})$")
ACCESSOR_RE = re.compile(r"^[0-9a-f]{16}$")
ACCOUNT_ID_RE = re.compile(r"^acc_[0-9a-f]{16}$")
HASH_PREFIX_LEN = 12  # hex chars of a token hash shown in logs and listings


class TokenHasher:
    """Hashes tokens with the server key; the raw key never leaves this object."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("token_hmac_key must be at least 16 bytes")
        self._key = key

    def hash(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).digest()

    def __repr__(self) -> str:  # never print the key
        return "TokenHasher(<redacted>)"


def new_token() -> tuple[str, str]:
    """A fresh token and its accessor."""
    accessor = secrets.token_hex(8)
    return f"jam_{accessor}_{secrets.token_hex(32)}", accessor


def accessor_of(token: str) -> str | None:
    m = TOKEN_RE.match(token)
    return m.group(1) if m else None


def hash_prefix(token_hash: bytes) -> str:
    """What logs and listings may show of a token: a short prefix of its HMAC."""
    return token_hash.hex()[:HASH_PREFIX_LEN]


def same_hash(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
