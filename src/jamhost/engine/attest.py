"""Attestations: ed25519 guarantee signatures over a report hash (GP 0.7.2 §11.4, eq.
guarantorsig: the message is X_G ++ H(r) with X_G = "$jam_guarantee").

Keys travel as raw bytes: 32-octet private seeds and 32-octet public keys, 64-octet
signatures. Ed25519 signatures are deterministic (RFC 8032), so the same key signs the same
report hash identically on every run.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

#: X_G, the guarantee signing context (GP 0.7.2, "Signing Contexts").
GUARANTEE_CONTEXT = b"$jam_guarantee"

__all__ = [
    "GUARANTEE_CONTEXT",
    "guarantee_message",
    "new_keypair",
    "public_key",
    "sign",
    "verify",
]


def guarantee_message(report_hash: bytes) -> bytes:
    """X_G ++ H(r): the octets an attestor signs."""
    if len(report_hash) != 32:
        raise ValueError("a report hash has 32 octets")
    return GUARANTEE_CONTEXT + report_hash


def new_keypair() -> tuple[bytes, bytes]:
    """A fresh ed25519 key pair as (32-octet private seed, 32-octet public key)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return private, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key(private_key_bytes: bytes) -> bytes:
    """The public key of a 32-octet private seed."""
    key = Ed25519PrivateKey.from_private_bytes(private_key_bytes)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@lru_cache(maxsize=64)
def _private_key(private_key_bytes: bytes) -> Ed25519PrivateKey:
    """The loaded key of a seed (loading costs about as much as signing; a runtime's few
    attestor keys sign every package)."""
    return Ed25519PrivateKey.from_private_bytes(private_key_bytes)


def sign(private_key_bytes: bytes, report_hash: bytes) -> bytes:
    """The 64-octet ed25519 signature of X_G ++ report_hash."""
    return _private_key(private_key_bytes).sign(guarantee_message(report_hash))


def verify(public_key_bytes: bytes, report_hash: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public_key_bytes`'s signature of X_G ++ report_hash.

    Malformed keys, hashes or signatures verify as False; this never raises."""
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key_bytes)
        key.verify(signature, guarantee_message(report_hash))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
