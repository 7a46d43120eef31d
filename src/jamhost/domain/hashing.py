"""The one hash function of JAM: blake2b-256 (GP 0.7.0 §3.8, H)."""

from __future__ import annotations

import hashlib


def blake2b_256(data: bytes) -> bytes:
    """Return the 32-byte blake2b digest of `data` (GP H(x))."""
    return hashlib.blake2b(data, digest_size=32).digest()
